/* A backend runs planned nodes on one device: a table of functions, like ggml's. The CPU backend
 * is the reference; the CUDA backend is tested against it. */
#ifndef KT_BACKEND_H
#define KT_BACKEND_H

#include <stddef.h>

#include "base/status.h"
#include "engine/graph.h"

/* Fusions the planner may choose for a backend (kt_node::fuse_next / fuse_colsum); each bit says
 * the backend's kernels compute that pair in one pass. */
enum {
    KT_FUSE_LINEAR_GELU = 1u << 0,     /* linear (f32 out) + the GELU reading it: bias + GELU in one pass */
    KT_FUSE_LAYERNORM_BWD = 1u << 1,   /* LayerNorm data grad + weight/bias grads */
    KT_FUSE_LAYERSCALE_BWD = 1u << 2,  /* layer-scale data grad + gamma grad */
    KT_FUSE_ACT_BWD_COLSUM = 1u << 3,  /* activation grad + the bias grad summed from it */
    KT_FUSE_OTHER_COLSUM = 1u << 4,    /* LayerNorm data grad + the bias grad summed from it */
    KT_FUSE_SCALE_COLSUM = 1u << 5,    /* layer-scale data grad + the bias grad summed from it */
    /* pairs whose first output only the follower reads, so it is never written: */
    KT_FUSE_SCALE_ADD = 1u << 6,       /* layer scale (a * gamma) + the residual add reading it */
    KT_FUSE_DWCONV_BWD_ADD = 1u << 7,  /* depthwise conv data grad + the add summing it into another gradient */
};

/* "a,b,c" (names: linear_gelu, layernorm_bwd, layerscale_bwd, act_bwd_colsum, layernorm_colsum,
 * scale_colsum, scale_add, dwconv_bwd_add; "" or NULL: none) -> KT_FUSE_* bits; KT_ERR_ARG naming
 * an unknown one and listing the known. */
kt_status kt_fusions_parse(const char *list, unsigned *bits, kt_err *err);
/* the names of the fusions in bits, comma-separated, truncated to cap */
void kt_fusions_label(unsigned bits, char *out, size_t cap);

struct kt_backend {
    const char *name;
    kt_device device;
    unsigned fusions; /* KT_FUSE_* bits */
    /* 1 when this backend has a kernel for the node (shape/dtype included) */
    int (*supports)(const kt_backend *be, const kt_node *n);
    /* workspace bytes the node's kernel needs while it runs */
    size_t (*scratch_bytes)(const kt_backend *be, const kt_node *n);
    kt_status (*alloc)(kt_backend *be, size_t bytes, void **ptr, kt_err *err);
    void (*release)(kt_backend *be, void *ptr);
    /* host <-> backend memory copies (plain memcpy on the CPU) */
    kt_status (*upload)(kt_backend *be, void *dst, const void *src, size_t bytes, kt_err *err);
    kt_status (*download)(kt_backend *be, void *dst, const void *src, size_t bytes, kt_err *err);
    kt_status (*memzero)(kt_backend *be, void *dst, size_t bytes, kt_err *err);
    kt_status (*compute)(kt_backend *be, const kt_graph *g, kt_node *n, kt_err *err);
    /* Optimizer sweeps over parameter-sized buffers in backend memory (PyTorch's AdamW update;
     * the bias corrections use the given beta1, which OneCycleLR may cycle). */
    kt_status (*adamw)(kt_backend *be, float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int64_t step, kt_err *err);
    kt_status (*sumsq)(kt_backend *be, const float *x, int64_t n, double *out, kt_err *err); /* sum of squares */
    kt_status (*scale)(kt_backend *be, float *x, int64_t n, float s, kt_err *err);          /* x *= s in place */
    kt_status (*sync)(kt_backend *be, kt_err *err);
    void (*destroy)(kt_backend *be);
    /* optional (NULL: nothing to do): page-lock host memory that is uploaded often, and undo it
     * before that memory is freed (the CUDA backend: faster uploads of the loader's batches) */
    kt_status (*pin_host)(kt_backend *be, void *p, size_t bytes, kt_err *err);
    void (*unpin_host)(kt_backend *be, void *p);
    /* optional: called by the planner after `supports` and the fusions and before sizing scratch
     * and memory, to choose per-plan precisions (the CUDA backend's bf16 autocast; flags
     * KT_NODE_AUTOCAST and KT_NODE_STORED_BF16, which the planner clears first) */
    void (*prepare)(kt_backend *be, kt_graph *g);
    /* optional: why `supports` said 0 for n, into buf (left empty when there is nothing to add to
     * "no kernel"), e.g. the library's refusal of a convolution's geometry */
    void (*unsupported_why)(const kt_backend *be, const kt_node *n, char *buf, size_t cap);
    void *ctx;
};

/* The process-wide CPU backend (never destroyed). */
kt_backend *kt_backend_cpu(void);

/* Key of a dropout / drop-path mask: one per (graph seed, step, forward node). */
uint64_t kt_dropout_key(const kt_graph *g, int node_id);

#endif
