"""PyTorch's CPU training step of Ember's SmallCnn, timed part by part, as the reference that
Ember's own per-part profile (same protocol, in Rust) is read against.

Protocol (the Rust side follows it literally, so the two tables line up row by row):
- Each layer is timed on its own: x = randn(input shape) (requires grad, except conv1's, the
  network input), a fixed upstream gradient g = randn(output shape); one rep times the forward
  y = layer(x) and, separately, the backward (y * g).sum().backward() (the loss: y.backward());
  the grads of x and of the layer's parameters are set to None between reps, outside the timing.
- The whole step (model, cross-entropy, backward, Adam lr 1e-3 step, zero_grad) on one fixed
  random batch, with its forward + loss, backward and update timed separately and the whole step
  (including zero_grad) end to end, in the same rep.
- Every figure is the median of --reps reps after --warmup reps; time.perf_counter throughout.
- torch.profiler over 5 further whole steps gives the top ops by self CPU time, so that a slow
  part can be traced to the kernel that makes it slow.
Prints a Markdown table and, with --json, writes the figures.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

PROFILED_STEPS = 5
TOP_OPS = 15
PARAMETERS = 288_746


class CrossEntropy(nn.Module):
    """The loss as a layer with fixed labels, so that it is timed like every other part."""

    def __init__(self, labels):
        super().__init__()
        self.labels = labels

    def forward(self, logits):
        return F.cross_entropy(logits, self.labels)


def small_cnn_parts(labels, widths=(32, 64, 128), classes=10):
    """Ember's SmallCnn as named (layer, kind, module) parts in forward order, the loss last:
    stages of (3x3 conv without bias, BatchNorm, ReLU) x 2 and a 2x2 max pool, then global
    average pooling and a linear head. The names are the row keys shared with the Rust profile."""
    parts, channels, index = [], 3, 0
    for stage, width in enumerate(widths, start=1):
        for _ in range(2):
            index += 1
            parts += [
                (f"conv{index}", "conv", nn.Conv2d(channels, width, 3, padding=1, bias=False)),
                (f"bn{index}", "batchnorm", nn.BatchNorm2d(width)),
                (f"relu{index}", "relu", nn.ReLU()),
            ]
            channels = width
        parts.append((f"pool{stage}", "maxpool", nn.MaxPool2d(2)))
    parts += [
        ("gap", "gap", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        ("head", "linear", nn.Linear(channels, classes)),
        ("loss", "loss", CrossEntropy(labels)),
    ]
    return parts


def part_shapes(parts, batch_size):
    """Input and output shape of every part, found by pushing one batch through them."""
    shapes, x = [], torch.zeros(batch_size, 3, 32, 32)
    with torch.no_grad():
        for _, _, module in parts:
            y = module(x)
            shapes.append((list(x.shape), list(y.shape)))
            x = y
    return shapes


def median_ms(times):
    """Median of a list of seconds, in milliseconds."""
    return statistics.median(times) * 1e3


def time_part(name, module, in_shape, out_shape, reps, warmup):
    """Median forward and backward time of one part on a random input, per the protocol above."""
    x = torch.randn(in_shape).requires_grad_(name != "conv1")
    g = None if name == "loss" else torch.randn(out_shape)
    forward, backward = [], []
    for rep in range(warmup + reps):
        start = time.perf_counter()
        y = module(x)
        middle = time.perf_counter()
        if g is None:
            y.backward()
        else:
            (y * g).sum().backward()
        end = time.perf_counter()
        x.grad = None
        for p in module.parameters():
            p.grad = None
        if rep >= warmup:
            forward.append(middle - start)
            backward.append(end - middle)
    return median_ms(forward), median_ms(backward)


def whole_step(model, optimizer, images, labels):
    """One training step; returns the clock readings before, between and after its phases."""
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(images), labels)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    t3 = time.perf_counter()
    optimizer.zero_grad()
    t4 = time.perf_counter()
    return t0, t1, t2, t3, t4


def time_step(model, optimizer, images, labels, reps, warmup):
    """Median forward + loss, backward, update and whole-step times of the training step."""
    phases = {"forward_ms": [], "backward_ms": [], "update_ms": [], "whole_ms": []}
    for rep in range(warmup + reps):
        t0, t1, t2, t3, t4 = whole_step(model, optimizer, images, labels)
        if rep >= warmup:
            for key, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t0)):
                phases[key].append(seconds)
    step = {key: median_ms(times) for key, times in phases.items()}
    step["images_per_s"] = images.shape[0] / (step["whole_ms"] / 1e3)
    return step


def profiler_top_ops(model, optimizer, images, labels):
    """The ops with the most self CPU time over PROFILED_STEPS whole steps (totals, not per
    step)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as profile:
        for _ in range(PROFILED_STEPS):
            whole_step(model, optimizer, images, labels)
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {"name": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": e.count}
        for e in events[:TOP_OPS]
    ]


