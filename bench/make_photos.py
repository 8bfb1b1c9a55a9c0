"""Writes N phone-sized (4032x3024) JPEGs of a noisy gradient to OUTDIR: the size of a scalp photo
straight from a phone, which the bundled datasets (150-640 px) do not have. Deterministic.
usage: python3 bench/make_photos.py OUTDIR [N] (PIL and numpy: Debian's python3-pil, or .venv)"""
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
h, w = 3024, 4032
y, x = np.mgrid[0:h, 0:w]
for i in range(n):
    base = np.stack([x * 255 // w, y * 255 // h, (x + y + 700 * i) * 255 // (w + h + 700 * n)], -1).astype(np.int16)
    noise = rng.integers(-40, 40, (h // 8, w // 8, 3)).repeat(8, 0).repeat(8, 1)  # 8x8 blocks: JPEG-like detail
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(os.path.join(out, f"photo{i}.jpg"), quality=90)
print(f"make_photos: {n} x {w}x{h} JPEGs in {out}")
