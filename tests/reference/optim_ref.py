#!/usr/bin/env python3
"""Golden numbers for the optimizer, the schedule and gradient clipping (issue 5, item 2).

Plain PyTorch (no timm): run from the repository root with Debian's torch plus the safetensors
package of the .venv (see the helper rules):
  .venv/bin/python tests/reference/optim_ref.py

Writes tests/golden/optim/ (every file's metadata repeats the settings in words):

adamw_onecycle.safetensors: three parameters p0 (4, 3), p1 (3,), p2 (2, 2, 2), T = 50 steps.
  init.<p>               F32 (shape)      values before the first step
  grads.<p>              F32 (T, shape)   the gradient given at step t (p1[2] is always 0, so
                                          that element moves by weight decay alone)
  For each case C below:
  C.lr                   F64 (T,)         the group's lr used by step t (read before opt.step())
  C.beta1                F64 (T,)         the group's beta1 used by step t
  C.params.<p>           F32 (T, shape)   the parameter after step t (t = 0 is after the 1st step)
  C.exp_avg.<p>, C.exp_avg_sq.<p> F32 (shape)  AdamW's moments after the last step
  Cases (AdamW: torch.optim.AdamW, amsgrad False, eps 1e-8, betas (0.9, 0.999) unless cycled):
  onecycle_mom    weight_decay 1e-4, OneCycleLR(max_lr=3e-4, total_steps=50) with PyTorch's
                  defaults: pct_start 0.3, anneal_strategy 'cos', div_factor 25,
                  final_div_factor 1e4, three_phase False, cycle_momentum True,
                  base_momentum 0.85, max_momentum 0.95 (cycled on AdamW's beta1); sched.step()
                  after every opt.step()
  onecycle_nomom  the same with cycle_momentum False (beta1 stays 0.9)
  const_wd        lr 1e-2 constant, weight_decay 0.5 (large, so decoupled decay is visible)
  groups          lr 1e-2 constant; two groups: p0 with weight_decay 0.05, p1 and p2 with 0
                  (how timm's factory exempts norms, biases and gammas); the group of each
                  parameter is in the metadata

onecycle_schedule.safetensors: the schedule alone (cycle_momentum True, defaults as above,
  max_lr 3e-4) for total_steps N in 37, 50, 1000:
  total<N>.lr, total<N>.beta1   F64 (N,)   values at scheduler step 0 .. N-1

clip_grad_norm.safetensors: torch.nn.utils.clip_grad_norm_(params, max_norm) (norm_type 2,
  PyTorch 1.13: total = ||(||g_i||_2)_i||_2, coef = max_norm / (total + 1e-6), clamped to 1,
  every gradient multiplied by it, also when coef is 1), for three cases k:
  clip<k>.grads.<p>      F32 (shape)   gradients given
  clip<k>.clipped.<p>    F32 (shape)   after clipping
  clip<k>.total_norm     F32 ()        the returned norm (before clipping)
  clip<k>.max_norm       F64 ()
"""
import math
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "optim")
SHAPES = {"p0": (4, 3), "p1": (3,), "p2": (2, 2, 2)}
T = 50


def make_params(g):
    return {k: (0.5 * torch.randn(s, generator=g)).float() for k, s in SHAPES.items()}


def make_grads(g):
    grads = {k: torch.randn((T,) + s, generator=g) for k, s in SHAPES.items()}
    # step-dependent scale so the moments see varied magnitudes
    scale = torch.tensor([1.0 + 0.9 * math.sin(0.37 * t) for t in range(T)])
    for k in grads:
        grads[k] *= scale.view((T,) + (1,) * len(SHAPES[k]))
    grads["p1"][:, 2] = 0.0
    return grads


def run_case(name, init, grads, out, opt_fn, sched_fn):
    params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
    opt = opt_fn(params)
    sched = sched_fn(opt) if sched_fn else None
    lrs, b1s = [], []
    hist = {k: [] for k in params}
    for t in range(T):
        for k, p in params.items():
            p.grad = grads[k][t].clone()
        lrs.append(opt.param_groups[0]["lr"])
        b1s.append(opt.param_groups[0]["betas"][0])
        opt.step()
        if sched:
            sched.step()
        for k, p in params.items():
            hist[k].append(p.detach().clone())
    out[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    out[f"{name}.beta1"] = torch.tensor(b1s, dtype=torch.float64)
    for k, p in params.items():
        out[f"{name}.params.{k}"] = torch.stack(hist[k]).contiguous()
        st = opt.state[p]
        out[f"{name}.exp_avg.{k}"] = st["exp_avg"].clone().contiguous()
        out[f"{name}.exp_avg_sq.{k}"] = st["exp_avg_sq"].clone().contiguous()


def onecycle(total, cycle_momentum=True):
    return lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-4, total_steps=total, cycle_momentum=cycle_momentum)


