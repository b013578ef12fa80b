#!/usr/bin/env python3
"""PyTorch anchor for Ember's language modelling: trains the same causal decoder from the same
initial weights on the same windows with the same learning rates as an `ember train --text` run,
reading the run's replay kit (`ember train ... --replay-kit DIR`), and holds the two side by side:
evaluation loss at every evaluation, the mean train loss of every round, and train tokens/s.

The model is written out here layer by layer so that every operation is the one burn runs:
pre-norm blocks (LayerNorm eps 1e-5 -> multi-head self-attention with scores / sqrt(d_k), masked
positions filled with -1e4 as burn's `min_float`, softmax, no dropout -> residual; LayerNorm ->
Linear -> exact (erf) GELU -> Linear -> residual), learned positions, final LayerNorm, linear head
(or the tied embedding plus a bias). burn's AdamW is PyTorch's (decoupled decay, bias-corrected
moments, eps added to the square root), so `torch.optim.AdamW` replays it.

usage: torch_anchor.py --kit DIR --ember-run RUN_DIR [--threads N] [--out FILE.json]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "ember-lm-replay/1"


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)

    def forward(self, x, masked):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        weights = torch.softmax(scores.masked_fill(masked, -1.0e4), dim=-1)
        return self.output((weights @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim, eps=1e-5)
        self.attention = Attention(dim, heads)
        self.mlp_norm = nn.LayerNorm(dim, eps=1e-5)
        self.mlp_in = nn.Linear(dim, mlp_dim)
        self.mlp_out = nn.Linear(mlp_dim, dim)

    def forward(self, x, masked):
        x = x + self.attention(self.attention_norm(x), masked)
        return x + self.mlp_out(F.gelu(self.mlp_in(self.mlp_norm(x))))


class Decoder(nn.Module):
    def __init__(self, vocab, context, dim, heads, mlp_dim, blocks, tie):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.zeros(1, context, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_dim) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.head = None if tie else nn.Linear(dim, vocab)
        self.head_bias = nn.Parameter(torch.zeros(vocab)) if tie else None

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.embedding(tokens) + self.positions[:, :t]
        masked = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        for block in self.blocks:
            x = block(x, masked)
        x = self.norm(x)
        if self.head is not None:
            return self.head(x)
        return x @ self.embedding.weight.T + self.head_bias


def load_burn_weights(model, weights):
    """Copies every burn parameter into `model`; fails unless each side's names are all used."""
    torch_params = dict(model.named_parameters())
    used = set()
    for path, entry in weights.items():
        name = path.replace(".gamma", ".weight").replace(".beta", ".bias")
        if name not in torch_params:
            sys.exit(f"burn parameter {path} has no PyTorch counterpart ({name})")
        value = torch.tensor(entry["values"], dtype=torch.float32).view(entry["shape"])
        target = torch_params[name]
        # burn keeps a Linear's weight as [inputs, outputs], PyTorch as [outputs, inputs].
        is_linear = name.endswith(".weight") and not name.startswith("embedding") and value.dim() == 2
        if is_linear:
            value = value.T
        if value.shape != target.shape:
            sys.exit(f"{path}: burn shape {list(value.shape)} vs PyTorch {list(target.shape)}")
        with torch.no_grad():
            target.copy_(value)
        used.add(name)
    missing = sorted(set(torch_params) - used)
    if missing:
        sys.exit(f"PyTorch parameters without a burn value: {missing}")


def windows(tokens, starts, context):
    index = torch.as_tensor(starts, dtype=torch.long)[:, None] + torch.arange(context + 1)
    chunk = tokens[index]
    return chunk[:, :-1], chunk[:, 1:]


def evaluate(model, tokens, starts, context, batch):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            part = starts[i : i + batch]
            x, y = windows(tokens, part, context)
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item() * len(part)
    model.train()
    return total / len(starts)


