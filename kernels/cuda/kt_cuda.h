/* C interface of the CUDA kernels and runtime helpers (compiled by nvcc, called from C).
 * Runtime helpers return 0 or a nonzero code with a message in msg; kernels take a context and
 * return 0 or nonzero with the message (what failed, CUDA's words) in kt_cuda_ctx_error(ctx). */
#ifndef KT_CUDA_H
#define KT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/activation.h" /* kt_act */
#include "kernels/cpu/adamw.h"      /* kt_adamw_hp */
#include "kernels/cpu/conv.h"       /* kt_conv_shape: one conv geometry for every backend */
#include "kernels/cpu/pool.h"       /* kt_pool_shape */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kt_cuda_info {
    int device_count;
    int driver_version;  /* e.g. 13000, 0 when no driver */
    int runtime_version;
    int cudnn_version;   /* runtime cuDNN, e.g. 91300 */
    int cublas_version;
    char name[256];      /* device 0 */
    int cc_major, cc_minor;
    size_t total_mem, free_mem;
    int sm_count;
    char error[256];     /* why no device, when device_count == 0 */
} kt_cuda_info;

/* Fills info; never fails: device_count 0 and error say why no GPU can be used. */
void kt_cuda_query(kt_cuda_info *info);
/* GPU `device`'s name, compute capability, SM count and memory (keratrack info lists every GPU);
 * 0, or nonzero when there is no such device. */
int kt_cuda_device_props(int device, char *name, size_t name_len, int *cc_major, int *cc_minor, int *sm_count, size_t *total_mem);
/* 1 when a usable device is present. */
int kt_cuda_available(void);
/* The architectures this build's CUDA code was compiled for, as configured (-DKT_CUDA_ARCHS, with
 * ',' for ';'): "90-real,80-virtual" by default. */
const char *kt_cuda_build_archs(void);

int kt_cuda_malloc(void **ptr, size_t bytes, char *msg, size_t msg_len);
void kt_cuda_free(void *ptr);
/* Page-locks host memory that is uploaded often (the loader's batches): pinned, a host-to-device
 * copy runs at the link's DMA speed instead of being staged through the driver's own pinned
 * buffer. 0, or nonzero with the reason in msg (the memory stays usable, just pageable). Unregister
 * before the memory is freed. */
