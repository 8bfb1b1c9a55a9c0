#!/usr/bin/env python3
"""Golden files for the ConvNeXt parity tests (issue 3), in the manner of llm.c's test_gpt2.

Model: timm's own convnext_atto (NOT a re-definition: timm installs and imports with Debian's torch
1.13 in a venv that sees the system packages), 6 classes, drop_path_rate 0, drop_rate 0, train().

Run from the repository root:
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install --no-deps timm huggingface_hub safetensors
  .venv/bin/python tests/reference/parity_convnext.py

Writes tests/golden/parity/:
  convnext_atto_weights.safetensors   the weights, a plain timm state_dict (timm names and shapes,
                                      mlp.fc1/fc2 weights 4-D [out, in, 1, 1]) saved by
                                      safetensors.torch.save_file as BF16 with metadata
                                      {"format": "pt"} only, exactly like timm's hub files. Every
                                      value is bf16-representable, so BF16 stores them losslessly.
  convnext_atto_64x64_b4.safetensors  case 1: batch 4, 64x64, activations too
  convnext_atto_96x96_b3.safetensors  case 2: batch 3, 96x96, labels [1, 1, 4] (not all classes)
  convnext_atto_64x96_b2.safetensors  case 3: batch 2, H=64, W=96 (non-square)
Each case file holds (see its metadata for the same text):
  input                F32 (B, H, W, 3)  NHWC; the model got input.permute(0, 3, 1, 2)
  labels               I64 (B,)
  logits               F32 (B, 6)
  loss                 F32 ()            F.cross_entropy(logits, labels, label_smoothing=0.1), mean
  grad.<name>          F32               d loss / d param, after loss.backward()
  updated.<name>       F32 (case 1 only) the parameter after ONE torch.optim.AdamW step
                                         (lr 3e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 1e-4,
                                         amsgrad False, all parameters in one group)
  grad_stats.<name>    F64 (3,)          [sum, sum of squares, max |x|] of the FULL gradient
  updated_stats.<name> F64 (3,)          the same for the full updated parameter
  act.<name>           F32 (case 1 only) forward activations, NHWC: act.stem (after stem LayerNorm),
                                         act.stages.0 .. act.stages.3 (each stage's output),
                                         act.head.norm (B, 320) (pooled, after head LayerNorm)
  grad.* and updated.* are whole (timm's shape) for tensors of up to 4096 elements; for larger ones
  they are 1-D (4096,) samples at flat indices idx[k] = (k * numel) // 4096, k = 0..4095, of the
  tensor flattened in PyTorch (timm) layout ([out, in, 1, 1] flattens like [out, in]).
The parameters before the step are in the weights file (metadata "weights_file").

Weights: timm's initialisation with torch.manual_seed(0), then perturbed (timm's layer-scale init
1e-6 would make every block an identity and the test blind) with torch.Generator seed 1234, in
state_dict order: gamma ~ U(0.2, 1.0); LayerNorm weights 1 + N(0, 0.1); every bias N(0, 0.05);
then every parameter rounded to bf16 (torch's .bfloat16().float()).
"""
import os
import sys

import torch
import torch.nn.functional as F

try:
    import timm
except ImportError:
    sys.exit("parity_convnext.py needs timm: see the header for the .venv set-up")
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "golden", "parity")
ARCH, NUM_CLASSES = "convnext_atto", 6
SAMPLE = 4096
WEIGHTS_FILE = "convnext_atto_weights.safetensors"
LR, BETAS, EPS, WD, SMOOTH = 3e-4, (0.9, 0.999), 1e-8, 1e-4, 0.1


def is_layernorm_weight(name):
    return name in ("stem.1.weight", "head.norm.weight") or name.endswith(
        (".norm.weight", "downsample.0.weight"))


