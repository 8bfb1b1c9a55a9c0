#!/usr/bin/env python3
"""The Keratrack training recipe in PyTorch + timm: the yardstick of `keratrack train` (issue 5).

It trains the same folds as our run (read from the folds.csv that `keratrack train` wrote), with
the same recipe, and prints the out-of-fold and fold-ensemble TEST accuracy and the wall time:

  timm.create_model(MODEL, pretrained=False, num_classes=C) per fold (timm's init, drop_path 0),
  AdamW(model.parameters(), lr, weight_decay) (decoupled decay over all parameters, eps 1e-8,
  betas (0.9, 0.999)), OneCycleLR(max_lr=lr, total_steps=epochs * batches) with PyTorch's defaults
  (cycle_momentum on beta1) stepped per batch, CrossEntropyLoss(label_smoothing), batch 16, the last
  partial batch dropped (as ours), best checkpoint per fold by validation accuracy, then that
  checkpoint's softmax on the fold's validation items (OOF) and on TEST (averaged over folds).

Augmentation, as datasets/augment.h's training defaults (torchvision equivalents):
  RandomResizedCrop(size, scale (0.25, 1), ratio (3/4, 4/3)), RandomHorizontalFlip(0.5),
  RandomApply([RandomRotation(15)], p 0.3), RandomApply([ColorJitter(brightness 0.2,
  contrast 0.2)], p 0.5), RandomApply([ColorJitter(saturation 0.2, hue 0.03)], p 0.3),
  ImageNet normalisation; JPEGs decoded with PIL's draft mode at >= 2x the model size (our
  loader's reduced-scale decoding). Evaluation: the whole image resized to size x size (bilinear,
  antialiased, as PIL), normalised.

Run it (timm lives in the repository's .venv; PyTorch at its fastest here, see
../shared/PERFORMANCE.md):

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
      .venv/bin/python tests/reference/train_nail_ref.py --data ../shared/datasets/nail-disease \
      --folds-csv runs/nail/folds.csv --model convnext_atto --img-size 128 --epochs 10 \
      --threads 2 --workers 2 --json runs/nail_pytorch.json

Nothing here is a golden file: the numbers go into bench/README.md next to ours.
"""
import argparse
import csv
import json
import math
import os
import random
import time

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_labels(root):
    """{relative path: class index} over the splits, and the class names (Roboflow CSV layout)."""
    labels, classes = {}, None
    for split in ("train", "valid", "test"):
        path = os.path.join(root, split, "_classes.csv")
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            rows = [[c.strip() for c in r] for r in csv.reader(f)]
        header, rows = rows[0], [r for r in rows[1:] if r]
        names = header[1:]
        if classes is None:
            classes = names
        assert names == classes, f"{path}: classes {names} differ from {classes}"
        for r in rows:
            hot = [int(float(x)) for x in r[1:]]
            if sum(hot) != 1:
                continue  # our reader skips these rows too (single-label data)
            labels[f"{split}/{r[0]}"] = hot.index(1)
    return labels, classes


def read_folds(path):
    """folds.csv of keratrack train: {path: fold (0-based) | 'test' | 'holdout'}."""
    out = {}
    with open(path, newline="") as f:
        first = f.readline()
        assert first.startswith("# keratrack folds"), f"{path}: not a keratrack folds file"
        for r in csv.DictReader(f):
            v = r["fold"].strip()
            out[r["path"]] = int(v) if v.lstrip("-").isdigit() else v
    return out


class Images(Dataset):
    def __init__(self, root, items, labels, tf, draft):
        self.root, self.items, self.labels, self.tf, self.draft = root, items, labels, tf, draft

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        im = Image.open(os.path.join(self.root, self.items[i]))
        if self.draft:
            im.draft("RGB", (self.draft, self.draft))
        return self.tf(im.convert("RGB")), self.labels[self.items[i]]


def transforms(size):
    train = T.Compose([
        T.RandomResizedCrop(size, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3)),
        T.RandomHorizontalFlip(0.5),
        T.RandomApply([T.RandomRotation(15)], p=0.3),
        T.RandomApply([T.ColorJitter(brightness=0.2, contrast=0.2)], p=0.5),
        T.RandomApply([T.ColorJitter(saturation=0.2, hue=0.03)], p=0.3),
        T.ToTensor(), T.Normalize(MEAN, STD)])
    evalt = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(MEAN, STD)])
    return train, evalt


