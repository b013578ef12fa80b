"""The side-by-side anchor for Ember's `bench optimizers`: the update time of torch's Adam and of the
authors' SIRFShampoo (IF-Shampoo) at T = 1 and T = 2 on the same SmallCnn, on this machine's CPU.

Same protocol as `ember bench optimizers --models small-cnn`: one gradient of a batch of 64
random CIFAR-shaped images is computed once and reused; each timed call is `optimizer.step()` alone;
all optimizers are timed round-robin (one step of each per round), median over the timed rounds
after warm-up rounds; 2 threads. Prints a Markdown table (times and ratio to torch's Adam) and, with
--json, writes the medians for the bench report to read beside Ember's own figures.
Run through run_anchor.sh, which installs torch, numpy and sirfshampoo into a virtual environment.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from sirfshampoo import SIRFShampoo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from torch_smallcnn import small_cnn  # noqa: E402  (the shared definition, one folder up)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="also write the medians (ms) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    arms = {}
    for name, make in [
        ("adam (torch)", lambda m: torch.optim.Adam(m.parameters(), lr=1e-3)),
        ("sirfshampoo (T = 1)", lambda m: SIRFShampoo(m, lr=1e-3, batch_size=args.batch_size, T=1)),
        ("sirfshampoo (T = 2)", lambda m: SIRFShampoo(m, lr=1e-3, batch_size=args.batch_size, T=2)),
    ]:
        model = small_cnn()
        images = torch.randn(args.batch_size, 3, 32, 32)
        labels = torch.randint(0, 10, (args.batch_size,))
        optimizer = make(model)
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        arms[name] = (model, optimizer, [])
    params = sum(p.numel() for p in next(iter(arms.values()))[0].parameters())

    for round_ in range(args.warmup + args.steps):
        for name, (model, optimizer, times) in arms.items():
            start = time.perf_counter()
            optimizer.step()
            elapsed = time.perf_counter() - start
            if round_ >= args.warmup:
                times.append(elapsed)

    medians = {name: statistics.median(times) for name, (_, _, times) in arms.items()}
    adam = medians["adam (torch)"]
    print(
        f"SmallCnn ({params:,} parameters), batch {args.batch_size}, torch {torch.__version__}, "
        f"{args.threads} threads, median of {args.steps} steps after {args.warmup} warm-up steps\n"
    )
    print("| optimizer | update | x torch Adam |")
    print("|---|---|---|")
    for name, median in medians.items():
        print(f"| {name} | {median * 1e3:.2f} ms | {median / adam:.2f} |")
    if args.json:
        result = {
            "torch": torch.__version__,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup": args.warmup,
            "parameters": params,
            "updates_ms": {name: median * 1e3 for name, median in medians.items()},
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
