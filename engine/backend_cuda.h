/* The CUDA backend: every op of engine/op.h on one NVIDIA GPU (cuBLAS GEMMs, cuDNN for general
 * convolutions, our own kernels for the rest), tested against the CPU backend. */
#ifndef KT_BACKEND_CUDA_H
#define KT_BACKEND_CUDA_H

#include "base/status.h"
#include "engine/backend.h"

/* A backend on GPU `device` (0 = first). Fails with KT_ERR_UNSUPPORTED in builds without CUDA and
 * KT_ERR_CUDA when no usable device is present (the message says why). Free with be->destroy(be)
 * after every graph planned on it is freed. Not thread-safe: one thread drives a backend. */
kt_status kt_backend_cuda_create(kt_backend **out, int device, kt_err *err);
/* Lets f32 GEMMs and cuDNN convolutions use TF32 tensor cores (faster, ~1e-3 relative error; off
 * by default). Set it before planning graphs: cuDNN plans and their workspaces depend on it. */
kt_status kt_backend_cuda_set_tf32(kt_backend *be, int on, kt_err *err);
/* The compute precision of be's f32 graphs, set before planning (GEMM workspaces depend on it):
 * "fp32" (exact FP32 math, the backend's default), "tf32" (TF32 tensor cores for GEMMs and cuDNN
 * convolutions), "bf16" (linear/matmul operands rounded to bf16, bf16 tensor-core GEMMs with f32
 * accumulation and output, the activations only GEMMs read stored in bf16; patch convolutions
 * (kernel == stride: ConvNeXt's downsampling, not the stem on the raw image) as bf16 GEMMs too, unless
 * KT_CUDA_NO_PATCH_GEMM=1; other cuDNN convolutions in TF32; weights, gradients and AdamW state stay
 * f32, so no loss scaling is needed) or "fp16" (the
 * same with IEEE half: 3 more mantissa bits, but a range that ends at 65504, so training needs
 * dynamic loss scaling: train/loss_scale.h). A graph's GEMMs keep the precision it was planned with
 * (a graph planned in fp32 never runs 16-bit GEMMs, nor the reverse); its convolutions follow the
 * current TF32 setting, so set the precision before planning and keep it while the graph runs. */
kt_status kt_backend_cuda_set_precision(kt_backend *be, const char *precision, kt_err *err);
/* Caps what the backend's graphs take on the GPU at mib MiB (0: no cap; KT_CUDA_MEMORY_MIB sets it
 * at creation): planning past it fails with KT_ERR_NOMEM naming the cap, as on a full card. */
kt_status kt_backend_cuda_set_memory_limit(kt_backend *be, size_t mib, kt_err *err);
/* 1 when be runs on a CUDA device. */
int kt_backend_is_cuda(const kt_backend *be);
/* 1 when this build has the CUDA backend and GPU 0 is one it runs: present, compute 8.0 or newer,
 * and code for it in the build's architectures (what --device auto picks). */
int kt_backend_cuda_available(void);

#endif
