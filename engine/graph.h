/* A model is a graph of ops built once: forward nodes, then (after kt_graph_backward) the backward
 * nodes derived from per-op rules. kt_graph_plan gives every node its memory once; runs allocate nothing. */
#ifndef KT_GRAPH_H
#define KT_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "engine/dtype.h"
#include "engine/op.h"
#include "engine/tensor.h"

#define KT_MAX_SRC 8
#define KT_MAX_IP 12
#define KT_NAME_MAX 96

enum {
    KT_NODE_REQUIRES_GRAD = 1u << 0, /* a gradient flows to this node */
    KT_NODE_KEEP = 1u << 1,          /* output read after the run (logits, loss): never reused */
    KT_NODE_BUFFER = 1u << 2,        /* PARAM that is state, not trained (BatchNorm running stats) */
    KT_NODE_NO_DECAY = 1u << 3,      /* PARAM exempt from weight decay when decay exemption is on */
    KT_NODE_HEAD = 1u << 4,          /* PARAM of the classifier head */
    KT_NODE_RECOMPUTE = 1u << 5,     /* cheap to recompute in backward instead of storing */
    KT_NODE_BACKWARD = 1u << 6,      /* created by kt_graph_backward */
    KT_NODE_FILE_4D = 1u << 7,       /* PARAM stored as (out, in, 1, 1) in timm files (1x1-conv MLPs) */
    KT_NODE_KEEP_GRAD = 1u << 8,     /* backward keeps this activation's gradient in ->grad (Grad-CAM) */
    /* set by a backend's prepare for one plan (cleared when it is planned again): */
    KT_NODE_AUTOCAST = 1u << 9,     /* f32 GEMM whose f32 operands are rounded to bf16 (or f16) first */
    KT_NODE_STORED_BF16 = 1u << 10, /* f32 op whose output is stored rounded to 16 bits (dtype KT_BF16 or KT_F16) */
    KT_NODE_AUTOCAST_F16 = 1u << 11, /* with KT_NODE_AUTOCAST: to f16, not bf16 */
    /* a depthwise conv's input as its weight gradient reads it (kt_node::saved_input): a view of the
     * input, unless a backend's prepare stores it as a 16-bit copy (autocast saves such a copy) */
    KT_NODE_SAVED_INPUT = 1u << 12,
    /* set by a backend's prepare for one plan: a linear computing its GELU (fuse_next) whose own
     * output nothing else reads (inference): its buffer is the kernel's to use as it likes */
    KT_NODE_OUT_SCRATCH = 1u << 13,
    /* set by a backend's prepare for one plan: a patch convolution (kernel == stride, no padding)
     * the backend's library refused, run as the backend's own f32 GEMM on the patches instead */
    KT_NODE_PATCH_F32 = 1u << 14,
};

typedef struct kt_node {
    kt_op op;
    int id; /* position in execution order */
    int n_src;
    struct kt_node *src[KT_MAX_SRC];
    int32_t ip[KT_MAX_IP]; /* integer parameters, op-specific (see op.h) */
    float fp[4];           /* float parameters, op-specific */
    int ndim;
    int64_t shape[KT_MAX_DIMS];
    kt_dtype dtype;
    uint32_t flags;
    char name[KT_NAME_MAX];
    struct kt_node *grad;    /* after backward: this node's gradient (for PARAMs: in the grad buffer) */
    struct kt_node *view_of; /* RESHAPE (and a KT_NODE_SAVED_INPUT copy): the node whose memory this one aliases */
    struct kt_node *saved_input; /* depthwise CONV2D: the node its weight gradient reads for src[0] */
    int param_index;         /* PARAM: index in the graph's parameter table, else -1 */
    int grad_of;             /* gradient node placed in grad_buf for this parameter index, else -1 */
    void *data;              /* planned memory (host or device) */
    size_t scratch_bytes;    /* workspace the kernel needs during this node only */
    void *scratch;
    int last_use; /* planner: id of the last node reading this memory */
    /* Backend fusions chosen at plan time (among kt_backend::fusions): this node also computes the
     * node right after it (Linear -> GELU, LayerNorm data grad -> weight grads, layer-scale data
     * grad -> gamma grad; layer scale -> residual add and depthwise data grad -> gradient add, where
     * the follower is this node's only reader and this node's own output is not written), and/or
     * the column sums of its own output into fuse_colsum, a REDUCE_ROWS whose output is a
     * parameter gradient (bias gradients). Nodes computed that way have `fused` set and are skipped. */
    struct kt_node *fuse_next;
    struct kt_node *fuse_colsum;
    int fused;
} kt_node;

