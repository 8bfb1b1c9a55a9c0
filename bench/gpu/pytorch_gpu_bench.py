#!/usr/bin/env python3
"""PyTorch on the same GPU, for bench/gpu/run_gpu_checks.sh: ConvNeXt training steps and inference
timed the way kt_gpu_bench times ours (median of timed steps after warm-up, synchronised per step).

Modes (torch.backends.cudnn.benchmark on in all):
  eager          NCHW, fp32, PyTorch's defaults (cuDNN may use TF32, matmuls do not)
  channels_last  NHWC memory format, fp32, TF32 allowed for matmuls and cuDNN (as our --tf32)
  amp_bf16       channels_last + torch.autocast(bfloat16): PyTorch's mixed precision
Model: timm's convnext_* when timm imports, else the same architecture defined below (timm's
layout: stem 4x4/4 + LayerNorm, blocks dwconv 7x7 -> LayerNorm -> Linear 4x -> GELU -> Linear ->
layer scale, downsample LayerNorm + 2x2/2 conv, head pool -> LayerNorm -> Linear), 6 classes.
Training step: forward, cross-entropy (label smoothing 0.1), backward, AdamW(lr 3e-4, wd 1e-4).
Peak memory: torch.cuda.max_memory_allocated() of the case.
Usage: pytorch_gpu_bench.py [--cases train_b64_tiny,...] [--modes eager,channels_last,amp_bf16]
                            [--warmup 2] [--iters 5] [--json FILE]
"""
import argparse
import json
import statistics
import sys
import time

CASES = {
    # name: (kind, model, batch, size) -- the same cases run_gpu_checks.sh gives kt_gpu_bench
    "train_b64_tiny": ("train", "convnext_tiny", 64, 224),
    "train_b64_base": ("train", "convnext_base", 64, 224),
    "infer_b1_tiny": ("infer", "convnext_tiny", 1, 224),
    "infer_b1_base": ("infer", "convnext_base", 1, 224),
    "infer_b64_tiny": ("infer", "convnext_tiny", 64, 224),
    "infer_b64_base": ("infer", "convnext_base", 64, 224),
}
CONFIGS = {"convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)), "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024))}
NUM_CLASSES = 6


def build_model(name):
    import torch
    from torch import nn
    import torch.nn.functional as F

    try:
        import timm

        return timm.create_model(name, num_classes=NUM_CLASSES), "timm " + timm.__version__
    except ImportError:
        pass

    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.fc1 = nn.Linear(dim, 4 * dim)
            self.fc2 = nn.Linear(4 * dim, dim)
            self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

        def forward(self, x):
            s = x
            x = self.conv_dw(x).permute(0, 2, 3, 1)
            x = self.fc2(F.gelu(self.fc1(self.norm(x)))) * self.gamma
            return x.permute(0, 3, 1, 2) + s

    class ConvNeXt(nn.Module):
        def __init__(self, depths, dims):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))
            stages = []
            for i, (d, c) in enumerate(zip(depths, dims)):
                down = [] if i == 0 else [LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], c, 2, 2)]
                stages.append(nn.Sequential(*down, *[Block(c) for _ in range(d)]))
            self.stages = nn.Sequential(*stages)
            self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
            self.fc = nn.Linear(dims[-1], NUM_CLASSES)

        def forward(self, x):
            x = self.stages(self.stem(x)).mean((2, 3))
            return self.fc(self.norm(x))

    return ConvNeXt(*CONFIGS[name]), "built-in ConvNeXt (timm layout)"


def run_case(case, mode, warmup, iters):
    import torch
    import torch.nn.functional as F

    kind, name, batch, size = CASES[case]
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = mode != "eager"
    torch.backends.cudnn.allow_tf32 = True
    fmt = torch.contiguous_format if mode == "eager" else torch.channels_last
    torch.manual_seed(0)
    model, source = build_model(name)
    model = model.cuda().to(memory_format=fmt)
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=fmt)
    y = torch.arange(batch, device="cuda") % NUM_CLASSES
    amp = mode == "amp_bf16"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4) if kind == "train" else None
    model.train(kind == "train")
    torch.cuda.reset_peak_memory_stats()

    def step():
        if kind == "train":
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                model(x)

    times = []
    for it in range(warmup + iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model, opt, x, y
    torch.cuda.empty_cache()
    return {"case": case, "mode": mode, "median_s": med, "images_per_s": batch / med, "peak_mib": peak, "model": source}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--modes", default="eager,channels_last,amp_bf16")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("pytorch_gpu_bench: torch %s sees no CUDA device" % torch.__version__, file=sys.stderr)
        return 1
    print("PyTorch %s, CUDA %s, cuDNN %s, %s\n" % (torch.__version__, torch.version.cuda, torch.backends.cudnn.version(),
                                                 torch.cuda.get_device_name(0)))
    print("| case | mode | median | images/s | peak MiB (max_memory_allocated) |\n|---|---|---|---|---|")
    results = []
    for case in a.cases.split(","):
        if case not in CASES:
            print("pytorch_gpu_bench: unknown case %s (known: %s)" % (case, ", ".join(CASES)), file=sys.stderr)
            return 2
        for mode in a.modes.split(","):
            try:
                r = run_case(case, mode, a.warmup, a.iters)
            except Exception as e:  # an out-of-memory case must not stop the table
                print("| %s | %s | failed: %s | | |" % (case, mode, str(e).splitlines()[0][:120]))
                torch.cuda.empty_cache()
                continue
            results.append(r)
            print("| %s | %s | %.2f ms | %.1f | %.0f |" % (case, mode, r["median_s"] * 1e3, r["images_per_s"], r["peak_mib"]),
                  flush=True)
    if results:
        print("\nmodel: %s; median of %d steps after %d warm-up. Command: %s" % (results[0]["model"], a.iters, a.warmup,
                                                                                 " ".join(sys.argv)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
