"""PyTorch's side of the GPU side-by-side: Ember's SmallCnn trained on CIFAR-10 for a few epochs
with the data path a GPU user would write for speed, so that Ember's images/s on the same device
has a fair reference.

All training images go onto the device once, as uint8; each epoch draws a seeded permutation,
and each batch is gathered, cropped (pad 4 with black pixels, as Ember's batcher does), flipped
and normalised by tensor ops on the device. The last incomplete batch of an epoch is dropped, as
in Ember. images/s leaves out the first WARMUP_STEPS steps of the run (allocator, cuDNN autotune)
and the evaluations; the device is synchronised before every clock reading that is reported.
Prints one JSON line (optionally also written to --json).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from torch_smallcnn import small_cnn  # noqa: E402  (the shared definition, one folder up)

WARMUP_STEPS = 5
EVAL_BATCH = 1000
PAD = 4
RECORD = 1 + 3 * 32 * 32


def read_batches(paths, device):
    """Images (uint8, N x 3 x 32 x 32) and labels (int64) of CIFAR-10 binary files, on the
    device."""
    records = np.concatenate([np.fromfile(p, dtype=np.uint8).reshape(-1, RECORD) for p in paths])
    images = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy()).to(device)
    labels = torch.from_numpy(records[:, 0].astype(np.int64)).to(device)
    return images, labels


def channel_stats(images):
    """Per-channel mean and std of uint8 images on the 0..1 scale, one channel at a time to bound
    the memory a float copy takes; shaped to broadcast over a batch."""
    stats = [torch.var_mean(images[:, c].float() / 255, correction=0) for c in range(3)]
    std = torch.stack([v for v, _ in stats]).sqrt()
    mean = torch.stack([m for _, m in stats])
    return mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)


def normalise(images, mean, std):
    """uint8 images to normalised float32."""
    return (images.float() / 255 - mean) / std


def crop_flip(images, generator):
    """Random crop of the zero-padded images plus random horizontal flip, as one gather: each
    image's rows and (possibly reversed) columns are indexed into the padded batch."""
    n, size = images.shape[0], images.shape[-1]
    device = images.device
    padded = F.pad(images, (PAD, PAD, PAD, PAD))
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, n, 1), generator=generator, device=device)
    flip = torch.randint(0, 2, (n, 1), generator=generator, device=device).bool()
    ramp = torch.arange(size, device=device)
    rows = dy + ramp
    cols = dx + torch.where(flip, size - 1 - ramp, ramp)
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel = torch.arange(images.shape[1], device=device).view(1, -1, 1, 1)
    return padded[batch, channel, rows.view(n, 1, size, 1), cols.view(n, 1, 1, size)]


def synchronise(device):
    """Waits for queued device work so that the next clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_optimizer(name, model, weight_decay):
    """The two arms of the side-by-side: SGD (momentum 0.9, lr 0.05) or Adam (lr 1e-3)."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)


def train_epoch(model, optimizer, train, stats, generator, batch_size, warmup):
    """One epoch; returns its wall time, the images and seconds after the first `warmup` steps,
    and the mean and last-batch train loss (summed on the device: no per-step synchronisation)."""
    images, labels = train
    device = images.device
    steps = images.shape[0] // batch_size
    order = torch.randperm(images.shape[0], generator=generator, device=device)
    loss_sum = torch.zeros((), device=device)
    model.train()
    synchronise(device)
    start = timed_from = time.perf_counter()
    for step in range(steps):
        if step == warmup:
            synchronise(device)
            timed_from = time.perf_counter()
        index = order[step * batch_size:(step + 1) * batch_size]
        x = normalise(crop_flip(images[index], generator), *stats)
        loss = F.cross_entropy(model(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
    synchronise(device)
    end = time.perf_counter()
    timed_steps = max(steps - warmup, 0)
    return {
        "wall_s": end - start,
        "timed_images": timed_steps * batch_size,
        "timed_s": end - timed_from if timed_steps else 0.0,
        "train_loss": loss_sum.item() / steps,
        "last_batch_loss": loss.item(),
    }


@torch.no_grad()
def evaluate(model, test, stats):
    """Test loss and accuracy in eval mode, EVAL_BATCH images at a time."""
    images, labels = test
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, images.shape[0], EVAL_BATCH):
        logits = model(normalise(images[i:i + EVAL_BATCH], *stats))
        target = labels[i:i + EVAL_BATCH]
        loss += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    return loss / images.shape[0], correct / images.shape[0]


def parse_args():
    """Command line; --threads only applies on the CPU."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="CIFAR-10 binary directory")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", choices=["cuda", "cpu"], default=default_device)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--weight-decay", type=float, default=0.0,
                        help="Ember's SGD runs use 5e-4")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, help="train on the first N training images only")
    parser.add_argument("--threads", type=int, help="CPU threads (--device cpu only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tf32", action="store_true",
                        help="plain fp32 convolutions on the GPU (cuDNN uses TF32 by default)")
    parser.add_argument("--json", metavar="PATH", help="also write the result here")
    return parser.parse_args()


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = not args.no_tf32
    torch.manual_seed(args.seed)

    load_start = time.perf_counter()
    train = read_batches([args.data / f"data_batch_{i}.bin" for i in range(1, 6)], device)
    train = tuple(t[:args.limit] for t in train)
    if train[0].shape[0] < args.batch_size:
        raise SystemExit(f"{train[0].shape[0]} training images: fewer than one batch")
    test = read_batches([args.data / "test_batch.bin"], device)
    stats = channel_stats(train[0])
    synchronise(device)
    load_s = time.perf_counter() - load_start

    model = small_cnn().to(device)
    optimizer = make_optimizer(args.optimizer, model, args.weight_decay)
    epochs, timed_images, timed_s = [], 0, 0.0
    for epoch in range(args.epochs):
        generator = torch.Generator(device=device).manual_seed(args.seed * 1_000_003 + epoch)
        warmup = WARMUP_STEPS if epoch == 0 else 0
        run = train_epoch(model, optimizer, train, stats, generator, args.batch_size, warmup)
        timed_images += run.pop("timed_images")
        timed_s += run.pop("timed_s")
        test_loss, test_accuracy = evaluate(model, test, stats)
        epochs.append({"epoch": epoch + 1, **run, "test_loss": test_loss,
                       "test_accuracy": test_accuracy})

    result = {
        "framework": f"torch {torch.__version__}",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32 if device.type == "cuda" else None,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "train_images": train[0].shape[0],
        "test_images": test[0].shape[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_steps": WARMUP_STEPS,
        "load_s": load_s,
        "images_per_s": timed_images / timed_s if timed_s else None,
        "epoch_wall_s": epochs[-1]["wall_s"],
        "train_loss": epochs[-1]["train_loss"],
        "test_accuracy": epochs[-1]["test_accuracy"],
        "epochs": epochs,
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    main()