int kt_cuda_host_register(void *p, size_t bytes, char *msg, size_t msg_len);
void kt_cuda_host_unregister(void *p);
int kt_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memcpy_d2d(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memset(void *dst, int value, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_sync(char *msg, size_t msg_len);

/* ---- context: device, stream, cuBLAS and cuDNN handles, cuBLAS workspace, cuDNN plans ---- */

typedef struct kt_cuda_ctx kt_cuda_ctx;
typedef enum { KT_CUDA_F32 = 0, KT_CUDA_BF16, KT_CUDA_F16 } kt_cuda_dtype;

int kt_cuda_ctx_create(kt_cuda_ctx **out, int device, char *msg, size_t msg_len);
void kt_cuda_ctx_destroy(kt_cuda_ctx *c);
/* Makes the context's GPU the calling thread's current device (CUDA keeps one per thread); every
 * entry point of the backend calls it first, so any thread may drive the context (one at a time).
 * 0, or nonzero with the reason in the context's error. */
int kt_cuda_ctx_bind(kt_cuda_ctx *c);
/* The message of the last failure on this context. */
const char *kt_cuda_ctx_error(const kt_cuda_ctx *c);
/* 1: f32 GEMMs and cuDNN convolutions may use TF32 tensor cores (about 1e-3 relative error). */
void kt_cuda_ctx_set_tf32(kt_cuda_ctx *c, int on);
int kt_cuda_ctx_tf32(const kt_cuda_ctx *c);
/* KT_CUDA_BF16 or KT_CUDA_F16: f32 linear/matmul nodes round their operands to that type and run
 * tensor-core GEMMs with f32 accumulation and output (the CUDA backend's bf16/fp16 precision);
 * KT_CUDA_F32: off. */
void kt_cuda_ctx_set_gemm_half(kt_cuda_ctx *c, kt_cuda_dtype t);
/* Which of our depthwise kernels run the square stride-1 3x3/5x5/7x7 convolutions. They give the
 * same bits (each output's sums in one order), so the choice is one of speed only. AUTO (the
 * default) times the kinds a call can take on this card the first time it meets a geometry and
 * pass, and keeps the fastest (a data gradient summed in place is never timed: it takes the
 * forward's choice). SCALAR: a channel per thread, 8 outputs along a row (each pass); VEC4: 4
 * channels (float4) per thread, 4 outputs (each pass; C a multiple of 4, 16-byte aligned buffers);
 * TILE4X4 / TILE4X8: a channel per thread, a 4-row tile of 4 or 8 columns with the 49 weights in
 * registers (7x7 forward and data gradient); TAPS: a channel and row block per thread summing all
 * 49 taps (7x7 weight gradient); ROT4 / ROT1: VEC4's / SCALAR's weight gradient with the input
 * window rotating through registers instead of shifting (where those run). A kind a call cannot
 * take falls back to VEC4 or SCALAR. Set at creation by the environment variable
 * KT_CUDA_DWCONV=auto|scalar|vec4|tile4x4|tile4x8|taps|rot4|rot1 (KT_CUDA_DWCONV_LOG=1 prints each
 * timing and choice to stderr). */
typedef enum {
    KT_CUDA_DW_AUTO = 0,
    KT_CUDA_DW_SCALAR,
    KT_CUDA_DW_VEC4,
    KT_CUDA_DW_TILE4X4,
    KT_CUDA_DW_TILE4X8,
    KT_CUDA_DW_TAPS,
    KT_CUDA_DW_ROT4,
    KT_CUDA_DW_ROT1,
    KT_CUDA_DW_KINDS
} kt_cuda_dwkind;
void kt_cuda_ctx_set_dwconv_kernels(kt_cuda_ctx *c, kt_cuda_dwkind k);
/* "auto", "scalar", "vec4", "tile4x4", "tile4x8", "taps", "rot4", "rot1"; parse returns 0, or 1 for an unknown name */
const char *kt_cuda_dwkind_name(kt_cuda_dwkind k);
int kt_cuda_dwkind_parse(const char *name, kt_cuda_dwkind *k);
/* The kind AUTO chose for one of a geometry's three passes (0 forward, 1 data gradient, 2 weight
 * gradient), or KT_CUDA_DW_AUTO when it has not chosen one. */
kt_cuda_dwkind kt_cuda_dwconv_chosen(const kt_cuda_ctx *c, int pass, const kt_conv_shape *s);
/* Off: linears with a bias take cuBLAS and a bias pass instead of cuBLASLt's bias epilogue
 * (kt_cuda_gemm_bias declines; the default is on unless KT_CUDA_NO_LT=1). */
void kt_cuda_ctx_set_gemm_lt(kt_cuda_ctx *c, int on);
int kt_cuda_ctx_gemm_lt(const kt_cuda_ctx *c);
kt_cuda_dtype kt_cuda_ctx_gemm_half(const kt_cuda_ctx *c);
/* On (the default unless KT_CUDA_NO_PATCH_GEMM=1): under bf16/fp16 autocast, the CUDA backend runs
 * patch convolutions (kernel == stride, no padding: ConvNeXt's downsampling layers; not one reading a
 * graph input such as the stem on the raw image) as 16-bit
 * tensor-core GEMMs (kt_cuda_patch_conv_fwd); off: through cuDNN in f32, as without autocast. Read
 * when a graph is planned. */
void kt_cuda_ctx_set_patch_gemm(kt_cuda_ctx *c, int on);
int kt_cuda_ctx_patch_gemm(const kt_cuda_ctx *c);
/* On (KT_CUDA_PATCH_F32=1 at creation): the patch convolutions that would go to cuDNN (the stem on
 * the raw image; without autocast all of them) run as our patch GEMM on f32 operands instead, TF32
 * when allowed, as cuDNN's; off, they take our GEMM only when cuDNN refuses them. Read when a graph
 * is planned. */
void kt_cuda_ctx_set_patch_f32(kt_cuda_ctx *c, int on);
int kt_cuda_ctx_patch_f32(const kt_cuda_ctx *c);
int kt_cuda_ctx_alloc(kt_cuda_ctx *c, void **ptr, size_t bytes);
void kt_cuda_ctx_free(kt_cuda_ctx *c, void *ptr);
/* A cap on what kt_cuda_ctx_alloc hands out at once (0: none; KT_CUDA_MEMORY_MIB sets it at
 * creation): past it an allocation fails as if the card were full, naming the cap. cuBLAS's and
 * cuDNN's handles and the CUDA context itself come on top. */
void kt_cuda_ctx_set_memory_limit(kt_cuda_ctx *c, size_t bytes);
size_t kt_cuda_ctx_memory_limit(const kt_cuda_ctx *c);
size_t kt_cuda_ctx_memory_used(const kt_cuda_ctx *c);
/* Copies in any direction (host or device pointers); returns after a host destination is filled. */
int kt_cuda_ctx_copy(kt_cuda_ctx *c, void *dst, const void *src, size_t bytes);
int kt_cuda_ctx_memset(kt_cuda_ctx *c, void *dst, int byte, size_t bytes);
/* Waits for all queued work; reports errors of kernels that failed while running. */
int kt_cuda_ctx_sync(kt_cuda_ctx *c);

/* ---- elementwise (all f32 device pointers; outputs may alias the first input) ---- */
int kt_cuda_add(kt_cuda_ctx *c, float *y, const float *a, const float *b, int64_t n);
int kt_cuda_mul(kt_cuda_ctx *c, float *y, const float *a, const float *b, int64_t n);
int kt_cuda_mul_bcast(kt_cuda_ctx *c, float *y, const float *a, const float *b /* (C) */, int64_t rows, int64_t C);
int kt_cuda_scale(kt_cuda_ctx *c, float *y, const float *x, float s, int64_t n);
int kt_cuda_bias(kt_cuda_ctx *c, float *y, const float *x, const float *b /* (C) */, int64_t rows, int64_t C);
/* y (rows, C) = b (C) in every row (the start of a GEMM with beta 1). */
int kt_cuda_fill_rows(kt_cuda_ctx *c, float *y, const float *b, int64_t rows, int64_t C);
/* dx (n) = dy[0] * scale, dy a device scalar */
int kt_cuda_fill_scaled(kt_cuda_ctx *c, float *dx, const float *dy, int64_t n, float scale);
int kt_cuda_copy(kt_cuda_ctx *c, void *dst, const void *src, size_t bytes);
/* Activations as kernels/cpu/activation.h (GELU in erf form; sigmoid's derivative from its output). */
int kt_cuda_act_fwd(kt_cuda_ctx *c, kt_act a, float *y, const float *x, int64_t n);
int kt_cuda_act_bwd(kt_cuda_ctx *c, kt_act a, float *dx, const float *dy, const float *v, int64_t n);
/* Linear + GELU, fused: z (rows, C) holds the GEMM's x w^T; one pass writes the pre-activation z + b
 * (b (C) or NULL) to pre as pre_t and GELU of it (from the f32 value) to y as y_t. pre may be z
 * itself (f32), y may be pre; with a 16-bit pre_t, y_t is the same type or f32. */
int kt_cuda_bias_gelu(kt_cuda_ctx *c, const float *z, const float *b, void *pre, kt_cuda_dtype pre_t, void *y, kt_cuda_dtype y_t,
                      int64_t rows, int64_t C);
/* A linear's output stored in 16 bits: y (rows, C) = z + b (b (C) or NULL) rounded to yt (bf16/f16). */
int kt_cuda_bias_store(kt_cuda_ctx *c, const float *z, const float *b, void *y, kt_cuda_dtype yt, int64_t rows, int64_t C);
/* y (rows, C) f32 = a * b[c] with a stored in 16 bits (at), b f32. */
int kt_cuda_mul_bcast_a16(kt_cuda_ctx *c, float *y, const uint16_t *a, kt_cuda_dtype at, const float *b, int64_t rows, int64_t C);
/* y (rows, C) = a * g[c] + x in one pass (layer scale, then the residual add), a f32 or bf16/f16 as
 * at; the bits of kt_cuda_mul_bcast(_a16) followed by kt_cuda_add. */
int kt_cuda_scale_add(kt_cuda_ctx *c, float *y, const void *a, kt_cuda_dtype at, const float *g, const float *x, int64_t rows,
                      int64_t C);
/* out (C) = column sums of dy * a with a stored in 16 bits (at): kt_cuda_mul_bcast_bwd's products
 * and order on the widened values. */
int kt_cuda_mul_bcast_bwd_a16(kt_cuda_ctx *c, float *out, const float *dy, const uint16_t *a, kt_cuda_dtype at, int64_t rows, int64_t C,
                              void *scratch);
/* GELU backward with its input v stored in 16 bits (vt): dx = GELU'(v) dy, f32 dy and dx. */
/* y = GELU(x) over n elements, x in bf16/f16 (xt), y in xt or f32 (yt) */
int kt_cuda_gelu_fwd_x16(kt_cuda_ctx *c, void *y, kt_cuda_dtype yt, const void *x, kt_cuda_dtype xt, int64_t n);
int kt_cuda_gelu_bwd_v16(kt_cuda_ctx *c, float *dx, const float *dy, const uint16_t *v, kt_cuda_dtype vt, int64_t n);
/* Activation backward and the column sums of its result (the bias gradient before it) in one pass:
 * dx (rows, C) = act'(v) dy, db (C) = sum over rows of dx (the order of kt_cuda_reduce_rows: the
 * same bits as the two ops apart). v is f32, or (GELU only) bf16/f16 as vt; dx is written in dxt:
 * f32, or (GELU only) rounded to bf16/f16, db still summed from the f32 values (a gradient only
 * autocast GEMMs read, which would round it the same way). dy is f32 (dyt KT_CUDA_F32), or, for GELU
 * with v in 16 bits, in v's type (a gradient an autocast GEMM wrote in 16 bits).
 * scratch: kt_cuda_reduce_rows_scratch(rows, C) bytes. */
int kt_cuda_act_bwd_colsum(kt_cuda_ctx *c, kt_act a, void *dx, kt_cuda_dtype dxt, const void *dy, kt_cuda_dtype dyt, const void *v,
                           kt_cuda_dtype vt, int64_t rows, int64_t C, float *db, void *scratch);
/* Layer scale's backward (out = a * gamma over the last dim) in one pass: da (rows, C) = dy gamma in
 * dat (f32, or bf16/f16: the rounded f32 product), dbias (C) = sum of da over rows (the bias gradient
 * of the op before), dgamma (C) = sum of dy a (a f32 or 16-bit as at); dbias / dgamma may be NULL
 * (a too, without dgamma). Same bits as the separate kernels. scratch: kt_cuda_layer_scale_bwd_scratch. */
size_t kt_cuda_layer_scale_bwd_scratch(int64_t rows, int64_t C);
int kt_cuda_layer_scale_bwd(kt_cuda_ctx *c, void *da, kt_cuda_dtype dat, const float *dy, const float *gamma, const void *a,
                            kt_cuda_dtype at, int64_t rows, int64_t C, float *dbias, float *dgamma, void *scratch);
/* Dropout masks from the counter hash of base/rng.h: the same masks as the CPU backend. */
int kt_cuda_dropout(kt_cuda_ctx *c, float *y, const float *x, int64_t n, float p, uint64_t key);
int kt_cuda_drop_path(kt_cuda_ctx *c, float *y, const float *x, int64_t N, int64_t per_sample, float p, uint64_t key);
/* PyTorch's AdamW over n elements in one launch (bias corrections as kernels/cpu/adamw.c). */
int kt_cuda_adamw(kt_cuda_ctx *c, float *p, const float *g, float *m, float *v, int64_t n, const kt_adamw_hp *hp);

/* ---- bf16 building blocks (bf16 storage as uint16_t, f32 math, round to nearest even) ---- */
int kt_cuda_f32_to_bf16(kt_cuda_ctx *c, uint16_t *y, const float *x, int64_t n);
int kt_cuda_f32_to_f16(kt_cuda_ctx *c, uint16_t *y, const float *x, int64_t n); /* IEEE half, round to nearest even */
int kt_cuda_bf16_to_f32(kt_cuda_ctx *c, float *y, const uint16_t *x, int64_t n);
int kt_cuda_add_bf16(kt_cuda_ctx *c, uint16_t *y, const uint16_t *a, const uint16_t *b, int64_t n);
int kt_cuda_act_fwd_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const uint16_t *x, int64_t n);
/* f32 in, the f32 result rounded to bf16 out (an activation stored in bf16 for autocast GEMMs) */
int kt_cuda_act_fwd_f32_to_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const float *x, int64_t n);
int kt_cuda_act_fwd_f32_to_f16(kt_cuda_ctx *c, kt_act a, uint16_t *y, const float *x, int64_t n);
int kt_cuda_act_bwd_bf16(kt_cuda_ctx *c, kt_act a, uint16_t *dx, const uint16_t *dy, const uint16_t *v, int64_t n);