def build_weights():
    torch.manual_seed(0)
    model = timm.create_model(ARCH, num_classes=NUM_CLASSES, drop_path_rate=0.0, drop_rate=0.0)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.2)
            elif is_layernorm_weight(name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        for p in model.parameters():
            p.copy_(p.bfloat16().float())
    return {k: v.clone() for k, v in model.state_dict().items()}


def sample_idx(numel):
    return (torch.arange(SAMPLE, dtype=torch.int64) * numel) // SAMPLE


def stats(t):
    d = t.detach().double().flatten()
    return torch.tensor([d.sum().item(), (d * d).sum().item(), d.abs().max().item()], dtype=torch.float64)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous()


def run_case(weights, fname, batch, h, w, labels, seed, with_acts, with_updated):
    torch.manual_seed(seed)
    model = timm.create_model(ARCH, num_classes=NUM_CLASSES, drop_path_rate=0.0, drop_rate=0.0)
    model.load_state_dict(weights, strict=True)
    model.train()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, h, w, 3, generator=g)  # NHWC
    if labels is None:
        labels = torch.randint(0, NUM_CLASSES, (batch,), generator=g)
    labels = torch.as_tensor(labels, dtype=torch.int64)

    acts = {}
    if with_acts:
        model.stem.register_forward_hook(lambda m, i, o: acts.__setitem__("act.stem", nhwc(o)))
        for s in range(4):
            model.stages[s].register_forward_hook(
                lambda m, i, o, s=s: acts.__setitem__(f"act.stages.{s}", nhwc(o)))
        model.head.norm.register_forward_hook(
            lambda m, i, o: acts.__setitem__("act.head.norm", o.detach().flatten(1).contiguous()))

    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    opt.zero_grad()
    logits = model(x.permute(0, 3, 1, 2))
    loss = F.cross_entropy(logits, labels, label_smoothing=SMOOTH)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    updated = {n: p.detach().clone() for n, p in model.named_parameters()}

    out = {"input": x.contiguous(), "labels": labels, "logits": logits.detach().contiguous(),
           "loss": loss.detach().reshape(())}
    for n in grads:
        numel = grads[n].numel()
        pairs = (("grad.", grads[n]), ("updated.", updated[n])) if with_updated else (("grad.", grads[n]),)
        for prefix, t in pairs:
            flat = t.flatten()
            out[prefix + n] = (flat[sample_idx(numel)] if numel > SAMPLE else t).contiguous()
        out["grad_stats." + n] = stats(grads[n])
        out["updated_stats." + n] = stats(updated[n])
    out.update(acts)
    meta = {
        "architecture": ARCH, "num_classes": str(NUM_CLASSES),
        "batch": str(batch), "height": str(h), "width": str(w),
        "weights_file": WEIGHTS_FILE,
        "input_layout": "NHWC (B, H, W, 3) float32; the model got input.permute(0, 3, 1, 2)",
        "activation_layout": "act.stem and act.stages.S are NHWC (B, h, w, C); act.head.norm is (B, 320)",
        "loss": "F.cross_entropy(logits, labels, label_smoothing=0.1), reduction mean",
        "optimizer": "torch.optim.AdamW(lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4, "
                     "amsgrad=False), one step, one group with every parameter",
        "mode": "model.train(), drop_path_rate 0, drop_rate 0 (deterministic)",
        "sample_rule": "tensors with more than 4096 elements: grad.* and updated.* hold 4096 values at "
                       "flat indices (k * numel) // 4096, k = 0..4095, PyTorch (timm) layout",
        "stats_layout": "grad_stats.* and updated_stats.*: float64 [sum, sum of squares, max abs] of "
                        "the full tensor",
        "weights": "timm init (torch.manual_seed(0)); perturbed with torch.Generator seed 1234: gamma "
                   "U(0.2,1), LayerNorm weights 1+N(0,0.1), biases N(0,0.05); all rounded to bf16",
        "input_seed": f"torch.Generator().manual_seed({seed}): x = randn(B, H, W, 3), then labels",
        "timm_version": timm.__version__, "torch_version": torch.__version__,
        "generated_by": "tests/reference/parity_convnext.py",
        "contents": "input labels logits loss grad.* grad_stats.* updated_stats.*"
                    + (" updated.*" if with_updated else "") + (" act.*" if with_acts else ""),
    }
    path = os.path.join(OUT, fname)
    save_file(out, path, metadata=meta)
    print(f"{fname}: loss {loss.item():.6f}, logits[0] {logits[0].tolist()}, "
          f"{os.path.getsize(path) / 1e6:.2f} MB")


def main():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    weights = build_weights()
    wpath = os.path.join(OUT, WEIGHTS_FILE)
    save_file({k: v.bfloat16().contiguous() for k, v in weights.items()}, wpath, metadata={"format": "pt"})
    n_params = sum(v.numel() for v in weights.values())
    print(f"{WEIGHTS_FILE}: {n_params} parameters, {os.path.getsize(wpath) / 1e6:.2f} MB")
    # The AdamW step does not depend on the input's shape: cases 2 and 3 keep only its statistics
    # (updated_stats.*), which holds the four files to about 11 MB.
    run_case(weights, "convnext_atto_64x64_b4.safetensors", 4, 64, 64, None, 100, True, True)
    run_case(weights, "convnext_atto_96x96_b3.safetensors", 3, 96, 96, [1, 1, 4], 200, False, False)
    run_case(weights, "convnext_atto_64x96_b2.safetensors", 2, 64, 96, [5, 2], 300, False, False)


if __name__ == "__main__":
    main()
