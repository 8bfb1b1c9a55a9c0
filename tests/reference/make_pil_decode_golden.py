#!/usr/bin/python3
"""Golden files for datasets/image.c decoding, made by Pillow: how PIL (open + exif_transpose +
convert("RGB")) sees EXIF-rotated, grayscale and CMYK JPEGs and grey/palette/alpha PNGs.

Run from the repository root:  /usr/bin/python3 tests/reference/make_pil_decode_golden.py
Writes tests/golden/datasets/pil_<name>.<jpg|png> (the input, written by Pillow) and
pil_<name>.u8 (PIL's RGB pixels, (h, w, 3) uint8) plus pil_cases.txt: name file out_w out_h.
"""
import os

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "datasets")
os.makedirs(OUT, exist_ok=True)

# A 24x16 picture with four flat quadrants (so JPEG loss cannot hide a wrong rotation) and a ramp.
W, H = 24, 16
yy, xx = np.mgrid[0:H, 0:W]
rgb = np.zeros((H, W, 3), np.uint8)
rgb[(yy < H // 2) & (xx < W // 2)] = (230, 30, 30)
rgb[(yy < H // 2) & (xx >= W // 2)] = (30, 200, 40)
rgb[(yy >= H // 2) & (xx < W // 2)] = (40, 40, 220)
rgb[(yy >= H // 2) & (xx >= W // 2)] = (240, 240, 60)
rgb[:, :, 2] = np.maximum(rgb[:, :, 2], (xx * 8).astype(np.uint8))
base = Image.fromarray(rgb, "RGB")

cases = []


def emit(name, img_path):
    im = ImageOps.exif_transpose(Image.open(img_path)).convert("RGB")
    np.asarray(im, dtype=np.uint8).tofile(os.path.join(OUT, f"pil_{name}.u8"))
    cases.append((name, os.path.basename(img_path), im.size[0], im.size[1]))


for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    p = os.path.join(OUT, f"pil_orient{o}.jpg")
    base.save(p, quality=95, exif=exif.tobytes())
    emit(f"orient{o}", p)

p = os.path.join(OUT, "pil_gray.jpg")
base.convert("L").save(p, quality=95)
emit("gray", p)

p = os.path.join(OUT, "pil_cmyk.jpg")
base.convert("CMYK").save(p, quality=95)  # Pillow writes Adobe (inverted) CMYK
emit("cmyk", p)

alpha = Image.fromarray((xx * 10 % 256).astype(np.uint8), "L")
rgba = base.copy()
rgba.putalpha(alpha)
p = os.path.join(OUT, "pil_rgba.png")
rgba.save(p)
emit("rgba", p)

p = os.path.join(OUT, "pil_la.png")
la = base.convert("L")
la.putalpha(alpha)
la.save(p)
emit("la", p)

p = os.path.join(OUT, "pil_palette.png")
base.quantize(8).save(p, transparency=0)
emit("palette", p)

p = os.path.join(OUT, "pil_orient6.png")
exif = Image.Exif()
exif[0x0112] = 6
base.save(p, exif=exif.tobytes())
emit("png_orient6", p)

# The same file with its eXIf chunk moved after the image data (the PNG spec allows either place;
# Pillow honours it there too, and a header-only reader must look past IDAT to find it).
with open(p, "rb") as f:
    png = f.read()
chunks, pos = [], 8
while pos < len(png):
    n = int.from_bytes(png[pos:pos + 4], "big")
    chunks.append(png[pos:pos + 12 + n])
    pos += 12 + n
exif_chunk = [c for c in chunks if c[4:8] == b"eXIf"]
others = [c for c in chunks if c[4:8] not in (b"eXIf", b"IEND")]
iend = [c for c in chunks if c[4:8] == b"IEND"]
p = os.path.join(OUT, "pil_orient6_late.png")
with open(p, "wb") as f:
    f.write(png[:8] + b"".join(others + exif_chunk + iend))
emit("png_orient6_late", p)

with open(os.path.join(OUT, "pil_cases.txt"), "w") as f:
    for c in cases:
        f.write("%s %s %d %d\n" % c)
print("wrote", len(cases), "cases to", OUT)
