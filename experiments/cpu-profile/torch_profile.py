"""PyTorch's CPU training step of Ember's SmallCnn or TwoLayerTransformer (--model), timed part by
part, as the reference that Ember's own per-part profile (same protocol, in Rust) is read against.

Protocol (the Rust side follows it literally, so the two tables line up row by row):
- Each layer is timed on its own: x = randn(input shape) (requires grad, except for the first
  part's, the network input), a fixed upstream gradient g = randn(output shape); one rep times the
  forward y = layer(x) and, separately, the backward (y * g).sum().backward() (the loss:
  y.backward()); the grads of x and of the layer's parameters are set to None between reps,
  outside the timing (a parameter-free first part, patchify, has no backward: 0). A part with several inputs or outputs (attention's projections, its two
  matmuls, a residual add) takes one random tensor per input and sums (y_i * g_i) over outputs.
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
PARAMETERS = {"small-cnn": 288_746, "transformer": 75_082}
NAMES = {"small-cnn": "SmallCnn", "transformer": "TwoLayerTransformer"}


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


class Fn(nn.Module):
    """A parameter-free part: `fn` applied to the part's inputs."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


class AttentionProjections(nn.Module):
    """Query, key and value projections, each split into heads: [B, N, D] -> 3 x [B, H, N, D/H],
    as burn's MultiHeadAttention (separate linears, reshape, swap of axes 1 and 2)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))

    def forward(self, x):
        b, n, d = x.shape
        return tuple(
            linear(x).reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
            for linear in (self.query, self.key, self.value)
        )


class Tokens(nn.Module):
    """The class token prepended to the patch embeddings, then the learned positions added."""

    def __init__(self, patches, dim):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(torch.randn(1, patches + 1, dim) * 0.02)

    def forward(self, x):
        class_token = self.class_token.expand(x.shape[0], -1, -1)
        return torch.cat([class_token, x], dim=1) + self.positions


def patchify(images, patch=4):
    """[B, C, H, W] -> [B, (H/p)(W/p), C p p], patches row by row (Ember's `patchify`)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


def transformer_parts(labels, dim=64, heads=4, mlp=128, blocks=2, classes=10, patch=4):
    """Ember's TwoLayerTransformer (its defaults on 3x32x32 images) as named parts in forward
    order, each part a module over a tuple of inputs; `wiring` says which earlier outputs feed
    each part (the residual adds read the block's input). Pre-norm blocks; exact GELU; the head
    reads the class token."""
    scale = (dim // heads) ** 0.5
    parts = [
        ("patchify", "patchify", Fn(lambda x: patchify(x, patch))),
        ("embed", "linear", nn.Linear(3 * patch * patch, dim)),
        ("tokens", "tokens", Tokens((32 // patch) ** 2, dim)),
    ]
    for b in range(1, blocks + 1):
        parts += [
            (f"norm{b}a", "layernorm", nn.LayerNorm(dim)),
            (f"qkv{b}", "attn-proj", AttentionProjections(dim, heads)),
            (f"scores{b}", "attn-matmul", Fn(lambda q, k: q @ k.transpose(2, 3) / scale)),
            (f"softmax{b}", "softmax", Fn(lambda s: torch.softmax(s, dim=3))),
            (f"context{b}", "attn-matmul", Fn(
                lambda w, v: (w @ v).transpose(1, 2).reshape(w.shape[0], w.shape[2], dim))),
            (f"out{b}", "attn-proj", nn.Linear(dim, dim)),
            (f"residual{b}a", "residual", Fn(lambda x, y: x + y)),
            (f"norm{b}b", "layernorm", nn.LayerNorm(dim)),
            (f"mlp_in{b}", "mlp", nn.Linear(dim, mlp)),
            (f"gelu{b}", "gelu", nn.GELU()),
            (f"mlp_out{b}", "mlp", nn.Linear(mlp, dim)),
            (f"residual{b}b", "residual", Fn(lambda x, y: x + y)),
        ]
    parts += [
        ("norm", "layernorm", nn.LayerNorm(dim)),
        ("head", "linear", nn.Sequential(Fn(lambda x: x[:, 0]), nn.Linear(dim, classes))),
        ("loss", "loss", CrossEntropy(labels)),
    ]
    return parts


class Chain(nn.Module):
    """The parts run in order as one model, the wiring of `run_parts` included."""

    def __init__(self, parts):
        super().__init__()
        self.names = [name for name, _, _ in parts]
        self.parts = nn.ModuleList(module for _, _, module in parts)

    def forward(self, x):
        return run_parts(self.names, self.parts, x)[-1][1][0]


def run_parts(names, modules, x):
    """Runs the parts in order; returns (inputs, outputs) of each, both tuples. The scores part
    reads q and k, the context part the weights and v, a residual add the block's input (or the
    first residual's sum) and the branch."""
    record, block_input, value = [], None, None
    current = (x,)
    for name, module in zip(names, modules):
        if name.startswith("norm") and name.endswith("a"):
            block_input = current[0]
        if name.startswith("residual"):
            inputs = (block_input, current[0])
        elif name.startswith("scores"):
            inputs = current[:2]
        elif name.startswith("context"):
            inputs = (current[0], value)
        else:
            inputs = current
        out = module(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        if name.startswith("qkv"):
            value = out[2]
        if name.startswith("residual") and name.endswith("a"):
            block_input = out[0]
        record.append((inputs, out))
        current = out
    return record


def part_shapes(parts, batch_size):
    """Input and output shapes (lists of shapes) of every part, from one batch pushed through."""
    names = [name for name, _, _ in parts]
    modules = [module for _, _, module in parts]
    with torch.no_grad():
        record = run_parts(names, modules, torch.zeros(batch_size, 3, 32, 32))
    return [([list(t.shape) for t in i], [list(t.shape) for t in o]) for i, o in record]


def median_ms(times):
    """Median of a list of seconds, in milliseconds."""
    return statistics.median(times) * 1e3


def time_part(name, module, in_shapes, out_shapes, first, reps, warmup):
    """Median forward and backward time of one part on random inputs, per the protocol above."""
    xs = [torch.randn(shape).requires_grad_(not first) for shape in in_shapes]
    gs = None if name == "loss" else [torch.randn(shape) for shape in out_shapes]
    forward, backward = [], []
    for rep in range(warmup + reps):
        start = time.perf_counter()
        ys = module(*xs)
        middle = time.perf_counter()
        ys = ys if isinstance(ys, tuple) else (ys,)
        if not ys[0].requires_grad:
            pass  # a parameter-free first part (patchify): nothing to differentiate
        elif gs is None:
            ys[0].backward()
        else:
            sum((y * g).sum() for y, g in zip(ys, gs)).backward()
        end = time.perf_counter()
        for x in xs:
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
        f"{result['model']} ({result['parameters']:,} parameters), batch {result['batch_size']}, "
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
    parser.add_argument("--model", choices=sorted(PARAMETERS), default="small-cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    labels = torch.randint(0, 10, (args.batch_size,))
    make_parts = small_cnn_parts if args.model == "small-cnn" else transformer_parts
    parts = make_parts(labels)
    model = Chain([p for p in parts if p[0] != "loss"]).train()
    parameters = sum(p.numel() for p in model.parameters())
    expected = PARAMETERS[args.model]
    assert parameters == expected, f"{args.model} has {parameters} parameters, not {expected}"

    rows = []
    shapes = part_shapes(parts, args.batch_size)
    for index, ((name, kind, module), (in_shapes, out_shapes)) in enumerate(zip(parts, shapes)):
        forward_ms, backward_ms = time_part(
            name, module, in_shapes, out_shapes, index == 0, args.reps, args.warmup
        )
        rows.append(
            {"layer": name, "kind": kind, "input": in_shapes[0], "output": out_shapes[0],
             "forward_ms": forward_ms, "backward_ms": backward_ms}
        )

    images = torch.randn(args.batch_size, 3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    result = {
        "model": NAMES[args.model],
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