/* ---- deterministic reductions (fixed blocks, fixed order: the same bits every run) ---- */
size_t kt_cuda_reduce_rows_scratch(int64_t rows, int64_t C);
/* out (C) = sum over rows of x (rows, C) */
int kt_cuda_reduce_rows(kt_cuda_ctx *c, float *out, const float *x, int64_t rows, int64_t C, void *scratch);
/* out (C) = sum over rows of dy * a */
int kt_cuda_mul_bcast_bwd(kt_cuda_ctx *c, float *out, const float *dy, const float *a, int64_t rows, int64_t C,
                          void *scratch);
size_t kt_cuda_sum_scratch(int64_t n);
/* out (1) = scale * sum of x (n), double accumulation */
int kt_cuda_sum(kt_cuda_ctx *c, float *out, const float *x, int64_t n, float scale, void *scratch);
/* Sum of squares of x (n) into *host_out (waits for the result). */
int kt_cuda_sumsq(kt_cuda_ctx *c, const float *x, int64_t n, double *host_out);
/* (N, HW, C) -> (N, C) mean, and its backward broadcast. */
int kt_cuda_gap_fwd(kt_cuda_ctx *c, const float *x, float *y, int64_t N, int64_t HW, int64_t C);
int kt_cuda_gap_bwd(kt_cuda_ctx *c, const float *dy, float *dx, int64_t N, int64_t HW, int64_t C);

