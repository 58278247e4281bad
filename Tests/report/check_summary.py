"""Checks a report directory written by examples/report/build_report.sh: summary.json has every
figure the README promises, with sane values, and every plot and page exists and is not empty.
Usage: python3 Tests/report/check_summary.py REPORT_DIR"""
import json
import math
import os
import sys

report = sys.argv[1]
with open(os.path.join(report, "summary.json")) as f:
    summary = json.load(f)

problems = []
checks = 0
for model in ("mlp", "mlp_bn", "cnn", "cnn_bn"):
    figures = summary.get(model, {})
    acc, loss = figures.get("test_acc"), figures.get("final_loss")
    checks += 2
    if not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
        problems.append(f"{model}.test_acc is {acc!r}, expected a number in [0, 1]")
    if not isinstance(loss, (int, float)) or not math.isfinite(loss) or loss < 0:
        problems.append(f"{model}.final_loss is {loss!r}, expected a finite number >= 0")
for key in ("test_loss_plain", "test_loss_dropout"):
    value = summary.get("dropout", {}).get(key)
    checks += 1
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        problems.append(f"dropout.{key} is {value!r}, expected a finite number >= 0")
for part in ("mlp", "cnn", "dropout"):
    settings = summary.get("settings", {}).get(part, {})
    for key in ("epochs", "batch_size", "iterations"):
        value = settings.get(key)
        checks += 1
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"settings.{part}.{key} is {value!r}, expected a whole number >= 1")
checks += 2
if not isinstance(summary.get("dataset"), str) or not summary["dataset"]:
    problems.append("dataset is missing")
if not isinstance(summary.get("seconds"), (int, float)):
    problems.append("seconds is missing")
for name in ("index.html", "mlp_loss.png", "mlp_hidden_hist.png", "mlp_hidden_stats.png", "cnn_loss.png",
             "dropout_fit.png", "dropout_loss.png"):
    path = os.path.join(report, name)
    checks += 1
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        problems.append(f"{path} is missing or empty")

# The Monte-Carlo dropout band: x, mean, lower, upper on the fit grid, lower <= mean <= upper.
band_path = os.path.join(report, "data", "dropout_uncertainty.csv")
checks += 1
try:
    with open(band_path) as f:
        lines = f.read().split()
    rows = [[float(v) for v in line.split(",")] for line in lines[1:]]
    if lines[0] != "x,mc_mean,lower,upper" or len(rows) < 2 or any(
            len(r) != 4 or not all(map(math.isfinite, r)) or not r[2] <= r[1] <= r[3] for r in rows):
        problems.append(f"{band_path}: expected x,mc_mean,lower,upper rows with lower <= mc_mean <= upper")
    elif not any(r[3] > r[2] for r in rows):
        problems.append(f"{band_path}: the band has no width (no dropout variance)")
except (OSError, ValueError, IndexError) as e:
    problems.append(f"{band_path}: {e}")

for problem in problems:
    print("report check:", problem)
print(f"report: {checks - len(problems)} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