typedef struct kt_param_entry {
    kt_node *node;
    int64_t offset; /* elements into params/grads/m/v buffers (trainable) or into buffers (state) */
    int64_t numel;
} kt_param_entry;

typedef struct kt_backend kt_backend;

typedef struct kt_graph {
    kt_node **nodes;
    int n_nodes, cap_nodes;
    int n_forward; /* nodes [0, n_forward) are the forward pass (inputs, ops, loss) */
    kt_param_entry *params;
    int n_params, cap_params;
    int64_t n_param_elems;  /* trainable elements */
    int64_t n_buffer_elems; /* state elements */
    kt_node *loss;
    kt_node *loss_grad; /* (1) input seeding backward: 1.0 after plan, or the fp16 loss scale */

    /* Stable contiguous buffers (after plan): AdamW sweeps them in one pass. */
    float *param_buf;  /* (n_param_elems) */
    float *grad_buf;   /* (n_param_elems) */
    float *state_buf;  /* (n_buffer_elems) BatchNorm running stats */
    void *arena;       /* activations, gradients of activations, scratch */
    size_t arena_bytes;
    size_t naive_bytes; /* one buffer per node, for the planner's report */
    int peak_node;      /* node at which the activation arena reaches its size */
    void *inputs_buf;  /* inputs and KEEP outputs, never reused */
    size_t inputs_bytes;
    int planned;
    int params_shared; /* param_buf/state_buf belong to another graph */

    kt_backend *backend;
    int training;      /* dropout, drop path and BatchNorm batch statistics on */
    uint64_t seed;     /* with step: keys of dropout and drop-path masks */
    uint64_t step;
    int recompute;     /* autograd recomputes KT_NODE_RECOMPUTE nodes in backward */
    int profile;       /* collect per-op time in prof_* */
    double prof_time[KT_OP_COUNT];
    int64_t prof_calls[KT_OP_COUNT];

    kt_status status; /* first build error (sticky): builders return NULL after it */
    kt_err err;
} kt_graph;

kt_status kt_graph_init(kt_graph *g, kt_err *err);
void kt_graph_free(kt_graph *g);
/* The first build error, if any (builders return NULL once one happened). */
kt_status kt_graph_status(const kt_graph *g, kt_err *err);

/* ---- leaves ---- */
kt_node *kt_input(kt_graph *g, const char *name, kt_dtype dt, int ndim, const int64_t *shape);
kt_node *kt_param(kt_graph *g, const char *name, int ndim, const int64_t *shape, uint32_t flags);
kt_node *kt_param_find(const kt_graph *g, const char *name);

/* ---- forward ops: each validates shapes and, on error, names both shapes ---- */
kt_node *kt_conv2d(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, int stride, int pad, int groups);
kt_node *kt_conv2d_ex(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, int sh, int sw, int ph, int pw, int groups);
kt_node *kt_linear(kt_graph *g, kt_node *x, kt_node *w, kt_node *b);
kt_node *kt_matmul(kt_graph *g, kt_node *a, kt_node *b, int trans_a, int trans_b);
kt_node *kt_layernorm(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, float eps);
kt_node *kt_batchnorm(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, kt_node *running_mean, kt_node *running_var,
                      float eps, float momentum);