/* ---- normalisation over the last axis of (rows, C) ---- */
int kt_cuda_layernorm_fwd(kt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t C,
                          float eps);
int kt_cuda_layernorm_bwd_x(kt_cuda_ctx *c, float *dx, const float *dy, const float *x, const float *w, int64_t rows,
                            int64_t C, float eps);
size_t kt_cuda_layernorm_bwd_wb_scratch(int64_t rows, int64_t C);
/* dwb (2, C): row 0 sum dy * xhat, row 1 sum dy */
int kt_cuda_layernorm_bwd_wb(kt_cuda_ctx *c, float *dwb, const float *dy, const float *x, int64_t rows, int64_t C, float eps,
                             void *scratch);
/* LayerNorm over an input stored in 16 bits (xt bf16/f16: a depthwise output under autocast): forward
 * writing the same 16-bit type or f32; backward with f32 gradients (scratch as kt_cuda_layernorm_bwd_wb). */
int kt_cuda_layernorm_fwd_x16(kt_cuda_ctx *c, void *y, kt_cuda_dtype yt, const uint16_t *x, kt_cuda_dtype xt, const float *w,
                              const float *b, int64_t rows, int64_t C, float eps);
int kt_cuda_layernorm_bwd_x_x16(kt_cuda_ctx *c, float *dx, const float *dy, const uint16_t *x, kt_cuda_dtype xt, const float *w,
                                int64_t rows, int64_t C, float eps);
