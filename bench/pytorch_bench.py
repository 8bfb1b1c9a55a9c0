#!/usr/bin/env python3
"""The PyTorch yardstick for bench/: the same ConvNeXt cases our C benchmark times, measured the
same way (median of timed repetitions after warm-up, images/s, GFLOP/s, peak RSS per case).

PyTorch at its fastest on this machine (../shared/PERFORMANCE.md says why each setting matters):
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
      /usr/bin/python3 bench/pytorch_bench.py --threads 2 --json bench/pytorch_results.json
Run our benchmark under the same environment in the same session and compare ratios only.
Quick sanity (two cheap cases):  ... bench/pytorch_bench.py --cases train_b8_64_atto,infer_b1_atto

Model: timm's convnext_* (timm 1.0 from the repository's .venv, found automatically when run with
/usr/bin/python3; see the helper rules for the venv), 6 classes, drop_path 0, fp32.
Cases (all 224x224 unless named):
  infer_b1_{atto,tiny,base}, infer_b16_{atto,tiny,base}: model.eval(), torch.inference_mode()
  train_b16_{atto,tiny} (train_b16_base with --with-base-train): model.train(), forward,
      F.cross_entropy(label_smoothing=0.1), backward, torch.optim.AdamW(lr=3e-4, weight_decay=1e-4)
  train_b8_64_atto: the unit-test-sized step (atto, batch 8, 64x64)
Each case runs in a fresh subprocess, so its peak RSS (ru_maxrss, importing torch included) is its
own. Memory format: --memory-format auto (default) probes contiguous and channels_last for each
case (warm-up, then the median of 3 runs each) and measures the faster; the table says which.
FLOPs: convolutions and linears counted by forward hooks, 2 per multiply-add (atto 1.09, tiny 8.91,
base 30.71 GFLOP per 224x224 image forward); a training step counts 3x forward.
"""
import argparse
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CASES = {
    # name: (kind, model, batch, height, width)
    "infer_b1_atto": ("infer", "convnext_atto", 1, 224, 224),
    "infer_b1_tiny": ("infer", "convnext_tiny", 1, 224, 224),
    "infer_b1_base": ("infer", "convnext_base", 1, 224, 224),
    "infer_b16_atto": ("infer", "convnext_atto", 16, 224, 224),
    "infer_b16_tiny": ("infer", "convnext_tiny", 16, 224, 224),
    "infer_b16_base": ("infer", "convnext_base", 16, 224, 224),
    "train_b16_atto": ("train", "convnext_atto", 16, 224, 224),
    "train_b16_tiny": ("train", "convnext_tiny", 16, 224, 224),
    "train_b16_base": ("train", "convnext_base", 16, 224, 224),
    "train_b8_64_atto": ("train", "convnext_atto", 8, 64, 64),
}
DEFAULT_CASES = [c for c in CASES if c != "train_b16_base"]
NUM_CLASSES = 6