def ember_metrics(run_dir):
    """Ember's eval lines (step -> eval loss, round train loss), step lines (step -> mean train
    loss since the previous line) and summary, from its run folder."""
    evals, steps = {}, {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "eval" and record.get("eval"):
                evals[record["step"]] = (record["eval"]["loss"], record["train_loss"])
            elif record.get("kind") == "step":
                steps[record["step"]] = record["train_loss"]
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    return evals, steps, summary


def interval_means(losses, ember_steps, eval_every):
    """PyTorch's mean train loss over each interval Ember logged: from the previous step line (or
    the round's start) to the line's step."""
    out, previous = [], 0
    for step in sorted(ember_steps):
        begin = max(previous, (step - 1) // eval_every * eval_every)
        out.append((step, ember_steps[step], sum(losses[begin:step]) / (step - begin)))
        previous = step
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kit", required=True, help="the replay kit folder (ember train --replay-kit)")
    ap.add_argument("--ember-run", required=True, help="the Ember run folder trained from that kit")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", help="write the comparison as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.kit, "replay.json")) as f:
        kit = json.load(f)
    if kit.get("format") != FORMAT:
        sys.exit(f"{args.kit}/replay.json: format {kit.get('format')!r}, this script reads {FORMAT}")
    run = kit["run"]
    optimizer = run["optimizer"]
    if optimizer["name"] != "adamw":
        sys.exit(f"the anchor replays AdamW runs; this kit's optimizer is {optimizer['name']}")
    decoder, train = run["decoder"], run["train"]
    context, batch, eval_batch = decoder["context"], train["batch_size"], train["eval_batch_size"]
    eval_every = train["eval_every"]
    read = lambda name: torch.from_numpy(np.fromfile(os.path.join(args.kit, name), dtype="<u4").astype(np.int64))
    train_tokens, eval_tokens = read(kit["train_tokens_file"]), read(kit["eval_tokens_file"])
    with open(os.path.join(args.kit, kit["weights_file"])) as f:
        weights = json.load(f)

    model = Decoder(kit["vocab_size"], context, decoder["dim"], decoder["heads"], decoder["mlp_dim"],
                    decoder["blocks"], decoder["tie_embeddings"])
    load_burn_weights(model, weights)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=kit["lr"][0], betas=(optimizer["beta_1"], optimizer["beta_2"]),
                            eps=optimizer["epsilon"], weight_decay=optimizer["weight_decay"])
    evals, ember_steps, summary = ember_metrics(args.ember_run)
    initial = evaluate(model, eval_tokens, kit["eval_window_starts"], context, eval_batch)

    rows, train_seconds, round_losses, losses = [], 0.0, [], []
    for step, (starts, lr) in enumerate(zip(kit["train_window_starts"], kit["lr"]), start=1):
        began = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = windows(train_tokens, starts, context)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        round_losses.append(loss.item())
        losses.append(round_losses[-1])
        train_seconds += time.perf_counter() - began
        if step % eval_every == 0:
            torch_eval = evaluate(model, eval_tokens, kit["eval_window_starts"], context, eval_batch)
            ember_eval, ember_train = evals.get(step, (float("nan"), float("nan")))
            rows.append({"step": step, "torch_eval_loss": torch_eval, "ember_eval_loss": ember_eval,
                         "torch_train_loss": sum(round_losses) / len(round_losses),
                         "ember_train_loss": ember_train})
            round_losses = []
    tokens = len(kit["lr"]) * batch * context
    logged = interval_means(losses, ember_steps, eval_every)
    result = {
        "parameters": params, "threads": args.threads, "torch_version": torch.__version__,
        "initial_eval_loss_torch": initial, "rows": rows,
        "train_loss_intervals": [{"step": s, "ember": e, "torch": t} for s, e, t in logged],
        "torch_tokens_per_s": tokens / train_seconds, "ember_tokens_per_s": summary["summary"]["items_per_s"],
    }
    print(f"{params} parameters; {kit['eval_split']} loss before training (PyTorch): {initial:.4f}")
    print("| step | Ember eval loss | PyTorch eval loss | rel. diff | Ember round train loss | PyTorch round train loss |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        rel = (r["ember_eval_loss"] - r["torch_eval_loss"]) / r["torch_eval_loss"]
        print(f"| {r['step']} | {r['ember_eval_loss']:.6f} | {r['torch_eval_loss']:.6f} | {rel:+.1e} "
              f"| {r['ember_train_loss']:.6f} | {r['torch_train_loss']:.6f} |")
    if logged:
        rel = [abs(e - t) / t for _, e, t in logged]
        first = logged[0]
        print(f"mean train loss over Ember's logged intervals: first (to step {first[0]}) Ember {first[1]:.6f}, "
              f"PyTorch {first[2]:.6f}; largest relative difference {max(rel):.1e} over {len(rel)} intervals")
    print(f"train tokens/s: Ember {result['ember_tokens_per_s']:.0f}, PyTorch {result['torch_tokens_per_s']:.0f} "
          f"(ratio {result['ember_tokens_per_s'] / result['torch_tokens_per_s']:.2f}), {args.threads} threads each")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
