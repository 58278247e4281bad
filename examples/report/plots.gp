# gnuplot script for report/: called by build_report.sh as
#   gnuplot -e "dir='report'; mlp_batch=512; cnn_batch=512; dropout_epochs=1000" examples/report/plots.gp
# (the settings the experiments ran with, for the titles). Reads the CSV files the experiments wrote in
# dir/data and writes PNG plots into dir.
if (!exists("dir")) dir = "report"
data(name) = dir . "/data/" . name
set datafile separator ","
set terminal pngcairo size 900,540 enhanced font "DejaVu Sans,11"
set grid lc rgb "#dddddd"
set key top right box opaque

# 1. MLP loss per iteration, with and without BatchNorm1d.
set output dir . "/mlp_loss.png"
set title sprintf("MLP 784-48-24-10: training loss per iteration (SGD lr 0.01, batch %d)", mlp_batch)
set xlabel "iteration"; set ylabel "cross-entropy loss"
plot data("mlp_loss.csv") using 1:2 skip 1 with lines lw 2 lc rgb "#d62728" title "without BatchNorm", \
     ""                   using 1:3 skip 1 with lines lw 2 lc rgb "#1f77b4" title "with BatchNorm1d"

# 2. Hidden-value distributions of the first hidden layer at several iterations.
stats data("mlp_hist.csv") using 2 skip 1 nooutput
last_iteration = STATS_max
array shown[4]
shown[1] = 10; shown[2] = int(last_iteration / 30) * 10; shown[3] = int(last_iteration / 15) * 10; shown[4] = last_iteration
set output dir . "/mlp_hidden_hist.png"
set terminal pngcairo size 1400,620 enhanced font "DejaVu Sans,10"
set multiplot layout 2,4 title "First hidden layer values in eval mode: Linear-1 output (top) vs BatchNorm-1 output (bottom)"
unset key
set xlabel "value"; set ylabel "fraction"
set style fill transparent solid 0.6
do for [net in "plain batchnorm"] {
  do for [k=1:4] {
    it = shown[k]
    set title sprintf("%s, iteration %d", net eq "plain" ? "without BN" : "with BN", it)
    plot data("mlp_hist.csv") using ((strcol(1) eq net && $2 == it) ? $3 : 1/0):4 skip 1 with boxes \
         lc rgb (net eq "plain" ? "#d62728" : "#1f77b4")
  }
}
unset multiplot
set terminal pngcairo size 900,540 enhanced font "DejaVu Sans,11"
set style fill empty
set key top right box opaque

# 3. Mean and standard deviation of the first hidden layer over training.
set output dir . "/mlp_hidden_stats.png"
set title "First hidden layer: mean and standard deviation over training (eval mode)"
set key inside top center vertical maxrows 2 box opaque
set offsets 0, 0, 0.35, 0  # room above the curves for the key: it hides none of them
set xlabel "iteration"; set ylabel "value"
plot data("mlp_hidden_stats.csv") using ((strcol(1) eq "plain") ? $2 : 1/0):3 skip 1 with lines lw 2 lc rgb "#d62728" title "mean, without BN", \
     ""                           using ((strcol(1) eq "plain") ? $2 : 1/0):4 skip 1 with lines lw 2 dt 2 lc rgb "#d62728" title "std, without BN", \
     ""                           using ((strcol(1) eq "batchnorm") ? $2 : 1/0):3 skip 1 with lines lw 2 lc rgb "#1f77b4" title "mean, with BN", \
     ""                           using ((strcol(1) eq "batchnorm") ? $2 : 1/0):4 skip 1 with lines lw 2 dt 2 lc rgb "#1f77b4" title "std, with BN"
set offsets 0, 0, 0, 0
set key maxrows auto

set key top right box opaque

# 4. CNN loss per iteration, with and without BatchNorm2d.
set output dir . "/cnn_loss.png"
set title sprintf("CNN: training loss per iteration, with and without BatchNorm2d (SGD lr 0.01, batch %d)", cnn_batch)
set xlabel "iteration"; set ylabel "cross-entropy loss"
plot data("cnn_loss.csv") using 1:2 skip 1 with lines lw 2 lc rgb "#d62728" title "without BatchNorm", \
     ""                   using 1:3 skip 1 with lines lw 2 lc rgb "#1f77b4" title "with BatchNorm2d"

# 5. Dropout: the data, both fitted curves, and the dropout net's Monte-Carlo dropout band (mean -/+ 2 std).
set output dir . "/dropout_fit.png"
set title sprintf("1-100-100-1 regression after %d Adam epochs: plain vs dropout (0.5, 0.2)", dropout_epochs)
set xlabel "x"; set ylabel "y"
set key top left box opaque
set style fill transparent solid 0.2 noborder
plot data("dropout_uncertainty.csv") using 1:3:4 skip 1 with filledcurves lc rgb "#1f77b4" title "MC dropout mean -/+ 2 std", \
     data("dropout_points.csv") using 1:2 skip 1 with points pt 7 ps 1.1 lc rgb "#2ca02c" title "training points", \
     ""                         using 1:3 skip 1 with points pt 6 ps 1.1 lc rgb "#7f7f7f" title "test points", \
     data("dropout_fit.csv")    using 1:2 skip 1 with lines lw 2 lc rgb "#d62728" title "plain net", \
     ""                         using 1:3 skip 1 with lines lw 2 lc rgb "#1f77b4" title "with dropout"
set style fill empty

# 6. Dropout: train and test loss every 50 epochs.
set output dir . "/dropout_loss.png"
set title "Regression loss: the plain net overfits, dropout does not"
set xlabel "epoch"; set ylabel "MSE"
set key top right box opaque
set logscale y
plot data("dropout_loss.csv") using 1:2 skip 1 with linespoints lw 2 dt 2 lc rgb "#d62728" title "train, plain", \
     ""                       using 1:3 skip 1 with linespoints lw 2 dt 2 lc rgb "#1f77b4" title "train, dropout", \
     ""                       using 1:4 skip 1 with linespoints lw 2 lc rgb "#d62728" title "test, plain", \
     ""                       using 1:5 skip 1 with linespoints lw 2 lc rgb "#1f77b4" title "test, dropout"
unset logscale y
