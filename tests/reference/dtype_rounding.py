#!/usr/bin/env python3
"""PyTorch's f32 -> bf16 and f32 -> f16 conversions of chosen values, for tests/checkpoints.

Writes tests/golden/checkpoints/dtype_rounding.safetensors with safetensors.torch (so the file is
also a sample of what the PyTorch world writes):
  "f32"  F32 [N]  the inputs: ties, subnormals, overflow edges, +-0, +-inf, random magnitudes
  "bf16" BF16 [N] torch's conversion of "f32" (round to nearest even)
  "f16"  F16 [N]  torch's conversion of "f32" (IEEE half, subnormals, overflow to inf)
  "i64"  I64 [4], "i32" I32 [3], "u8" U8 [5]: small integer tensors (labels are I64 in PyTorch)
metadata: torch version, the generator and seed. NaN is left out: PyTorch's scalar and vector
bf16 paths encode it differently (0x7FC0 vs 0xFFFF); the C test checks NaN stays NaN.

Run from the repository root (needs the safetensors package, e.g. the .venv of the helper rules):
  .venv/bin/python tests/reference/dtype_rounding.py
"""
import math
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "checkpoints",
                   "dtype_rounding.safetensors")


def main():
    special = [
        0.0, -0.0, 1.0, -1.0, 0.5, 3.0,
        1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20,  # bf16 ties / near-ties
        1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20,  # f16 ties / near-tie
        2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 3 * 2 ** -25, 2 ** -26, 5 * 2 ** -25,  # f16 subnormals
        2 ** -14, 2 ** -14 - 2 ** -25, 2 ** -14 - 2 ** -24, 2 ** -15 + 2 ** -26,
        65504.0, 65519.0, 65519.99, 65520.0, 65536.0, 1e5, -1e5,  # f16 overflow edge
        3.3895313892515355e38, 3.4028234663852886e38, -3.4028234663852886e38,  # bf16 overflow edge
        1.1754943508222875e-38, 1e-45, -1e-45, 9.18e-41,  # f32 min normal, f32 subnormals
        math.inf, -math.inf, math.pi, -math.e, 0.1, 1 / 3,
    ]
    g = torch.Generator().manual_seed(20261127)
    n_rand = 256
    mag = torch.pow(10.0, torch.rand(n_rand, generator=g, dtype=torch.float64) * 16 - 9)  # 1e-9 .. 1e7
    sign = torch.where(torch.rand(n_rand, generator=g) < 0.5, -1.0, 1.0).double()
    x = torch.cat([torch.tensor(special, dtype=torch.float64), mag * sign]).float()
    tensors = {
        "f32": x.contiguous(),
        "bf16": x.to(torch.bfloat16).contiguous(),
        "f16": x.to(torch.float16).contiguous(),
        "i64": torch.tensor([0, 5, -3, 2 ** 40], dtype=torch.int64),
        "i32": torch.tensor([7, -1, 2 ** 31 - 1], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
    }
    meta = {"torch_version": torch.__version__, "generator": "torch.Generator().manual_seed(20261127)",
            "script": "tests/reference/dtype_rounding.py"}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}: {x.numel()} values, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
