"""The Markdown summary of experiments/gpu/run.sh: Ember's one-epoch runs on wgpu (one per
optimizer) beside PyTorch's epoch of the same model and data path.

Ember's steady images/s is the median over its metrics lines (every 20 steps) after the first,
which holds the kernel compilation and autotuning, as PyTorch's figure leaves out its first 5
steps; the whole-epoch figure (all steps) is shown too. Usage: summarise.py RESULTS_DIR
"""

import json
import statistics
import sys
from pathlib import Path


def ember_rows(results):
    """(optimizer, steady images/s, whole-epoch images/s, epoch seconds, test accuracy) per run."""
    rows = []
    for summary_path in sorted((results / "runs").glob("*/summary.json")):
        run = summary_path.parent
        summary = json.loads(summary_path.read_text())["summary"]
        steps = [
            json.loads(line)
            for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip() and json.loads(line).get("kind") == "step"
        ]
        steady = [s["images_per_s"] for s in steps[1:]] or [s["images_per_s"] for s in steps]
        rows.append((
            run.name,
            statistics.median(steady) if steady else None,
            summary["train_images_per_s"],
            summary["wall_time_s"],
            summary["final_test_accuracy"],
        ))
    return rows


def torch_rows(results):
    """(optimizer, images/s, epoch seconds, test accuracy, device, framework) per PyTorch run."""
    rows = []
    for path in sorted(results.glob("torch-*.json")):
        run = json.loads(path.read_text())
        rows.append((run["optimizer"], run["images_per_s"], run["epoch_wall_s"],
                     run["test_accuracy"], run["device"], run["framework"]))
    return rows


def number(value, digits=1):
    return "–" if value is None else f"{value:,.{digits}f}"


def main():
    results = Path(sys.argv[1])
    ember, torch = ember_rows(results), torch_rows(results)
    torch_speed = {row[0]: row[1] for row in torch}
    print("## One CIFAR-10 epoch of SmallCnn\n")
    print("| framework | optimizer | steady images/s | whole-epoch images/s | epoch (s) "
          "| test accuracy | × PyTorch, same optimizer |")
    print("|---|---|---|---|---|---|---|")
    for name, steady, whole, wall, accuracy in ember:
        reference = torch_speed.get("adam" if name in ("adam", "adamw") else name)
        ratio = f"{steady / reference:.2f}" if steady and reference else "–"
        print(f"| Ember (wgpu) | `{name}` | {number(steady)} | {number(whole)} | {number(wall)} "
              f"| {100 * accuracy:.2f}% | {ratio} |")
    for name, speed, wall, accuracy, device, framework in torch:
        print(f"| {framework} ({device}) | `{name}` | {number(speed)} | – | {number(wall)} "
              f"| {100 * accuracy:.2f}% | 1 |")
    missing = not ember or not torch
    if missing:
        print("\nSome runs are missing: see log.txt and the logs in results.tar.gz.")


if __name__ == "__main__":
    main()