def markdown(result):
    """The per-part table, the per-kind sums and the sum of parts against the measured step."""
    lines = [
        f"SmallCnn ({result['parameters']:,} parameters), batch {result['batch_size']}, "
        f"{result['framework']}, {result['threads']} threads, median of {result['reps']} reps "
        f"after {result['warmup']} warm-up reps\n",
        "| layer | kind | input | output | forward ms | backward ms | total ms |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds = {}
    for p in result["parts"]:
        shape_in, shape_out = "x".join(map(str, p["input"])), "x".join(map(str, p["output"]))
        total = p["forward_ms"] + p["backward_ms"]
        lines.append(
            f"| {p['layer']} | {p['kind']} | {shape_in} | {shape_out or 'scalar'} | "
            f"{p['forward_ms']:.3f} | {p['backward_ms']:.3f} | {total:.3f} |"
        )
        fwd, bwd = kinds.get(p["kind"], (0.0, 0.0))
        kinds[p["kind"]] = (fwd + p["forward_ms"], bwd + p["backward_ms"])
    lines += ["", "| kind | forward ms | backward ms | total ms |", "|---|---|---|---|"]
    for kind, (fwd, bwd) in kinds.items():
        lines.append(f"| {kind} | {fwd:.3f} | {bwd:.3f} | {fwd + bwd:.3f} |")
    fwd = sum(f for f, _ in kinds.values())
    bwd = sum(b for _, b in kinds.values())
    s = result["step"]
    lines += [
        "",
        "| | forward ms | backward ms | update ms | whole ms |",
        "|---|---|---|---|---|",
        f"| sum of parts | {fwd:.3f} | {bwd:.3f} | — | {fwd + bwd:.3f} |",
        f"| measured step | {s['forward_ms']:.3f} | {s['backward_ms']:.3f} | "
        f"{s['update_ms']:.3f} | {s['whole_ms']:.3f} |",
        "",
        f"Whole step: {s['images_per_s']:.1f} images/s. "
        f"Top ops by self CPU time over {PROFILED_STEPS} steps:",
        "",
        "| op | self CPU ms | calls |",
        "|---|---|---|",
    ]
    lines += [
        f"| {o['name']} | {o['self_cpu_ms']:.3f} | {o['calls']} |"
        for o in result["profiler_top_ops"]
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    labels = torch.randint(0, 10, (args.batch_size,))
    parts = small_cnn_parts(labels)
    model = nn.Sequential(*(module for name, _, module in parts if name != "loss")).train()
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters == PARAMETERS, f"SmallCnn has {parameters} parameters, not {PARAMETERS}"

    rows = []
    shapes = part_shapes(parts, args.batch_size)
    for (name, kind, module), (in_shape, out_shape) in zip(parts, shapes):
        forward_ms, backward_ms = time_part(
            name, module, in_shape, out_shape, args.reps, args.warmup
        )
        rows.append(
            {"layer": name, "kind": kind, "input": in_shape, "output": out_shape,
             "forward_ms": forward_ms, "backward_ms": backward_ms}
        )

    images = torch.randn(args.batch_size, 3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    result = {
        "framework": f"torch {torch.__version__}",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "reps": args.reps,
        "warmup": args.warmup,
        "parameters": parameters,
        "parts": rows,
        "step": time_step(model, optimizer, images, labels, args.reps, args.warmup),
        "profiler_steps": PROFILED_STEPS,
        "profiler_top_ops": profiler_top_ops(model, optimizer, images, labels),
    }
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