kt_node *kt_gelu(kt_graph *g, kt_node *x);
kt_node *kt_relu(kt_graph *g, kt_node *x);
kt_node *kt_silu(kt_graph *g, kt_node *x);
kt_node *kt_sigmoid(kt_graph *g, kt_node *x);
kt_node *kt_add(kt_graph *g, kt_node *a, kt_node *b);
kt_node *kt_mul(kt_graph *g, kt_node *a, kt_node *b);
kt_node *kt_scale(kt_graph *g, kt_node *x, float s);
kt_node *kt_bias(kt_graph *g, kt_node *x, kt_node *b);
kt_node *kt_avgpool2d(kt_graph *g, kt_node *x, int k, int stride, int pad, int count_include_pad);
kt_node *kt_maxpool2d(kt_graph *g, kt_node *x, int k, int stride, int pad);
kt_node *kt_global_avgpool(kt_graph *g, kt_node *x);
kt_node *kt_dropout(kt_graph *g, kt_node *x, float p);
kt_node *kt_drop_path(kt_graph *g, kt_node *x, float p);
kt_node *kt_softmax(kt_graph *g, kt_node *x);
kt_node *kt_softmax_ce(kt_graph *g, kt_node *logits, kt_node *labels, float smoothing);
kt_node *kt_bce_logits(kt_graph *g, kt_node *logits, kt_node *targets);
kt_node *kt_sum(kt_graph *g, kt_node *x, float scale);
kt_node *kt_reshape(kt_graph *g, kt_node *x, int ndim, const int64_t *shape);
kt_node *kt_permute(kt_graph *g, kt_node *x, const int *perm);
kt_node *kt_concat(kt_graph *g, kt_node *const *xs, int n, int axis);
kt_node *kt_slice(kt_graph *g, kt_node *x, int axis, int64_t start, int64_t len);
kt_node *kt_copy(kt_graph *g, kt_node *x);

/* Marks a node's output as read after runs (never reused by the planner). */
void kt_keep(kt_node *n);
void kt_node_set_name(kt_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- autograd: appends the backward graph of loss (a (1) node); every trainable PARAM gets
 * ->grad, which the planner places in grad_buf. Call once, before kt_graph_plan. ---- */
kt_status kt_graph_backward(kt_graph *g, kt_node *loss, kt_err *err);

/* ---- planning and running ---- */
typedef struct kt_plan_stats {
    size_t arena_bytes, inputs_bytes, param_bytes, grad_bytes, state_bytes;
    size_t naive_bytes; /* what one buffer per node would take */
    int n_nodes, n_views;
    int peak_node; /* where the arena reaches its high-water mark */
} kt_plan_stats;

/* Assigns memory to every node. backend NULL = CPU. If share_from is non-NULL, PARAMs (by name
 * and shape) use share_from's parameter and state memory instead of new buffers. */
kt_status kt_graph_plan(kt_graph *g, kt_backend *backend, const kt_graph *share_from, kt_err *err);
void kt_graph_plan_stats(const kt_graph *g, kt_plan_stats *st);
/* Where a planned graph's activation memory goes: the tensors alive at the arena's peak, summed by
 * forward/backward, op and dtype, the largest `top` groups (one line each). */
void kt_graph_print_peak(const kt_graph *g, FILE *f, int top);

/* Runs nodes [0, n_forward) / [n_forward, n_nodes) / all. */
kt_status kt_graph_forward(kt_graph *g, kt_err *err);
kt_status kt_graph_backward_run(kt_graph *g, kt_err *err);
kt_status kt_graph_run(kt_graph *g, kt_err *err);

/* Host pointers to planned memory (CPU backend). */
float *kt_node_f32(const kt_node *n);
int64_t kt_node_numel(const kt_node *n);
size_t kt_node_bytes(const kt_node *n);
const char *kt_node_shape_str(const kt_node *n, char *buf, int len);

/* Prints the graph (id, op, shape, sources) for debugging and `keratrack info --graph`. */
void kt_graph_print(const kt_graph *g, FILE *f);
/* 1 when reader is the only node after n that reads n (directly; a view of n counts as another
 * reader): then a kernel computing both may leave n's own output unwritten. */
int kt_node_read_only_by(const kt_graph *g, const kt_node *n, const kt_node *reader);
/* Prints per-op-type time of profiled runs, sorted. */
void kt_graph_print_profile(const kt_graph *g, FILE *f);

#endif