@torch.no_grad()
def predict(model, loader):
    model.eval()
    out = []
    for x, _ in loader:
        out.append(F.softmax(model(x.contiguous(memory_format=torch.channels_last)), dim=1))
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds-csv", required=True)
    ap.add_argument("--model", default="convnext_atto")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--only-fold", type=int, default=0, help="train just this fold (1-based; for timing)")
    a = ap.parse_args()

    t0 = time.time()
    torch.set_num_threads(a.threads)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    labels, classes = read_labels(a.data)
    folds = read_folds(a.folds_csv)
    missing = [p for p in folds if p not in labels]
    assert not missing, f"{len(missing)} items of {a.folds_csv} have no label, e.g. {missing[:3]}"
    k = max(v for v in folds.values() if isinstance(v, int)) + 1
    test = sorted(p for p, v in folds.items() if v == "test")
    train_tf, eval_tf = transforms(a.img_size)
    pin = dict(num_workers=a.workers, persistent_workers=a.workers > 0)

    def eval_loader(items):
        return DataLoader(Images(a.data, items, labels, eval_tf, 0), batch_size=2 * a.batch, shuffle=False, **pin)

    oof_hits, oof_n, test_probs, fold_best = 0, 0, np.zeros((len(test), len(classes))), []
    test_dl = eval_loader(test)
    for f in range(k):
        if a.only_fold and f + 1 != a.only_fold:
            continue
        tr = sorted(p for p, v in folds.items() if isinstance(v, int) and v != f)
        va = sorted(p for p, v in folds.items() if v == f)
        train_dl = DataLoader(Images(a.data, tr, labels, train_tf, 2 * a.img_size), batch_size=a.batch, shuffle=True,
                              drop_last=True, **pin)
        val_dl = eval_loader(va)
        model = timm.create_model(a.model, pretrained=False, num_classes=len(classes)).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * len(train_dl))
        crit = torch.nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
        best, best_state, best_epoch = -1.0, None, 0
        for e in range(a.epochs):
            te = time.time()
            model.train()
            tot, hits, n = 0.0, 0, 0
            for x, y in train_dl:
                x = x.contiguous(memory_format=torch.channels_last)
                logits = model(x)
                loss = crit(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot += loss.item() * len(y)
                hits += (logits.argmax(1) == y).sum().item()
                n += len(y)
            p = predict(model, val_dl)
            yv = np.array([labels[q] for q in va])
            vacc = float((p.argmax(1) == yv).mean())
            vloss = float(-np.mean((1 - a.label_smoothing) * np.log(np.clip(p[np.arange(len(yv)), yv], 1e-12, 1)) +
                                   a.label_smoothing * np.mean(np.log(np.clip(p, 1e-12, 1)), axis=1)))
            flag = ""
            if vacc > best:
                best, best_epoch, flag = vacc, e + 1, "  * best"
                best_state = {kk: v.detach().clone() for kk, v in model.state_dict().items()}
            print(f"fold {f + 1}/{k} epoch {e + 1:2d}/{a.epochs}  train loss {tot / n:.4f} acc {hits / n:.4f}  "
                  f"val loss {vloss:.4f} acc {vacc:.4f}  lr {sched.get_last_lr()[0]:.2e}  {time.time() - te:.1f}s{flag}",
                  flush=True)
        model.load_state_dict(best_state)
        p = predict(model, val_dl)
        yv = np.array([labels[q] for q in va])
        oof_hits += int((p.argmax(1) == yv).sum())
        oof_n += len(yv)
        test_probs += predict(model, test_dl) / k
        fold_best.append({"fold": f + 1, "best_val_acc": best, "best_epoch": best_epoch})
        print(f"fold {f + 1}/{k} done: best val acc {best:.4f} at epoch {best_epoch}", flush=True)
    yt = np.array([labels[q] for q in test])
    res = {"model": a.model, "img_size": a.img_size, "epochs": a.epochs, "batch": a.batch, "lr": a.lr,
           "weight_decay": a.weight_decay, "label_smoothing": a.label_smoothing, "seed": a.seed, "folds": k,
           "threads": a.threads, "workers": a.workers, "oof_accuracy": oof_hits / oof_n,
           "test_accuracy": float((test_probs.argmax(1) == yt).mean()) if len(test) else math.nan,
           "n_oof": oof_n, "n_test": len(test), "fold_best": fold_best, "seconds": time.time() - t0,
           "torch": torch.__version__, "timm": timm.__version__}
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
