#!/usr/bin/env python3
"""PyTorch's depthwise convolution on the shapes `keratrack bench dwconv` times, the same way: NHWC
memory (channels_last), stride 1, padding k//2, bias in the forward; forward, data gradient and
weight gradient timed apart (aten::convolution_backward with one output each), one untimed round,
then the best of --reps runs of each pass.

Run it under the environment bench/pytorch_bench.py documents (the OpenMP OpenBLAS, 2 threads here):
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      OMP_NUM_THREADS=2 /usr/bin/python3 bench/pytorch_dwconv.py --threads 2 --json /tmp/torch_dw.json
  build/keratrack bench dwconv --threads 2 --compare /tmp/torch_dw.json
Shapes are N x H x C (square) or N x H x W x C, as keratrack's --shapes.
"""
import argparse
import json
import sys
import time

DEFAULT_SHAPES = ("1x56x96,1x14x384,1x7x768,1x56x128,1x14x512,1x7x1024,16x56x96,16x28x192,16x14x384,"
                  "16x7x768,16x14x512,16x7x1024")


def parse_shape(s):
    v = [int(t) for t in s.split("x")]
    if len(v) == 3:
        return v[0], v[1], v[1], v[2]
    if len(v) == 4:
        return tuple(v)
    raise ValueError(f"{s!r} is not NxHxC or NxHxWxC")


def best_of(fn, reps):
    fn()  # untimed: allocations, oneDNN primitive creation
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--kernel", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", help="write the results here (for keratrack bench dwconv --compare)")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    k, pad = a.kernel, a.kernel // 2
    results = []
    print(f"PyTorch {torch.__version__} depthwise {k}x{k}, channels_last, {torch.get_num_threads()} threads, best of {a.reps}")
    print("| input N x H x W x C | pass | time | GFLOP/s |\n|---|---|---|---|")
    for s in a.shapes.split(","):
        n, h, w, c = parse_shape(s)
        torch.manual_seed(0)
        x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
        wt = (torch.randn(c, 1, k, k) * 0.1).contiguous(memory_format=torch.channels_last)
        b = torch.randn(c) * 0.01
        with torch.no_grad():
            y = torch.nn.functional.conv2d(x, wt, b, 1, pad, 1, c)
            dy = torch.randn_like(y).contiguous(memory_format=torch.channels_last)

            def fwd():
                torch.nn.functional.conv2d(x, wt, b, 1, pad, 1, c)

            def grad(mask):
                return lambda: torch.ops.aten.convolution_backward(dy, x, wt, [c], [1, 1], [pad, pad], [1, 1], False, [0, 0], c, mask)

            times = {"forward_s": best_of(fwd, a.reps), "data_grad_s": best_of(grad([True, False, False]), a.reps),
                     "weight_grad_s": best_of(grad([False, True, False]), a.reps)}
        flop = 2.0 * y.numel() * k * k
        shape = f"{n}x{h}x{w}x{c}"
        for name, key in (("forward", "forward_s"), ("data grad", "data_grad_s"), ("weight grad", "weight_grad_s")):
            print(f"| {shape} | {name} | {times[key] * 1e3:.3f} ms | {flop / times[key] / 1e9:.1f} |")
        sys.stdout.flush()
        results.append({"shape": shape, "kernel": k, **times})
    doc = {"torch": torch.__version__, "threads": torch.get_num_threads(), "memory_format": "channels_last", "reps": a.reps,
           "results": results}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
