#!/usr/bin/python3
"""Golden files for datasets/resize.c and the decode+resize path, made by Pillow.

Run from the repository root:  /usr/bin/python3 tests/reference/make_resize_golden.py
Writes tests/golden/datasets/:
  resize_src.png             a 97x73 synthetic RGB image (gradients + seeded noise)
  resize_cases.txt           one line per case: name out_w out_h x0 y0 x1 y1 offset (box in source
                             pixels; offset of the case's bytes in resize_all.u8)
  resize_all.u8              the cases' outputs back to back: Pillow's Image.resize((w, h), BILINEAR,
                             box) of resize_src.png, each (h, w, 3) uint8
  real_cases.txt             one line per case: name dataset-relative-path out_w out_h
  real_<name>.u8             Image.open(path) -> exif_transpose -> convert("RGB") -> resize BILINEAR
  norm_<name>.f32            for the nail64 case: torchvision's ToTensor + Normalize(ImageNet) of
                             real_<name>.u8, laid out (h, w, 3) little-endian float32
The real cases read ../shared/datasets (not copied into the repository; only the small resized
outputs are committed). Pillow, numpy and torch are Debian's (python3-pil, python3-torch).
"""
import os
import sys

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "datasets")
DATA = os.path.join(ROOT, "..", "shared", "datasets")

os.makedirs(OUT, exist_ok=True)

# ---- synthetic source: smooth gradients, a hard edge and seeded noise ---------------------------
W, H = 97, 73
rng = np.random.default_rng(1234)
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
r = 255 * xx / (W - 1)
g = 255 * yy / (H - 1)
b = np.where((xx // 8 + yy // 8) % 2 == 0, 220.0, 30.0)
src = np.stack([r, g, b], axis=-1) + rng.normal(0, 25, size=(H, W, 3))
src = np.clip(np.rint(src), 0, 255).astype(np.uint8)
Image.fromarray(src, "RGB").save(os.path.join(OUT, "resize_src.png"), optimize=True)

# name, out_w, out_h, box (None = whole image)
cases = [
    ("down_32x24", 32, 24, None),
    ("down_7x5", 7, 5, None),
    ("up_150x50", 150, 50, None),  # upscale in x, downscale in y
    ("up_130x100", 130, 100, None),
    ("same_w_97x40", 97, 40, None),  # no horizontal pass
    ("same_h_50x73", 50, 73, None),  # no vertical pass
    ("box_40x30", 40, 30, (10.5, 3.25, 80.0, 60.0)),
    ("box_int_64x64", 64, 64, (12.0, 0.0, 85.0, 73.0)),
]
# Random geometry: sizes from 1 pixel up, fractional boxes (float32-representable values, as the
# C side passes floats), so every window position (left edge, right edge, wide and narrow) occurs.
for i in range(16):
    x0 = float(np.float32(rng.uniform(0, W / 2))) if i % 2 else 0.0
    y0 = float(np.float32(rng.uniform(0, H / 2))) if i % 3 else 0.0
    x1 = float(np.float32(rng.uniform(x0 + 1, W)))
    y1 = float(np.float32(rng.uniform(y0 + 1, H)))
    w = int(rng.integers(1, 48)) if i % 4 else int(rng.integers(60, 140))
    h = int(rng.integers(1, 40))
    cases.append((f"random{i}", w, h, (x0, y0, x1, y1)))
img = Image.open(os.path.join(OUT, "resize_src.png"))
assert img.mode == "RGB"
offset = 0
with open(os.path.join(OUT, "resize_cases.txt"), "w") as f, open(os.path.join(OUT, "resize_all.u8"), "wb") as raw:
    for name, w, h, box in cases:
        out = np.asarray(img.resize((w, h), Image.BILINEAR, box=box), dtype=np.uint8)
        raw.write(out.tobytes())
        bx = box if box is not None else (0.0, 0.0, float(W), float(H))
        f.write(f"{name} {w} {h} {bx[0]!r} {bx[1]!r} {bx[2]!r} {bx[3]!r} {offset}\n")
        offset += out.size

# ---- real images: decode + resize, as a training pipeline built on PIL would --------------------
real = [
    ("nail224", "nail-disease/train/10_PNG_jpg.rf.fc321f5ce5170e4dcfafb9149654f597.jpg", 224, 224),
    ("nail64", "nail-disease/valid", 64, 64),  # first file of the folder, sorted
    ("acne64", "acne-multilabel/test", 64, 64),
    ("hair64", "hair-samples", 64, 64),
]
if not os.path.isdir(DATA):
    sys.exit(f"{DATA} is absent: the real-image cases need ../shared/datasets")
mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
with open(os.path.join(OUT, "real_cases.txt"), "w") as f:
    for name, rel, w, h in real:
        path = os.path.join(DATA, rel)
        if os.path.isdir(path):
            first = sorted(p for p in os.listdir(path) if p.lower().endswith(".jpg"))[0]
            rel = rel + "/" + first
            path = os.path.join(DATA, rel)
        im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        out = np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.uint8)
        out.tofile(os.path.join(OUT, f"real_{name}.u8"))
        f.write(f"{name} {rel} {w} {h}\n")
        if name == "nail64":
            import torch

            t = torch.from_numpy(out.copy()).permute(2, 0, 1).float().div(255)  # ToTensor
            t = (t - torch.from_numpy(mean)[:, None, None]) / torch.from_numpy(std)[:, None, None]
            t.permute(1, 2, 0).contiguous().numpy().astype("<f4").tofile(os.path.join(OUT, f"norm_{name}.f32"))
print("wrote", OUT)