int kt_cuda_layernorm_bwd_wb_x16(kt_cuda_ctx *c, float *dwb, const float *dy, const uint16_t *x, kt_cuda_dtype xt, int64_t rows,
                                 int64_t C, float eps, void *scratch);
/* LayerNorm's whole backward in two passes: dx, and optionally dwb (2, C) as kt_cuda_layernorm_bwd_wb
 * and dbias (C) = the column sum of dx (the bias gradient of the op before), the same bits as
 * kt_cuda_layernorm_bwd_x(_x16), kt_cuda_layernorm_bwd_wb(_x16) and kt_cuda_reduce_rows apart. x in
 * xt (f32, bf16, f16); dy in f32 or, with a 16-bit x, in x's type (dyt: a gradient an autocast GEMM
 * wrote in 16 bits; the bits of the f32 path on the widened dy); w may be NULL. */
size_t kt_cuda_layernorm_bwd_fused_scratch(int64_t rows, int64_t C);
int kt_cuda_layernorm_bwd_fused(kt_cuda_ctx *c, float *dx, const void *dy, kt_cuda_dtype dyt, const void *x, kt_cuda_dtype xt, const float *w,
                                int64_t rows, int64_t C, float eps, float *dwb, float *dbias, void *scratch);
/* bf16 activations with f32 weight/bias (may be NULL) and f32 statistics. */
int kt_cuda_layernorm_fwd_bf16(kt_cuda_ctx *c, uint16_t *y, const uint16_t *x, const float *w, const float *b, int64_t rows,
                               int64_t C, float eps);
