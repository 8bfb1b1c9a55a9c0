#!/usr/bin/env python3
"""The PyTorch counterpart of `keratrack bench loader`: images/s of a torch DataLoader alone over the
nail-disease TRAIN split (640x640 JPEGs) -> 224x224 normalised float batches of 16, nothing consuming
them, with the training recipe's torchvision augmentation (tests/reference/train_nail_ref.py: PIL
draft-mode decoding at >= 2x the output size, as our reduced-size decode) and the evaluation
transform (full decode, resize). Same batches as ours: 4 warm-up batches, then 40 timed.

  env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      .venv/bin/python bench/pytorch_loader_bench.py [--data ../shared/datasets/nail-disease]

Prints a table in the layout of ours; compare it with `keratrack bench loader --eval` run just
before or after on a quiet machine.
"""
import argparse
import os
import sys
import time

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from train_nail_ref import Images, read_labels, transforms  # noqa: E402


def rate(ds, workers, batch, warmup, batches):
    dl = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                    persistent_workers=workers > 0, generator=torch.Generator().manual_seed(1))
    it = iter(dl)
    for _ in range(warmup):
        next(it)
    t0 = time.time()
    for _ in range(batches):
        next(it)
    s = time.time() - t0
    return batches * batch / s, 1e3 * s / batches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                                   "datasets", "nail-disease"))
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    labels, _ = read_labels(a.data)
    items = sorted(p for p in labels if p.startswith("train/"))
    train_tf, eval_tf = transforms(a.img_size)
    need = (a.warmup + a.batches) * a.batch_size
    if len(items) < need:
        items = (items * (need // len(items) + 1))[:need]
    print(f"torch DataLoader: {a.data}, TRAIN split {len(set(items))} images -> {a.img_size}x{a.img_size} float NCHW, "
          f"batch {a.batch_size}, torch {torch.__version__}")
    print("workers transform                           images/s  ms/batch")
    for name, tf, draft in (("train (draft-mode decode)", train_tf, 2 * a.img_size), ("eval (full decode, resize)", eval_tf, 0)):
        for w in (1, 2):
            ips, ms = rate(Images(a.data, items, labels, tf, draft), w, a.batch_size, a.warmup, a.batches)
            print(f"{w:<7} {name:<35} {ips:8.1f}  {ms:8.1f}", flush=True)


if __name__ == "__main__":
    main()
