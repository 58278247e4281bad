#!/usr/bin/env bash
# Assembles report/ from what the three experiments wrote into report/data:
#   - PNG plots (gnuplot, plots.gp),
#   - summary.json from the experiments' JSON members (mlp.json, cnn.json, dropout.json) and the
#     settings they ran with (*_settings.csv: epochs,batch_size,iterations),
#   - index.html with the plots, a table of the figures (from *_table.csv: model,metric,value) and the
#     settings.
# Usage: build_report.sh REPORT_DIR DATASET_NAME SECONDS
set -euo pipefail
dir=${1:?report dir}; dataset=${2:?dataset name}; seconds=${3:?seconds}
here=$(cd "$(dirname "$0")" && pwd)

# Moves a finished temporary file over its final name (atomic within the folder). mktemp makes files
# 0600; the report is for reading by a web server or another user, so it gets the mode a new file would
# have under the caller's umask.
publish() {
  chmod "$(printf '%o' $(( 0666 & ~$(umask) )))" "$1"
  mv "$1" "$2"
}

for part in mlp cnn dropout; do
  for file in "$part.json" "${part}_settings.csv"; do
    [ -s "$dir/data/$file" ] || { echo "build_report: $dir/data/$file is missing: did the $part experiment run?" >&2; exit 1; }
  done
done

# Each experiment's epochs, batch size and steps: <part>_epochs, <part>_batch, <part>_iterations.
for part in mlp cnn dropout; do
  IFS=, read -r epochs batch iterations < <(sed -n 2p "$dir/data/${part}_settings.csv")
  for value in "$epochs" "$batch" "$iterations"; do
    [[ "$value" =~ ^[0-9]+$ ]] || { echo "build_report: $dir/data/${part}_settings.csv: '$value' is not a count" >&2; exit 1; }
  done
  printf -v "${part}_epochs" %s "$epochs"; printf -v "${part}_batch" %s "$batch"; printf -v "${part}_iterations" %s "$iterations"
done
# "2 epochs (236 iterations)"; the iterations show when a short run stopped within its epoch.
plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }
steps_text() { echo "$(plural "$1" epoch) ($(plural "$2" iteration))"; }
if [ "$dropout_batch" -ge 50 ]; then dropout_batch_text="of the full batch"; else dropout_batch_text="in batches of $dropout_batch"; fi

gnuplot -e "dir='$dir'; mlp_batch=$mlp_batch; cnn_batch=$cnn_batch; dropout_epochs=$dropout_epochs" "$here/plots.gp"

tmp=$(mktemp "$dir/.summary.XXXXXX")
{
  printf '{\n'
  for part in mlp cnn dropout; do printf '  %s,\n' "$(cat "$dir/data/$part.json")"; done
  printf '  "settings": {'
  for part in mlp cnn dropout; do
    e=${part}_epochs b=${part}_batch i=${part}_iterations
    printf '"%s": {"epochs": %s, "batch_size": %s, "iterations": %s}%s' "$part" "${!e}" "${!b}" "${!i}" "$([ $part = dropout ] || echo ', ')"
  done
  printf '},\n'
  printf '  "dataset": "%s",\n  "seconds": %s\n}\n' "$dataset" "$seconds"
} > "$tmp"
publish "$tmp" "$dir/summary.json"

rows=$(for part in mlp cnn dropout; do cat "$dir/data/${part}_table.csv"; done | grep -v '^model,' | while IFS=, read -r model metric value; do
  printf '<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n' "$model" "$metric" "$value"
done)
tmp=$(mktemp "$dir/.index.XXXXXX")
cat > "$tmp" <<HTML
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bndrop: batch normalization and dropout, reproduced</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}</style></head>
<body>
<h1>Batch normalization and dropout, reproduced with bndrop</h1>
<p>Data: <b>$dataset</b>. The three experiments of the article "Batch Normalization and Dropout in Neural Networks
explained with PyTorch", run through libbndrop.so from C, took $seconds s in all.</p>
<table><tr><th>model</th><th>figure</th><th>value</th></tr>
$rows
</table>
<h2>1. BatchNorm1d in an MLP (784-48-24-10)</h2>
<p>The same initial weights and the same batches for both nets; SGD, learning rate 0.01, batch $mlp_batch, $(steps_text "$mlp_epochs" "$mlp_iterations").</p>
<img src="mlp_loss.png" alt="MLP loss curves">
<img src="mlp_hidden_hist.png" alt="first hidden layer histograms">
<img src="mlp_hidden_stats.png" alt="first hidden layer mean and std">
<h2>2. BatchNorm2d in a small CNN</h2>
<p>The same initial weights and the same batches for both nets; SGD, learning rate 0.01, batch $cnn_batch, $(steps_text "$cnn_epochs" "$cnn_iterations").</p>
<img src="cnn_loss.png" alt="CNN loss curves">
<h2>3. Dropout in a 1-100-100-1 regression net</h2>
<p>50 noisy points; Adam, learning rate 0.01, $(plural "$dropout_epochs" epoch) $dropout_batch_text ($(plural "$dropout_iterations" step)); dropout 0.5 after the first Linear and 0.2 after the second. The shaded band is the dropout net's Monte-Carlo dropout prediction (200 passes with dropout on): mean -/+ 2 standard deviations.</p>
<img src="dropout_fit.png" alt="fitted curves">
<img src="dropout_loss.png" alt="train and test loss">
<p>Raw numbers: <a href="summary.json">summary.json</a> and the CSV files in <a href="data/">data/</a>.</p>
</body></html>
HTML
publish "$tmp" "$dir/index.html"
echo "report written to $dir/index.html"