/* f32 input, output rounded to bf16 / f16 (a LayerNorm only autocast GEMMs read) */
int kt_cuda_layernorm_fwd_f32_to_bf16(kt_cuda_ctx *c, uint16_t *y, const float *x, const float *w, const float *b, int64_t rows,
                                      int64_t C, float eps);
int kt_cuda_layernorm_fwd_f32_to_f16(kt_cuda_ctx *c, uint16_t *y, const float *x, const float *w, const float *b, int64_t rows,
                                     int64_t C, float eps);
int kt_cuda_layernorm_bwd_x_bf16(kt_cuda_ctx *c, uint16_t *dx, const uint16_t *dy, const uint16_t *x, const float *w,
                                 int64_t rows, int64_t C, float eps);
size_t kt_cuda_batchnorm_scratch(int64_t rows, int64_t C);
/* As kernels/cpu/norm.h: training uses batch statistics and updates the running ones (unbiased variance). */
int kt_cuda_batchnorm_fwd(kt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, float *running_mean,
                          float *running_var, int64_t rows, int64_t C, float eps, float momentum, int training,
                          void *scratch);
int kt_cuda_batchnorm_bwd_x(kt_cuda_ctx *c, float *dx, const float *dy, const float *x, const float *w,
                            const float *running_var, int64_t rows, int64_t C, float eps, int training, void *scratch);
int kt_cuda_batchnorm_bwd_wb(kt_cuda_ctx *c, float *dwb, const float *dy, const float *x, const float *running_mean,
                             const float *running_var, int64_t rows, int64_t C, float eps, int training, void *scratch);

/* ---- softmax and losses over rows of (N, C) ---- */
int kt_cuda_softmax(kt_cuda_ctx *c, float *y, const float *x, int64_t rows, int64_t C);
int kt_cuda_softmax_bwd(kt_cuda_ctx *c, float *dx, const float *dy, const float *y, int64_t rows, int64_t C);
size_t kt_cuda_softmax_ce_scratch(int64_t N);
/* loss (1) as kt_cpu_softmax_ce. *bad_row: -1, or the first row whose label is outside [0, C) with
 * that label in *bad_label (this waits for the check). */
int kt_cuda_softmax_ce(kt_cuda_ctx *c, float *loss, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                       float smoothing, void *scratch, int64_t *bad_row, int32_t *bad_label);
int kt_cuda_softmax_ce_bwd(kt_cuda_ctx *c, float *dlogits, const float *dloss, const float *logits, const int32_t *labels,
                           int64_t N, int64_t C, float smoothing);