def add_venv_to_path():
    """Lets /usr/bin/python3 (Debian's torch) import timm from the repository's .venv."""
    try:
        import timm  # noqa: F401
        return
    except ImportError:
        pass
    for sp in sorted(glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages"))):
        sys.path.append(sp)


def count_flops(model, x):
    """2 x multiply-adds of every Conv2d and Linear in one forward pass of x."""
    import torch
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += 2 * out.numel() * k

    def linear_hook(m, inp, out):
        total[0] += 2 * out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        model.eval()
        model(x)
    for h in hooks:
        h.remove()
    return total[0]


def worker(case, threads, memory_format, min_time, min_iters, max_iters):
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    add_venv_to_path()
    import torch
    import torch.nn.functional as F
    import timm
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    kind, arch, batch, h, w = CASES[case]
    model = timm.create_model(arch, num_classes=NUM_CLASSES, drop_path_rate=0.0)
    x = torch.randn(batch, 3, h, w)
    y = torch.randint(0, NUM_CLASSES, (batch,))
    fwd_flops = count_flops(model, x[:1]) * batch
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4) if kind == "train" else None

    def set_format(fmt):
        mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        model.to(memory_format=mf)
        return x.contiguous(memory_format=mf)

    if kind == "infer":
        model.eval()

        def step(xx):
            with torch.inference_mode():
                model(xx)
    else:
        model.train()

        def step(xx):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xx), y, label_smoothing=0.1)
            loss.backward()
            opt.step()

    def timed(xx, n):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            step(xx)
            ts.append(time.perf_counter() - t0)
        return ts

    def warm_up(xx):
        # oneDNN builds its primitives on the first calls (about 1 s for atto at 224): at least
        # 3 runs and 1 s, so no start-up cost reaches the timed runs
        t0, n = time.perf_counter(), 0
        while n < 3 or time.perf_counter() - t0 < 1.0:
            timed(xx, 1)
            n += 1

    probe = {}
    if memory_format == "auto":
        for fmt in ("contiguous", "channels_last"):
            xx = set_format(fmt)
            warm_up(xx)
            probe[fmt] = statistics.median(timed(xx, 3))
        fmt = min(probe, key=probe.get)
    else:
        fmt = memory_format
    xx = set_format(fmt)
    warm_up(xx)
    times, t_start = [], time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() - t_start < min_time):
        times += timed(xx, 1)
    med = statistics.median(times)
    flops = fwd_flops * (3 if kind == "train" else 1)
    return {
        "case": case, "kind": kind, "model": arch, "batch": batch, "height": h, "width": w,
        "threads": threads, "memory_format": fmt, "probe_s": probe,
        "iters": len(times), "median_s": med, "min_s": min(times), "max_s": max(times),
        "images_per_s": batch / med, "gflop": flops / 1e9, "gflop_per_s": flops / med / 1e9,
        "fwd_gflop_per_image": fwd_flops / batch / 1e9,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_before_import_bytes": rss_start * 1024,
        "torch": torch.__version__, "timm": timm.__version__,
    }


def environment():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
    }


def table(results):
    lines = ["| case | model | batch | input | format | median | images/s | GFLOP/s | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | failed: {r['error']} | | | | | | | |")
            continue
        med = r["median_s"]
        t = f"{med * 1e3:.1f} ms" if med < 1 else f"{med:.2f} s"
        lines.append(f"| {r['case']} | {r['model']} | {r['batch']} | {r['height']}x{r['width']} | "
                     f"{r['memory_format']} | {t} | {r['images_per_s']:.1f} | {r['gflop_per_s']:.0f} | "
                     f"{r['peak_rss_bytes'] / 1e9:.2f} GB |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES),
                    help="comma-separated case names (default: all but train_b16_base); one of: "
                         + ", ".join(CASES))
    ap.add_argument("--with-base-train", action="store_true", help="also time train_b16_base (~6.6 s a step)")
    ap.add_argument("--memory-format", choices=("auto", "contiguous", "channels_last"), default="auto")
    ap.add_argument("--min-time", type=float, default=5.0, help="seconds of timed runs per case (default 5)")
    ap.add_argument("--min-iters", type=int, default=5, help="timed runs per case at least (default 5)")
    ap.add_argument("--max-iters", type=int, default=200, help="timed runs per case at most (default 200)")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        print(json.dumps(worker(a.worker, a.threads, a.memory_format, a.min_time, a.min_iters, a.max_iters)))
        return 0
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    if a.with_base_train and "train_b16_base" not in cases:
        cases.append("train_b16_base")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    results = []
    for c in cases:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", c, "--threads", str(a.threads),
               "--memory-format", a.memory_format, "--min-time", str(a.min_time),
               "--min-iters", str(a.min_iters), "--max-iters", str(a.max_iters)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            r = json.loads(line)
        except ValueError:
            tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
            r = {"case": c, "error": f"exit {p.returncode}: {tail}"}
        results.append(r)
        print(f"{c}: " + (f"{r['median_s'] * 1e3:.1f} ms median over {r['iters']} runs ({r['memory_format']})"
                          if "error" not in r else r["error"]), file=sys.stderr, flush=True)
    env = environment()
    print(f"PyTorch yardstick: {a.threads} threads, {env['cpu']}; OPENBLAS_CORETYPE="
          f"{env['OPENBLAS_CORETYPE']}, LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}, "
          f"GLIBC_TUNABLES={env['GLIBC_TUNABLES']}\n")
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"environment": env, "command": " ".join(sys.argv), "results": results}, f, indent=1)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