def adamw_file():
    g = torch.Generator().manual_seed(11)
    init, grads = make_params(g), make_grads(g)
    out = {}
    for k in SHAPES:
        out[f"init.{k}"] = init[k].contiguous()
        out[f"grads.{k}"] = grads[k].contiguous()

    def adamw(lr, wd):
        return lambda ps: torch.optim.AdamW(list(ps.values()), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                                            weight_decay=wd)

    run_case("onecycle_mom", init, grads, out, adamw(3e-4, 1e-4), onecycle(T, True))
    run_case("onecycle_nomom", init, grads, out, adamw(3e-4, 1e-4), onecycle(T, False))
    run_case("const_wd", init, grads, out, adamw(1e-2, 0.5), None)
    run_case("groups", init, grads, out,
             lambda ps: torch.optim.AdamW([{"params": [ps["p0"]], "weight_decay": 0.05},
                                           {"params": [ps["p1"], ps["p2"]], "weight_decay": 0.0}],
                                          lr=1e-2, betas=(0.9, 0.999), eps=1e-8), None)
    meta = {
        "steps": str(T), "params": "p0 (4, 3), p1 (3,), p2 (2, 2, 2)",
        "adamw": "torch.optim.AdamW, amsgrad False, eps 1e-8, betas (0.9, 0.999) unless cycled",
        "onecycle_mom": "weight_decay 1e-4; OneCycleLR(max_lr=3e-4, total_steps=50), defaults "
                        "(pct_start 0.3, cos, div_factor 25, final_div_factor 1e4, three_phase False, "
                        "cycle_momentum True, base_momentum 0.85, max_momentum 0.95 on beta1); "
                        "sched.step() after each opt.step()",
        "onecycle_nomom": "as onecycle_mom with cycle_momentum False",
        "const_wd": "lr 1e-2 constant, weight_decay 0.5",
        "groups": "lr 1e-2 constant; p0 weight_decay 0.05; p1, p2 weight_decay 0",
        "record": "C.lr[t], C.beta1[t]: used by step t; C.params.<p>[t]: after step t",
        "torch_version": torch.__version__, "generated_by": "tests/reference/optim_ref.py",
    }
    save_file(out, os.path.join(OUT, "adamw_onecycle.safetensors"), metadata=meta)


def schedule_file():
    out = {}
    for total in (37, 50, 1000):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=3e-4)
        sched = onecycle(total, True)(opt)
        lrs, b1s = [], []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            b1s.append(opt.param_groups[0]["betas"][0])
            p.grad = torch.zeros(1)
            opt.step()
            sched.step()
        out[f"total{total}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        out[f"total{total}.beta1"] = torch.tensor(b1s, dtype=torch.float64)
    meta = {"schedule": "OneCycleLR(max_lr=3e-4, total_steps=N), PyTorch defaults, cycle_momentum True "
                        "on AdamW beta1 (0.85..0.95)",
            "record": "total<N>.lr[t], total<N>.beta1[t]: values at scheduler step t, t = 0..N-1",
            "torch_version": torch.__version__, "generated_by": "tests/reference/optim_ref.py"}
    save_file(out, os.path.join(OUT, "onecycle_schedule.safetensors"), metadata=meta)


def clip_file():
    g = torch.Generator().manual_seed(13)
    out = {}
    for k, (scale, max_norm) in enumerate(((0.01, 1.0), (10.0, 1.0), (1.0, 2.5))):
        params = {n: torch.nn.Parameter(torch.zeros(s)) for n, s in SHAPES.items()}
        for n, p in params.items():
            p.grad = scale * torch.randn(SHAPES[n], generator=g)
            out[f"clip{k}.grads.{n}"] = p.grad.clone().contiguous()
        total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
        for n, p in params.items():
            out[f"clip{k}.clipped.{n}"] = p.grad.clone().contiguous()
        out[f"clip{k}.total_norm"] = total.detach().float().reshape(())
        out[f"clip{k}.max_norm"] = torch.tensor(max_norm, dtype=torch.float64)
    meta = {"clip": "torch.nn.utils.clip_grad_norm_(params, max_norm), norm_type 2: coef = "
                    "max_norm / (total_norm + 1e-6) clamped to 1, applied to every gradient",
            "cases": "clip0: small grads (no clipping, coef 1); clip1: large grads; clip2: max_norm 2.5",
            "torch_version": torch.__version__, "generated_by": "tests/reference/optim_ref.py"}
    save_file(out, os.path.join(OUT, "clip_grad_norm.safetensors"), metadata=meta)


def main():
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    adamw_file()
    schedule_file()
    clip_file()
    for f in sorted(os.listdir(OUT)):
        print(f"{f}: {os.path.getsize(os.path.join(OUT, f))} bytes")


if __name__ == "__main__":
    main()