int kt_cuda_bce_logits(kt_cuda_ctx *c, float *loss, const float *logits, const float *targets, int64_t n, void *scratch);
int kt_cuda_bce_logits_bwd(kt_cuda_ctx *c, float *dlogits, const float *dloss, const float *logits, const float *targets,
                           int64_t n);

/* ---- pooling (NHWC) ---- */
int kt_cuda_avgpool_fwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *x, float *y);
int kt_cuda_avgpool_bwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *dy, float *dx);
int kt_cuda_maxpool_fwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *x, float *y);
int kt_cuda_maxpool_bwd(kt_cuda_ctx *c, const kt_pool_shape *s, const float *dy, const float *x, float *dx);

/* ---- data movement ---- */
/* y = x with axes permuted (y.shape[i] = x.shape[perm[i]]), elem bytes 1, 2, 4 or 8. */
int kt_cuda_permute(kt_cuda_ctx *c, void *y, const void *x, int ndim, const int64_t *xshape, const int *perm, int elem);
/* height rows of width floats: dst[r * dst_pitch + i] = src[r * src_pitch + i] (concat, slice). */
int kt_cuda_copy_rows(kt_cuda_ctx *c, float *dst, int64_t dst_pitch, const float *src, int64_t src_pitch, int64_t width,
                      int64_t height);

/* ---- GEMM through cuBLAS, row-major as cblas: C = alpha op(A) op(B) + beta C ----
 * ab: type of A and B; cty: type of C. f32 uses FP32 (or TF32 when enabled) compute, bf16 FP32 compute. */
int kt_cuda_gemm(kt_cuda_ctx *c, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const void *A,
                 int64_t lda, const void *B, int64_t ldb, float beta, void *C, int64_t ldc, kt_cuda_dtype ab,
                 kt_cuda_dtype cty);
/* D (M, N) = A (M, K) W (N, K)^T + bias (N) with cuBLASLt's bias epilogue: A and W in ab (f32, bf16 or
 * f16; f32 with TF32 when the context allows), D and the bias in dt (ab, or f32), every buffer 16-byte
 * aligned, f32 accumulation, the bias added before D's one rounding (autocast's linear, its bias in
 * the output's type). 0 done; -1 declined (no cuBLASLt, switched off, unaligned buffers or no
 * algorithm for the shape: nothing written, no error recorded; take another path); 1 error. */
int kt_cuda_gemm_bias(kt_cuda_ctx *c, int64_t M, int64_t N, int64_t K, const void *A, const void *W, const void *bias, void *D,
                      kt_cuda_dtype ab, kt_cuda_dtype dt);
/* batch products of contiguous (M,K)x(K,N) operands (shapes before the transposes, as kt_cpu_gemm_batched). */
int kt_cuda_gemm_batched(kt_cuda_ctx *c, int trans_a, int trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                         const void *A, const void *B, void *C, kt_cuda_dtype ab, kt_cuda_dtype cty);

/* ---- depthwise convolution (NHWC, weight (C, 1, kh, kw)): our own kernels ---- */
size_t kt_cuda_dwconv_scratch(const kt_conv_shape *s);
int kt_cuda_dwconv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                       void *scratch);
/* ... with y in yt (f32, bf16 or f16) and, when xs is not NULL, x rounded to xst (bf16/f16) into xs:
 * the weight gradient's saved input, written while x is read (kt_cuda_dwconv_can_copy_input geometries) */
int kt_cuda_dwconv_fwd_ex(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, void *y,
                          kt_cuda_dtype yt, void *xs, kt_cuda_dtype xst, void *scratch);
int kt_cuda_dwconv_can_copy_input(const kt_conv_shape *s);
/* the data gradient summed into add in the same pass: dx = add + the data gradient (add may be dx
 * itself; NULL: the plain data gradient), the bits of the two kernels apart */
int kt_cuda_dwconv_bwd_data_add(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, const float *add, float *dx,
                                void *scratch);
int kt_cuda_dwconv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx,
                            void *scratch);
size_t kt_cuda_dwconv_bwd_weight_scratch(const kt_cuda_ctx *c, const kt_conv_shape *s);
/* Two stages: per-row-block partial sums, then a fixed-order sum over the blocks (deterministic).
 * The row blocks follow the context's first-stage thread target, KT_CUDA_DW_WGRAD_THREADS at
 * creation (default below; 1024 to 16777216): set it before planning, as scratch depends on it. */
#define KT_CUDA_DW_WGRAD_THREADS_DEFAULT 262144
void kt_cuda_ctx_set_dw_wgrad_threads(kt_cuda_ctx *c, int64_t threads);
int kt_cuda_dwconv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw,
                              void *scratch);
/* ... with x in xt (f32, or the bf16/f16 copy kt_cuda_dwconv_fwd_ex saved), widened as read */
int kt_cuda_dwconv_bwd_weight_x16(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const void *x, kt_cuda_dtype xt,
                                  float *dw, void *scratch);
/* the second stage alone, over the partials the first left in scratch (bench/gpu times the stages
 * apart): partials (nb, kh*kw, C) floats, nb = kt_cuda_dwconv_bwd_weight_blocks; dw[c, k] is their
 * sum in double in a warp's order (lane l sums blocks l, l + 32, ... in turn; the 32 lane sums
 * combine pairwise as l and l ^ o for o = 16, 8, 4, 2, 1), rounded to float once */
int64_t kt_cuda_dwconv_bwd_weight_blocks(const kt_cuda_ctx *c, const kt_conv_shape *s);
int kt_cuda_dwconv_bwd_weight_sum(kt_cuda_ctx *c, const kt_conv_shape *s, const void *scratch, float *dw);

/* ---- general convolution through cuDNN (NHWC data, weights reordered to (Co, kh, kw, Ci/g) in scratch) ----
 * kind: 0 forward, 1 data gradient, 2 weight gradient. Planning chooses the algorithm once per geometry
 * (cudnnFind, deterministic algorithms only) and says how much scratch the call needs. */
int kt_cuda_conv_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s, size_t *scratch_bytes);
int kt_cuda_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                     void *scratch, size_t scratch_bytes);
int kt_cuda_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *scratch,
                          size_t scratch_bytes);
int kt_cuda_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw,
                            void *scratch, size_t scratch_bytes);

/* ---- patch convolutions (kernel == stride, no padding, one group) as GEMMs, kernels/cuda/patch.cu ----
 * y (M, Co) = P (M, K) W'^T with M = N*Ho*Wo, K = kh*kw*Ci: P the input's patches in (ky, kx, ci)
 * order, W' the weight (Co, Ci, kh, kw) in that order, both in t (bf16/f16: autocast's tensor-core
 * GEMM with f32 accumulation; f32), outputs in f32. x in xt (f32, or stored in 16 bits). Input pixels
 * no patch covers get a zero data gradient. scratch: kt_cuda_patch_conv_scratch(s, kind, t) bytes
 * (kind 0 forward, 1 data gradient, 2 weight gradient). */
int kt_cuda_conv_is_patch(const kt_conv_shape *s);
size_t kt_cuda_patch_conv_scratch(const kt_conv_shape *s, int kind, kt_cuda_dtype t);
/* P (M, K) in pt from x in xt */
int kt_cuda_patch_gather(kt_cuda_ctx *c, const kt_conv_shape *s, const void *x, kt_cuda_dtype xt, void *p, kt_cuda_dtype pt);
int kt_cuda_patch_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const void *x, kt_cuda_dtype xt, const float *w, const float *b, float *y,
                           kt_cuda_dtype t, void *scratch);
int kt_cuda_patch_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx, kt_cuda_dtype t,
                                void *scratch);
int kt_cuda_patch_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const void *x, kt_cuda_dtype xt, float *dw,
                                  kt_cuda_dtype t, void *scratch);

#ifdef __cplusplus
}
#endif
#endif
