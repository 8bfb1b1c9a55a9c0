/* The CUDA backend: maps each op to its kernel in kernels/cuda/ (the geometry derived from the node
 * exactly as backend_cpu.c does). Memory comes from the planner through alloc, once; runs allocate
 * nothing. Every kernel failure comes back as KT_ERR_CUDA with CUDA's message (exec names the node). */
#include "engine/backend_cuda.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef KT_HAVE_CUDA

#include "engine/cuda_arch.h"
#include "engine/node_geometry.h"
#include "kernels/cuda/kt_cuda.h"

static kt_cuda_ctx *CTX(const kt_backend *be) { return (kt_cuda_ctx *)be->ctx; }
static float *F(const kt_node *n) { return (float *)n->data; }
static int64_t last(const kt_node *n) { return n->shape[n->ndim - 1]; }
static kt_cuda_dtype cdt(const kt_node *n) { return n->dtype == KT_BF16 ? KT_CUDA_BF16 : n->dtype == KT_F16 ? KT_CUDA_F16 : KT_CUDA_F32; }

static kt_status failed(kt_backend *be, kt_err *err) { return kt_err_set(err, KT_ERR_CUDA, "%s", kt_cuda_ctx_error(CTX(be))); }
#define CK(call)                                   \
    do {                                           \
        if (call) return failed(be, err);          \
    } while (0)

static int conv_kind(const kt_node *n) { return n->op == KT_OP_CONV2D ? 0 : (n->op == KT_OP_CONV2D_BWD_DATA ? 1 : 2); }

static int is_pointwise(const kt_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 && s->groups == 1;
}

static int uses_cudnn(const kt_conv_shape *s) { return !kt_conv_is_depthwise(s) && !is_pointwise(s); }

/* bf16/fp16 autocast of GEMMs (kt_backend_cuda_set_precision "bf16" or "fp16"): an f32 linear or
 * matmul rounds its f32 operands into 16-bit copies in its scratch, then multiplies with f32
 * accumulation. The choice is made per plan (cuda_prepare sets KT_NODE_AUTOCAST), so switching the
 * precision between graphs on one backend never runs a GEMM without its copies. */
static int gemm_op(const kt_node *n) { return n->op == KT_OP_LINEAR || n->op == KT_OP_MATMUL; }
static int f32_operand(const kt_node *s) { return s->dtype == KT_F32; }

static int autocast_candidate(const kt_node *n) {
    if (!gemm_op(n) || n->dtype != KT_F32) return 0;
    for (int k = 0; k < 2; k++)
        if (n->src[k]->dtype != KT_F32 && !(n->src[k]->flags & KT_NODE_STORED_BF16)) return 0;
    return 1;
}

/* A patch convolution (kernel == stride, no padding: ConvNeXt's downsampling layers) or one of its
 * backward parts that autocast runs as a 16-bit GEMM (kt_cuda_patch_conv_fwd; cuda_prepare sets
 * KT_NODE_AUTOCAST when the context's patch GEMMs are on): its f32 input x (forward, weight gradient)
 * may already be stored in 16 bits, everything else f32. Not one reading a graph input (the stem
 * on the raw image), which stays in cuDNN's TF32: rounding raw pixels to bf16 is what the LayerNorm
 * after the stem amplifies (emulated convnext_atto in bf16: inference logits within 1.6e-2 of the
 * fp32 CPU's with the stem as a bf16 GEMM, 5e-3 without; a training step's 1.1e-2 and 7.3e-3), for
 * a GEMM of a few GFLOP. */
static int conv_op(const kt_node *n) { return n->op == KT_OP_CONV2D || n->op == KT_OP_CONV2D_BWD_DATA || n->op == KT_OP_CONV2D_BWD_WEIGHT; }
static int x_source(const kt_node *n) { return n->op == KT_OP_CONV2D ? 0 : n->op == KT_OP_CONV2D_BWD_WEIGHT ? 1 : -1; }
static int patch_candidate(const kt_node *n) {
    if (!conv_op(n) || n->dtype != KT_F32) return 0;
    for (int k = 0; k < n->n_src; k++)
        if (n->src[k]->dtype != KT_F32 && !(k == x_source(n) && (n->src[k]->flags & KT_NODE_STORED_BF16))) return 0;
    if (x_source(n) >= 0) {
        const kt_node *x = n->src[x_source(n)], *base = x->view_of ? x->view_of : x;
        if (base->op == KT_OP_INPUT) return 0;
    }
    kt_conv_shape s = kt_node_conv_geom(n);
    return kt_cuda_conv_is_patch(&s);
}
static int planned_patch(const kt_node *n) { return conv_op(n) && (n->flags & (KT_NODE_AUTOCAST | KT_NODE_PATCH_F32)); }
/* A patch convolution cuDNN refuses (on the H200, giant ones: no deterministic algorithm under the
 * workspace cap, runs 7 and 8) runs as our patch GEMM in f32 (TF32 when allowed, as cuDNN's would)
 * instead of failing the plan: cuda_supports accepts it, cuda_prepare marks it KT_NODE_PATCH_F32.
 * With kt_cuda_ctx_patch_f32 on, every one cuDNN would run does (the stem, timed against cuDNN). */
static int patch_fallback_ok(const kt_node *n, const kt_conv_shape *s) {
    if (!conv_op(n) || n->dtype != KT_F32) return 0;
    for (int k = 0; k < n->n_src; k++)
        if (n->src[k]->dtype != KT_F32) return 0;
    return kt_cuda_conv_is_patch(s);
}

static size_t bf16_copy_offset(const kt_node *n) {
    return f32_operand(n->src[0]) ? ((size_t)kt_node_numel(n->src[0]) * 2 + 255) & ~(size_t)255 : 0;
}
static size_t bf16_copy_bytes(const kt_node *n) {
    return bf16_copy_offset(n) + (f32_operand(n->src[1]) ? (size_t)kt_node_numel(n->src[1]) * 2 : 0);
}
/* a linear stored in 16 bits (stores_pre_activation_16, stores_linear_out_16): its GEMM's f32 result
 * after the copies */
static size_t gemm_out_offset(const kt_node *n) { return (bf16_copy_bytes(n) + 255) & ~(size_t)255; }
static int linear_stored16(const kt_node *n) { return n->op == KT_OP_LINEAR && (n->flags & KT_NODE_STORED_BF16); }

/* readers of t (a node or a view of one): their count when every one is an autocast GEMM reading it
 * as an operand (patch: or a patch convolution's GEMM reading it as x), else -1. A column sum fused
 * into t's own kernel (fuse_colsum) sums the f32 values there and is no reader. */
static int gemm_readers(const kt_graph *g, const kt_node *t, int patch) {
    int readers = 0;
    for (int j = t->id + 1; j < g->n_nodes; j++) {
        const kt_node *r = g->nodes[j];
        if (r->view_of || r == t->fuse_colsum) continue; /* views are counted by their own readers */
        for (int k = 0; k < r->n_src; k++)
            if (r->src[k] == t) {
                if (!(k <= 1 && autocast_candidate(r)) && !(patch && k == x_source(r) && patch_candidate(r))) return -1;
                readers++;
            }
    }
    return readers;
}

/* Activations that only autocast GEMMs read (GELU's output, read by fc2 and by fc2's weight
 * gradient; the LayerNorm output fc1 reads) are stored rounded to 16 bits by the op that makes them
 * (both backward rules read their op's input, not its output): the GEMMs would round them anyway,
 * so the numbers are the same bits, while the tensor takes half the memory and its two rounding
 * passes disappear. The same holds in backward for the gradients fc1 and fc2 get, when the bias
 * gradient is fused into the op that makes them (summed from the f32 values in the same kernel):
 * GELU's gradient (4C wide) and layer scale's data gradient, each read by its linear's data and
 * weight gradients only. Kept outputs are left alone; reshapes of it share its storage. */
static int stores_bf16_candidate(const kt_graph *g, const kt_node *n, int patch) {
    int grad = n->fuse_colsum && ((n->op == KT_OP_ACT_BWD && kt_node_act(n->ip[0]) == KT_ACT_GELU) ||
                                  (n->op == KT_OP_MUL && (n->flags & KT_NODE_BACKWARD) && n->src[1]->ndim == 1));
    if (n->op != KT_OP_GELU && n->op != KT_OP_RELU && n->op != KT_OP_SILU && n->op != KT_OP_LAYERNORM && !grad) return 0;
    if (n->dtype != KT_F32 || n->src[0]->dtype != KT_F32 || n->view_of || (n->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD)))
        return 0;
    int total = gemm_readers(g, n, patch);
    for (int j = n->id + 1; j < g->n_nodes && total >= 0; j++) { /* reshapes of it (a linear's 2-D view) count as it */
        const kt_node *v = g->nodes[j];
        if (v->view_of != n) continue;
        int r = v->op == KT_OP_RESHAPE && !(v->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD)) ? gemm_readers(g, v, patch) : -1;
        total = r < 0 ? -1 : total + r;
    }
    return total > 0;
}

/* Tensors kept for backward that autocast keeps in 16 bits, stored in the plan's 16-bit type too
 * (as PyTorch's autocast does, in half the memory; each a numerical choice bounded by the bf16/fp16
 * step tests):
 * - fc1's pre-activation (a linear whose GELU it computes, fusion KT_FUSE_LINEAR_GELU), read later
 *   only by GELU's backward: with a bias, cuBLASLt writes it in 16 bits with the (16-bit) bias added
 *   in its epilogue and GELU reads it (kt_cuda_gemm_bias, kt_cuda_gelu_fwd_x16: autocast's linear
 *   and GELU); else, or when cuBLASLt declines, GELU is computed from the f32 value
 *   (kt_cuda_bias_gelu), the GEMM's f32 result living in the linear's scratch during the node. Not
 *   with recomputation (a recomputed GELU reads it too).
 * - fc2's output (a linear not followed by GELU) that only layer scale reads (out * gamma, and
 *   gamma's gradient): written the same way by cuBLASLt, else the GEMM's f32 result plus bias,
 *   rounded once (kt_cuda_bias_store).
 * - a depthwise convolution's output that only LayerNorm reads (forward and both backward parts):
 *   accumulated in f32 and rounded once; LayerNorm computes in f32 from the rounded values. */
/* How a reader r (reading n as source k) stands to storing n in 16 bits: 0 it cannot read that,
 * 1 it can, 2 it can and is a backward reader (the reason to store: a tensor kept for backward). */
typedef int (*reader_rule)(const kt_node *n, const kt_node *r, int k);

/* n may be stored in 16 bits when every reader accepts (and nothing views it) and some reader is a
 * backward one; n itself an f32 output nobody keeps. */
static int store16_ok(const kt_graph *g, const kt_node *n, reader_rule rule) {
    if (n->dtype != KT_F32 || (n->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD))) return 0;
    int backward = 0;
    for (int j = n->id + 1; j < g->n_nodes; j++) {
        const kt_node *r = g->nodes[j];
        if (r->view_of == n) return 0;
        for (int k = 0; k < r->n_src; k++) {
            if (r->src[k] != n) continue;
            int v = rule(n, r, k);
            if (!v) return 0;
            backward += v == 2;
        }
    }
    return backward > 0;
}

/* fc1 (linear + GELU fused): the GELU it computes, and GELU's backward reading the pre-activation */
static int pre_activation_reader(const kt_node *n, const kt_node *r, int k) {
    if (r == n->fuse_next) return 1;
    return r->op == KT_OP_ACT_BWD && k == 1 && kt_node_act(r->ip[0]) == KT_ACT_GELU && (r->dtype == KT_F32 || (r->flags & KT_NODE_STORED_BF16))
               ? 2
               : 0;
}
static int stores_pre_activation_16(const kt_graph *g, const kt_node *n) {
    return n->op == KT_OP_LINEAR && n->fuse_next && n->fuse_next->op == KT_OP_GELU && store16_ok(g, n, pre_activation_reader);
}

/* fc2: layer scale (out * gamma, gamma f32 over the last dim) and gamma's gradient, which reads out */
static int layer_scale_reader(const kt_node *n, const kt_node *r, int k) {
    if (r->op == KT_OP_MUL && k == 0 && r->src[1]->ndim == 1 && r->src[1]->dtype == KT_F32 && r->dtype == KT_F32 &&
        r->src[1]->shape[0] == last(n))
        return 1;
    return r->op == KT_OP_MUL_BCAST_BWD && k == 1 && r->src[0]->dtype == KT_F32 && r->dtype == KT_F32 ? 2 : 0;
}
static int stores_linear_out_16(const kt_graph *g, const kt_node *n) {
    return n->op == KT_OP_LINEAR && !n->fuse_next && store16_ok(g, n, layer_scale_reader);
}

/* the depthwise output: LayerNorm's forward (f32 or 16-bit output) and both backward parts */
static int layernorm_reader(const kt_node *n, const kt_node *r, int k) {
    (void)n;
    if (r->op == KT_OP_LAYERNORM && k == 0 && (r->dtype == KT_F32 || (r->flags & KT_NODE_STORED_BF16))) return 1;
    return (r->op == KT_OP_LAYERNORM_BWD_X || r->op == KT_OP_LAYERNORM_BWD_WB) && k == 1 && r->dtype == KT_F32 &&
                   r->src[0]->dtype == KT_F32
               ? 2
               : 0;
}
static int stores_dwconv_out_16(const kt_graph *g, const kt_node *n) {
    if (n->op != KT_OP_CONV2D) return 0;
    kt_conv_shape cs = kt_node_conv_geom(n);
    return kt_conv_is_depthwise(&cs) && store16_ok(g, n, layernorm_reader);
}

/* A depthwise conv's saved input (KT_NODE_SAVED_INPUT, a view of its input x until here) stored as
 * x rounded to 16 bits, as autocast saves the conv's 16-bit input for the weight gradient: when
 * depthwise weight gradients are its only readers and nothing in backward reads x itself, x (in
 * ConvNeXt the f32 residual stream) dies in forward and backward keeps half the bytes. A numerical
 * choice (the weight gradient from the rounded input), bounded by the bf16/fp16 step tests. Not
 * with recomputation: the recomputed depthwise conv reads x in backward anyway. */
static int stores_saved_input_16(const kt_graph *g, const kt_node *sv) {
    if (!(sv->flags & KT_NODE_SAVED_INPUT)) return 0;
    const kt_node *x = sv->src[0], *base = x->view_of ? x->view_of : x;
    /* graph inputs and parameters stay anyway; a kept x (read after the run) gets the copy all the
     * same, so that keeping a tensor never changes the numbers */
    if (x->dtype != KT_F32 || base->op == KT_OP_INPUT || base->op == KT_OP_PARAM) return 0;
    int readers = 0;
    for (int j = sv->id + 1; j < g->n_nodes; j++) {
        const kt_node *r = g->nodes[j];
        if (r->view_of == sv) return 0;
        for (int k = 0; k < r->n_src; k++) {
            const kt_node *t = r->src[k];
            if (t == sv) {
                if (r->op != KT_OP_CONV2D_BWD_WEIGHT || k != 1 || r->dtype != KT_F32 || r->src[0]->dtype != KT_F32) return 0;
                kt_conv_shape cs = kt_node_conv_geom(r);
                if (!kt_conv_is_depthwise(&cs)) return 0;
                readers++;
            } else if (j >= g->n_forward && (t->view_of ? t->view_of : t) == base) {
                return 0; /* backward reads x (or another view of it): x stays, a copy would only add */
            }
        }
    }
    return readers > 0;
}

/* A data gradient an autocast GEMM makes for a fused kernel that reads it as its dy alongside a
 * 16-bit input: GELU's incoming gradient (fc2's data gradient, 4C wide in ConvNeXt) when GELU's
 * backward reads its pre-activation in 16 bits and sums the bias gradient in the same pass
 * (fuse_colsum), and LayerNorm's (fc1's data gradient) when its fused backward reads x (the
 * depthwise output) in 16 bits (the fused weight gradient reads it too). Written by the GEMM in that
 * 16-bit type, as autocast's matmul writes it: half the bytes out of the GEMM and into the kernel. A
 * numerical choice (autocast's), bounded by the bf16/fp16 step tests. */
static int stored_16(const kt_node *t, kt_dtype half) { return t->dtype == half && (t->flags & KT_NODE_STORED_BF16); }
static int grad16_reader(const kt_node *r, int k, kt_dtype half) {
    if (k != 0) return 0;
    if (r->op == KT_OP_ACT_BWD) return kt_node_act(r->ip[0]) == KT_ACT_GELU && r->fuse_colsum && stored_16(r->src[1], half);
    if (r->op == KT_OP_LAYERNORM_BWD_X) return (r->fuse_next || r->fuse_colsum) && stored_16(r->src[1], half);
    if (r->op == KT_OP_LAYERNORM_BWD_WB) return r->fused; /* computed by the LayerNorm data gradient before it */
    return 0;
}
static int stores_gemm_grad_16(const kt_graph *g, const kt_node *n, kt_dtype half) {
    if (n->op != KT_OP_MATMUL || !(n->flags & KT_NODE_AUTOCAST) || !(n->flags & KT_NODE_BACKWARD) || n->dtype != KT_F32 ||
        (n->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD)))
        return 0;
    int readers = 0;
    for (int j = n->id + 1; j < g->n_nodes; j++) {
        const kt_node *r = g->nodes[j];
        if (r->view_of == n && (r->op != KT_OP_RESHAPE || (r->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD)))) return 0;
        for (int k = 0; k < r->n_src; k++) {
            const kt_node *t = r->src[k];
            if (t != n && t->view_of != n) continue;
            if (r->view_of == n && r->op == KT_OP_RESHAPE) continue; /* the view itself: its readers are checked as n's */
            if (!grad16_reader(r, k, half)) return 0;
            readers++;
        }
    }
    return readers > 0;
}

/* An autocast linear with a bias computing its GELU (fuse_next) whose pre-activation nothing else
 * reads (inference; in training GELU's backward reads it, stored in 16 bits or f32): cuBLASLt writes
 * the 16-bit pre-activation into the linear's own (f32-sized) buffer, GELU reads it from there. */
static int out_scratch_ok(const kt_graph *g, const kt_node *n) {
    if (n->op != KT_OP_LINEAR || n->n_src < 3 || !n->fuse_next || n->fuse_next->op != KT_OP_GELU || !(n->flags & KT_NODE_AUTOCAST) ||
        (n->flags & (KT_NODE_STORED_BF16 | KT_NODE_KEEP | KT_NODE_KEEP_GRAD)) || n->dtype != KT_F32)
        return 0;
    return kt_node_read_only_by(g, n, n->fuse_next);
}

/* n stored in h16 from here on, and the views of it with it (they share its storage) */
static void store16(kt_graph *g, kt_node *n, kt_dtype h16, int with_views) {
    for (int j = n->id; j < g->n_nodes; j++) {
        kt_node *v = g->nodes[j];
        if (v == n || (with_views && v->view_of == n)) {
            v->flags |= KT_NODE_STORED_BF16;
            v->dtype = h16;
        }
    }
}

static void cuda_prepare(kt_backend *be, kt_graph *g) {
    kt_cuda_ctx_bind(CTX(be)); /* its cuDNN queries run on the context's GPU; a failure shows at the first compute */
    kt_cuda_dtype half = kt_cuda_ctx_gemm_half(CTX(be));
    int patch = kt_cuda_ctx_patch_gemm(CTX(be));
    for (int i = 0; i < g->n_nodes; i++) { /* the patch convolutions cuDNN refused (cuda_supports let them through) */
        kt_node *n = g->nodes[i];
        if (!conv_op(n) || (half != KT_CUDA_F32 && patch && patch_candidate(n))) continue;
        kt_conv_shape cs = kt_node_conv_geom(n);
        size_t bytes;
        if (uses_cudnn(&cs) && patch_fallback_ok(n, &cs) &&
            (kt_cuda_ctx_patch_f32(CTX(be)) || kt_cuda_conv_plan(CTX(be), conv_kind(n), &cs, &bytes) != 0))
            n->flags |= KT_NODE_PATCH_F32;
    }
    if (half == KT_CUDA_F32) return;
    kt_dtype h16 = half == KT_CUDA_F16 ? KT_F16 : KT_BF16;
    for (int i = 0; i < g->n_nodes; i++)
        if (stores_bf16_candidate(g, g->nodes[i], patch)) store16(g, g->nodes[i], h16, 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (autocast_candidate(g->nodes[i]) || (patch && patch_candidate(g->nodes[i])))
            g->nodes[i]->flags |= KT_NODE_AUTOCAST | (half == KT_CUDA_F16 ? KT_NODE_AUTOCAST_F16 : 0);
    for (int i = 0; i < g->n_nodes; i++) {
        kt_node *n = g->nodes[i];
        /* after the GELU/LayerNorm choices above, which look for f32 inputs */
        if (((n->flags & KT_NODE_AUTOCAST) && (stores_pre_activation_16(g, n) || stores_linear_out_16(g, n))) ||
            stores_dwconv_out_16(g, n))
            store16(g, n, h16, 0);
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (out_scratch_ok(g, g->nodes[i])) g->nodes[i]->flags |= KT_NODE_OUT_SCRATCH;
    for (int i = 0; i < g->n_nodes; i++) /* after the pre-activations' choice above (GELU's v) */
        if (stores_gemm_grad_16(g, g->nodes[i], h16)) store16(g, g->nodes[i], h16, 1);
    for (int i = 1; i < g->n_nodes; i++) {
        kt_node *sv = g->nodes[i], *conv = g->nodes[i - 1];
        if (!stores_saved_input_16(g, sv)) continue;
        sv->view_of = NULL;
        store16(g, sv, h16, 0);
        /* the conv reads x anyway: its kernel writes the copy too (else the copy is its own pass) */
        kt_conv_shape cs = conv->op == KT_OP_CONV2D ? kt_node_conv_geom(conv) : (kt_conv_shape){0};
        if (conv->saved_input == sv && kt_conv_is_depthwise(&cs) && kt_cuda_dwconv_can_copy_input(&cs) && !conv->fuse_next &&
            conv->src[0] == sv->src[0]) {
            conv->fuse_next = sv;
            sv->fused = 1;
        }
    }
}

static int planned_autocast(const kt_node *n) { return gemm_op(n) && (n->flags & KT_NODE_AUTOCAST); }
static kt_cuda_dtype half_of(const kt_node *n) {
    return (n->flags & KT_NODE_PATCH_F32) ? KT_CUDA_F32 : (n->flags & KT_NODE_AUTOCAST_F16) ? KT_CUDA_F16 : KT_CUDA_BF16;
}

/* a KT_NODE_OUT_SCRATCH linear's 16-bit pre-activation (in its own buffer) and its GELU's output:
 * the same buffer in the same type (each element read before it is written), or apart */
static int pre_apart(const kt_node *n, kt_cuda_dtype t) {
    const char *p = n->data, *y = n->fuse_next->data;
    size_t pb = (size_t)kt_node_numel(n) * 2, yb = kt_node_bytes(n->fuse_next);
    if (y == p && cdt(n->fuse_next) == t) return 1;
    return y + yb <= p || p + pb <= y;
}

/* f32 -> the 16-bit type t */
static int round16(kt_cuda_ctx *c, kt_cuda_dtype t, uint16_t *y, const float *x, int64_t n) {
    return t == KT_CUDA_F16 ? kt_cuda_f32_to_f16(c, y, x, n) : kt_cuda_f32_to_bf16(c, y, x, n);
}

/* The GEMM operands of a linear/matmul node and their type: its sources as they are, or, when it was
 * planned for autocast, the plan's 16-bit type: stored sources as they are, f32 ones rounded into its
 * scratch (A first, B after it). 1 on a CUDA error. */
static int gemm_operands(kt_cuda_ctx *c, const kt_node *n, const void **a, const void **b, kt_cuda_dtype *ab) {
    *a = n->src[0]->data, *b = n->src[1]->data, *ab = cdt(n->src[0]);
    if (!planned_autocast(n)) return 0;
    kt_cuda_dtype t = half_of(n);
    *ab = t;
    if (f32_operand(n->src[0])) {
        uint16_t *a16 = n->scratch;
        if (round16(c, t, a16, F(n->src[0]), kt_node_numel(n->src[0]))) return 1;
        *a = a16;
    }
    if (f32_operand(n->src[1])) {
        uint16_t *b16 = (uint16_t *)((char *)n->scratch + bf16_copy_offset(n));
        if (round16(c, t, b16, F(n->src[1]), kt_node_numel(n->src[1]))) return 1;
        *b = b16;
    }
    return 0;
}

/* ---- what runs where ---- */

static int all_dtype(const kt_node *n, kt_dtype dt) {
    if (n->dtype != dt) return 0;
    for (int i = 0; i < n->n_src; i++)
        if (n->src[i]->dtype != dt) return 0;
    return 1;
}

/* bf16 building blocks: activations in bf16, LayerNorm weights and biases in f32 */
static int bf16_ok(const kt_node *n) {
    const kt_node *const *s = (const kt_node *const *)n->src;
    switch (n->op) {
    case KT_OP_LINEAR: /* bf16 x and w, no bias, bf16 or f32 output */
        return n->n_src == 2 && s[0]->dtype == KT_BF16 && s[1]->dtype == KT_BF16 && (n->dtype == KT_BF16 || n->dtype == KT_F32);
    case KT_OP_MATMUL: return s[0]->dtype == KT_BF16 && s[1]->dtype == KT_BF16 && (n->dtype == KT_BF16 || n->dtype == KT_F32);
    case KT_OP_GELU:
    case KT_OP_RELU:
    case KT_OP_SILU:
    case KT_OP_SIGMOID:
    case KT_OP_ADD:
    case KT_OP_ACT_BWD: return all_dtype(n, KT_BF16);
    case KT_OP_LAYERNORM:
        return n->dtype == KT_BF16 && s[0]->dtype == KT_BF16 && (n->n_src == 1 || (s[1]->dtype == KT_F32 && s[2]->dtype == KT_F32));
    case KT_OP_LAYERNORM_BWD_X:
        return n->dtype == KT_BF16 && s[0]->dtype == KT_BF16 && s[1]->dtype == KT_BF16 && (n->n_src == 2 || s[2]->dtype == KT_F32);
    default: return 0;
    }
}

static int cuda_supports(const kt_backend *be, const kt_node *n) {
    if (kt_cuda_ctx_bind(CTX(be))) return 0; /* cuDNN's plans are made on the context's GPU */
    switch (n->op) {
    case KT_OP_INPUT:
    case KT_OP_PARAM:
    case KT_OP_RESHAPE: return 1;
    case KT_OP_PERMUTE:
    case KT_OP_COPY: return n->dtype == n->src[0]->dtype;
    case KT_OP_SOFTMAX_CE: return n->dtype == KT_F32 && n->src[0]->dtype == KT_F32 && n->src[1]->dtype == KT_I32;
    case KT_OP_SOFTMAX_CE_BWD:
        return n->dtype == KT_F32 && n->src[0]->dtype == KT_F32 && n->src[1]->dtype == KT_F32 && n->src[2]->dtype == KT_I32;
    case KT_OP_CONV2D:
    case KT_OP_CONV2D_BWD_DATA:
    case KT_OP_CONV2D_BWD_WEIGHT: {
        if (!all_dtype(n, KT_F32)) return 0;
        kt_conv_shape s = kt_node_conv_geom(n);
        size_t bytes;
        /* autocast will run it as a patch GEMM (cuda_prepare): no cuDNN plan (cudnnFind) needed */
        if (kt_cuda_ctx_gemm_half(CTX(be)) != KT_CUDA_F32 && kt_cuda_ctx_patch_gemm(CTX(be)) && patch_candidate(n)) return 1;
        if (uses_cudnn(&s) && kt_cuda_ctx_patch_f32(CTX(be)) && patch_fallback_ok(n, &s)) return 1; /* no cudnnFind */
        return !uses_cudnn(&s) || kt_cuda_conv_plan(CTX(be), conv_kind(n), &s, &bytes) == 0 || patch_fallback_ok(n, &s);
    }
    default:
        if (n->op <= KT_OP_NONE || n->op >= KT_OP_COUNT) return 0;
        return all_dtype(n, KT_F32) || bf16_ok(n);
    }
}

/* A convolution cuDNN refused (cudnnFind found nothing usable, a dimension past int): its reason,
 * which cuda_supports's plan attempt left in the context, asked for again */
static void cuda_unsupported_why(const kt_backend *be, const kt_node *n, char *buf, size_t cap) {
    buf[0] = 0;
    if (n->op != KT_OP_CONV2D && n->op != KT_OP_CONV2D_BWD_DATA && n->op != KT_OP_CONV2D_BWD_WEIGHT) return;
    if (!all_dtype(n, KT_F32)) {
        snprintf(buf, cap, "its convolutions take f32 tensors, this one has others");
        return;
    }
    kt_conv_shape s = kt_node_conv_geom(n);
    size_t bytes;
    if (kt_cuda_ctx_bind(CTX(be))) snprintf(buf, cap, "%s", kt_cuda_ctx_error(CTX(be)));
    else if (uses_cudnn(&s) && kt_cuda_conv_plan(CTX(be), conv_kind(n), &s, &bytes) != 0) snprintf(buf, cap, "%s", kt_cuda_ctx_error(CTX(be)));
}

static size_t cuda_scratch(const kt_backend *be, const kt_node *n) {
    (void)be;
    if (planned_autocast(n)) {
        if (linear_stored16(n)) return gemm_out_offset(n) + (size_t)kt_node_numel(n) * sizeof(float);
        /* the bias rounded to 16 bits for cuBLASLt (kt_cuda_gemm_bias) */
        if (n->flags & KT_NODE_OUT_SCRATCH) return gemm_out_offset(n) + (size_t)last(n) * 2;
        return bf16_copy_bytes(n);
    }
    switch (n->op) {
    case KT_OP_CONV2D:
    case KT_OP_CONV2D_BWD_DATA:
    case KT_OP_CONV2D_BWD_WEIGHT: {
        kt_conv_shape s = kt_node_conv_geom(n);
        size_t bytes = 0;
        if (planned_patch(n)) return kt_cuda_patch_conv_scratch(&s, conv_kind(n), half_of(n));
        if (kt_conv_is_depthwise(&s))
            return n->op == KT_OP_CONV2D_BWD_WEIGHT ? kt_cuda_dwconv_bwd_weight_scratch(CTX(be), &s) : kt_cuda_dwconv_scratch(&s);
        if (is_pointwise(&s)) return 0;
        return kt_cuda_conv_plan(CTX(be), conv_kind(n), &s, &bytes) == 0 ? bytes : 0;
    }
    case KT_OP_REDUCE_ROWS:
    case KT_OP_MUL_BCAST_BWD: return kt_cuda_reduce_rows_scratch(kt_node_rows(n->src[0]), last(n->src[0]));
    case KT_OP_MUL: /* layer scale's fused backward: its column sums' partials */
        return (n->fuse_next && n->fuse_next->op == KT_OP_MUL_BCAST_BWD) || n->fuse_colsum ? kt_cuda_layer_scale_bwd_scratch(kt_node_rows(n), last(n))
                                                                                            : 0;
    case KT_OP_ACT_BWD: return n->fuse_colsum ? kt_cuda_reduce_rows_scratch(kt_node_rows(n), last(n)) : 0;
    case KT_OP_LAYERNORM_BWD_X: return n->fuse_next || n->fuse_colsum ? kt_cuda_layernorm_bwd_fused_scratch(kt_node_rows(n), last(n)) : 0;
    case KT_OP_LAYERNORM_BWD_WB: return kt_cuda_layernorm_bwd_wb_scratch(kt_node_rows(n->src[1]), n->shape[1]);
    case KT_OP_BATCHNORM:
    case KT_OP_BATCHNORM_BWD_X:
    case KT_OP_BATCHNORM_BWD_WB: {
        const kt_node *x = n->op == KT_OP_BATCHNORM ? n->src[0] : n->src[1];
        return kt_cuda_batchnorm_scratch(kt_node_rows(x), last(x));
    }
    case KT_OP_SUM: return kt_cuda_sum_scratch(kt_node_numel(n->src[0]));
    case KT_OP_BCE_LOGITS: return kt_cuda_sum_scratch(kt_node_numel(n->src[0]));
    case KT_OP_SOFTMAX_CE: return kt_cuda_softmax_ce_scratch(n->src[0]->shape[0]);
    default: return 0;
    }
}

/* ---- running ---- */

static kt_status conv_compute(kt_backend *be, kt_node *n, kt_err *err) {
    kt_cuda_ctx *c = CTX(be);
    kt_node **s = n->src;
    kt_conv_shape cs = kt_node_conv_geom(n);
    int64_t M = cs.N * cs.Ho * cs.Wo;
    if (planned_patch(n)) { /* x f32 or stored in 16 bits (stores_bf16_candidate) */
        kt_cuda_dtype t = half_of(n);
        if (n->op == KT_OP_CONV2D)
            CK(kt_cuda_patch_conv_fwd(c, &cs, s[0]->data, cdt(s[0]), F(s[1]), n->n_src > 2 ? F(s[2]) : NULL, F(n), t, n->scratch));
        else if (n->op == KT_OP_CONV2D_BWD_DATA) CK(kt_cuda_patch_conv_bwd_data(c, &cs, F(s[0]), F(s[1]), F(n), t, n->scratch));
        else CK(kt_cuda_patch_conv_bwd_weight(c, &cs, F(s[0]), s[1]->data, cdt(s[1]), F(n), t, n->scratch));
        return KT_OK;
    }
    if (n->op == KT_OP_CONV2D) {
        const float *b = n->n_src > 2 ? F(s[2]) : NULL;
        /* output maybe stored in 16 bits (stores_dwconv_out_16); fuse_next: the input's 16-bit copy
         * for the weight gradient (stores_saved_input_16) */
        if (kt_conv_is_depthwise(&cs))
            CK(kt_cuda_dwconv_fwd_ex(c, &cs, F(s[0]), F(s[1]), b, n->data, cdt(n), n->fuse_next ? n->fuse_next->data : NULL,
                                     n->fuse_next ? cdt(n->fuse_next) : KT_CUDA_F32, n->scratch));
        else if (!is_pointwise(&cs)) CK(kt_cuda_conv_fwd(c, &cs, F(s[0]), F(s[1]), b, F(n), n->scratch, n->scratch_bytes));
        else {
            if (b) CK(kt_cuda_fill_rows(c, F(n), b, M, cs.Co));
            /* y (M, Co) = x (M, Ci) w^T */
            CK(kt_cuda_gemm(c, 0, 1, M, cs.Co, cs.Ci, 1.0f, F(s[0]), cs.Ci, F(s[1]), cs.Ci, b ? 1.0f : 0.0f, F(n), cs.Co,
                            KT_CUDA_F32, KT_CUDA_F32));
        }
    } else if (n->op == KT_OP_CONV2D_BWD_DATA) {
        if (kt_conv_is_depthwise(&cs) && n->fuse_next) { /* summed straight into the gradient add (KT_FUSE_DWCONV_BWD_ADD) */
            const kt_node *a = n->fuse_next, *other = a->src[0] == n ? a->src[1] : a->src[0];
            if (other->dtype != KT_F32) return kt_err_set(err, KT_ERR_UNSUPPORTED, "fused gradient add: %s is not f32", other->name);
            CK(kt_cuda_dwconv_bwd_data_add(c, &cs, F(s[0]), F(s[1]), F(other), F(a), n->scratch));
        } else if (kt_conv_is_depthwise(&cs)) CK(kt_cuda_dwconv_bwd_data(c, &cs, F(s[0]), F(s[1]), F(n), n->scratch));
        else if (!is_pointwise(&cs)) CK(kt_cuda_conv_bwd_data(c, &cs, F(s[0]), F(s[1]), F(n), n->scratch, n->scratch_bytes));
        else /* dx (M, Ci) = dy (M, Co) w (Co, Ci) */
            CK(kt_cuda_gemm(c, 0, 0, M, cs.Ci, cs.Co, 1.0f, F(s[0]), cs.Co, F(s[1]), cs.Ci, 0.0f, F(n), cs.Ci, KT_CUDA_F32,
                            KT_CUDA_F32));
    } else {
        if (kt_conv_is_depthwise(&cs)) /* x: f32, or its saved 16-bit copy */
            CK(kt_cuda_dwconv_bwd_weight_x16(c, &cs, F(s[0]), s[1]->data, cdt(s[1]), F(n), n->scratch));
        else if (!is_pointwise(&cs)) CK(kt_cuda_conv_bwd_weight(c, &cs, F(s[0]), F(s[1]), F(n), n->scratch, n->scratch_bytes));
        else /* dw (Co, Ci) = dy^T (Co, M) x (M, Ci) */
            CK(kt_cuda_gemm(c, 1, 0, cs.Co, cs.Ci, M, 1.0f, F(s[0]), cs.Co, F(s[1]), cs.Ci, 0.0f, F(n), cs.Ci, KT_CUDA_F32,
                            KT_CUDA_F32));
    }
    return KT_OK;
}

/* Dropout and drop path: identity outside training (or p = 0), else the CPU backend's masks. */
static kt_status dropout_compute(kt_backend *be, const kt_graph *g, kt_node *n, kt_err *err) {
    kt_cuda_ctx *c = CTX(be);
    int fwd = n->op == KT_OP_DROPOUT || n->op == KT_OP_DROP_PATH;
    int path = n->op == KT_OP_DROP_PATH || n->op == KT_OP_DROP_PATH_BWD;
    int64_t numel = kt_node_numel(n);
    if (!g->training || n->fp[0] == 0.0f) CK(kt_cuda_copy(c, n->data, n->src[0]->data, kt_node_bytes(n)));
    else {
        uint64_t key = kt_dropout_key(g, fwd ? n->id : n->ip[0]);
        if (path) CK(kt_cuda_drop_path(c, F(n), F(n->src[0]), n->shape[0], numel / n->shape[0], n->fp[0], key));
        else CK(kt_cuda_dropout(c, F(n), F(n->src[0]), numel, n->fp[0], key));
    }
    return KT_OK;
}

static kt_status shape_compute(kt_backend *be, kt_node *n, kt_err *err) {
    kt_cuda_ctx *c = CTX(be);
    kt_node **s = n->src;
    int64_t outer, inner;
    switch (n->op) {
    case KT_OP_PERMUTE: {
        int perm[KT_MAX_DIMS];
        for (int i = 0; i < n->ndim; i++) perm[i] = n->ip[i];
        CK(kt_cuda_permute(c, n->data, s[0]->data, s[0]->ndim, s[0]->shape, perm, (int)kt_dtype_size(n->dtype)));
        break;
    }
    case KT_OP_CONCAT: {
        int axis = n->ip[0];
        kt_node_around_axis(n, axis, &outer, &inner);
        int64_t total = n->shape[axis], off = 0;
        for (int i = 0; i < n->n_src; i++) {
            int64_t len = s[i]->shape[axis];
            CK(kt_cuda_copy_rows(c, F(n) + off * inner, total * inner, F(s[i]), len * inner, len * inner, outer));
            off += len;
        }
        break;
    }
    case KT_OP_SLICE: {
        int64_t axis_len = s[0]->shape[n->ip[0]], start = n->ip[1], len = n->ip[2];
        kt_node_around_axis(s[0], n->ip[0], &outer, &inner);
        CK(kt_cuda_copy_rows(c, F(n), len * inner, F(s[0]) + start * inner, axis_len * inner, len * inner, outer));
        break;
    }
    default: { /* KT_OP_SLICE_BWD */
        int64_t axis_len = n->shape[n->ip[0]], start = n->ip[1], len = n->ip[2];
        kt_node_around_axis(n, n->ip[0], &outer, &inner);
        CK(kt_cuda_ctx_memset(c, n->data, 0, kt_node_bytes(n)));
        CK(kt_cuda_copy_rows(c, F(n) + start * inner, axis_len * inner, F(s[0]), len * inner, len * inner, outer));
        break;
    }
    }
    return KT_OK;
}

static kt_status bf16_compute(kt_backend *be, kt_node *n, kt_err *err) {
    kt_cuda_ctx *c = CTX(be);
    kt_node **s = n->src;
    int64_t numel = kt_node_numel(n);
    switch (n->op) {
    case KT_OP_ADD: CK(kt_cuda_add_bf16(c, n->data, s[0]->data, s[1]->data, numel)); break;
    case KT_OP_ACT_BWD: CK(kt_cuda_act_bwd_bf16(c, kt_node_act(n->ip[0]), n->data, s[0]->data, s[1]->data, numel)); break;
    case KT_OP_LAYERNORM:
        CK(kt_cuda_layernorm_fwd_bf16(c, n->data, s[0]->data, n->n_src > 1 ? F(s[1]) : NULL, n->n_src > 1 ? F(s[2]) : NULL,
                                      kt_node_rows(n), last(n), n->fp[0]));
        break;
    case KT_OP_LAYERNORM_BWD_X:
        CK(kt_cuda_layernorm_bwd_x_bf16(c, n->data, s[0]->data, s[1]->data, n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), last(n),
                                        n->fp[0]));
        break;
    default: CK(kt_cuda_act_fwd_bf16(c, kt_node_act(n->op), n->data, s[0]->data, numel)); break;
    }
    return KT_OK;
}

static kt_status cuda_compute(kt_backend *be, const kt_graph *g, kt_node *n, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    kt_cuda_ctx *c = CTX(be);
    kt_node **s = n->src;
    int64_t numel = kt_node_numel(n);
    /* a LayerNorm or activation whose output only GEMMs read, rounded to 16 bits (stores_bf16_candidate;
     * the other ops stored in 16 bits write it in their own branch below) */
    int act_fwd = n->op == KT_OP_GELU || n->op == KT_OP_RELU || n->op == KT_OP_SILU;
    if ((n->flags & KT_NODE_STORED_BF16) && (n->op == KT_OP_LAYERNORM || act_fwd)) {
        int f16 = n->dtype == KT_F16;
        const float *w = n->n_src > 1 ? F(s[1]) : NULL, *b = n->n_src > 1 ? F(s[2]) : NULL;
        if (n->op == KT_OP_LAYERNORM && s[0]->dtype != KT_F32) /* over a depthwise output stored in 16 bits */
            CK(kt_cuda_layernorm_fwd_x16(c, n->data, cdt(n), s[0]->data, cdt(s[0]), w, b, kt_node_rows(n), last(n), n->fp[0]));
        else if (n->op == KT_OP_LAYERNORM)
            CK((f16 ? kt_cuda_layernorm_fwd_f32_to_f16 : kt_cuda_layernorm_fwd_f32_to_bf16)(c, n->data, F(s[0]), w, b, kt_node_rows(n),
                                                                                          last(n), n->fp[0]));
        else CK((f16 ? kt_cuda_act_fwd_f32_to_f16 : kt_cuda_act_fwd_f32_to_bf16)(c, kt_node_act(n->op), n->data, F(s[0]), numel));
        return KT_OK;
    }
    if (n->dtype == KT_BF16 && !(n->flags & KT_NODE_STORED_BF16) && n->op != KT_OP_LINEAR && n->op != KT_OP_MATMUL &&
        n->op != KT_OP_PERMUTE && n->op != KT_OP_COPY)
        return bf16_compute(be, n, err);
    switch (n->op) {
    case KT_OP_CONV2D:
    case KT_OP_CONV2D_BWD_DATA:
    case KT_OP_CONV2D_BWD_WEIGHT: return conv_compute(be, n, err);
    case KT_OP_LINEAR: {
        int64_t K = s[1]->shape[1], O = s[1]->shape[0], M = kt_node_numel(s[0]) / K;
        int bias = n->n_src > 2;
        const void *a, *b;
        kt_cuda_dtype ab;
        CK(gemm_operands(c, n, &a, &b, &ab));
        /* cuBLASLt adds the bias in its epilogue and writes the output in its type (kt_cuda_gemm_bias):
         * - a 16-bit stored output (fc1's pre-activation, fc2's output): the bias rounded to that type
         *   as autocast rounds it, and the fused GELU then reads the stored pre-activation;
         * - a pre-activation nothing else reads (KT_NODE_OUT_SCRATCH, inference): written in 16 bits
         *   into the linear's own buffer for the fused GELU, when GELU's output is that same buffer
         *   in the same type or lies apart from it;
         * - an f32 output with no fused GELU: instead of a bias fill and a beta-1 GEMM.
         * Declined (-1: no cuBLASLt, no algorithm for the shape, unaligned buffers): the paths below.
         * The rounded bias sits where the stored path's f32 result goes. */
        int lt = -1;
        if (bias && ab != KT_CUDA_F32 && ((linear_stored16(n) && ab == cdt(n)) || ((n->flags & KT_NODE_OUT_SCRATCH) && pre_apart(n, ab)))) {
            uint16_t *b16 = (uint16_t *)((char *)n->scratch + gemm_out_offset(n));
            CK(round16(c, ab, b16, F(s[2]), O));
            lt = kt_cuda_gemm_bias(c, M, O, K, a, b, b16, n->data, ab, ab);
            if (lt == 0 && n->fuse_next) CK(kt_cuda_gelu_fwd_x16(c, n->fuse_next->data, cdt(n->fuse_next), n->data, ab, M * O));
        } else if (bias && !n->fuse_next && cdt(n) == KT_CUDA_F32) {
            lt = kt_cuda_gemm_bias(c, M, O, K, a, b, F(s[2]), n->data, ab, KT_CUDA_F32);
        }
        CK(lt > 0);
        if (lt == 0) break;
        if (n->fuse_next || linear_stored16(n)) {
            /* GEMM (beta 0) into z: the output itself, or the scratch when the output is stored in 16
             * bits; then one pass adds the bias and writes the output (and the fused GELU) */
            float *z = linear_stored16(n) ? (float *)((char *)n->scratch + gemm_out_offset(n)) : F(n);
            CK(kt_cuda_gemm(c, 0, 1, M, O, K, 1.0f, a, K, b, K, 0.0f, z, O, ab, KT_CUDA_F32));
            if (n->fuse_next)
                CK(kt_cuda_bias_gelu(c, z, bias ? F(s[2]) : NULL, n->data, cdt(n), n->fuse_next->data, cdt(n->fuse_next), M, O));
            else CK(kt_cuda_bias_store(c, z, bias ? F(s[2]) : NULL, n->data, cdt(n), M, O));
            break;
        }
        if (bias) CK(kt_cuda_fill_rows(c, F(n), F(s[2]), M, O));
        CK(kt_cuda_gemm(c, 0, 1, M, O, K, 1.0f, a, K, b, K, bias ? 1.0f : 0.0f, n->data, O, ab, cdt(n)));
        break;
    }
    case KT_OP_MATMUL: {
        int ta = n->ip[0], tb = n->ip[1], o = n->ndim - 2;
        int64_t M = n->shape[o], N = n->shape[o + 1], K = ta ? s[0]->shape[o] : s[0]->shape[o + 1];
        const void *a, *b;
        kt_cuda_dtype ab;
        CK(gemm_operands(c, n, &a, &b, &ab));
        CK(kt_cuda_gemm_batched(c, ta, tb, o ? n->shape[0] : 1, M, N, K, a, b, n->data, ab, cdt(n)));
        break;
    }
    case KT_OP_LAYERNORM: /* x may be a depthwise output stored in 16 bits (stores_dwconv_out_16), as in both backward parts */
        if (s[0]->dtype != KT_F32)
            CK(kt_cuda_layernorm_fwd_x16(c, F(n), KT_CUDA_F32, s[0]->data, cdt(s[0]), n->n_src > 1 ? F(s[1]) : NULL,
                                         n->n_src > 1 ? F(s[2]) : NULL, kt_node_rows(n), last(n), n->fp[0]));
        else
            CK(kt_cuda_layernorm_fwd(c, F(n), F(s[0]), n->n_src > 1 ? F(s[1]) : NULL, n->n_src > 1 ? F(s[2]) : NULL, kt_node_rows(n),
                                     last(n), n->fp[0]));
        break;
    case KT_OP_LAYERNORM_BWD_X:
        if (n->fuse_next || n->fuse_colsum) /* with the weight/bias gradients and/or the bias gradient summed from dx (planner fusions) */
            CK(kt_cuda_layernorm_bwd_fused(c, F(n), s[0]->data, cdt(s[0]), s[1]->data, cdt(s[1]), n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), last(n),
                                           n->fp[0], n->fuse_next ? F(n->fuse_next) : NULL, n->fuse_colsum ? F(n->fuse_colsum) : NULL,
                                           n->scratch));
        else if (s[0]->dtype != KT_F32) /* only the fused kernels read a 16-bit dy (stores_gemm_grad_16) */
            return kt_err_set(err, KT_ERR_UNSUPPORTED, "layernorm backward %s: a 16-bit incoming gradient without the fused kernels", n->name);
        else if (s[1]->dtype != KT_F32)
            CK(kt_cuda_layernorm_bwd_x_x16(c, F(n), F(s[0]), s[1]->data, cdt(s[1]), n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), last(n),
                                           n->fp[0]));
        else CK(kt_cuda_layernorm_bwd_x(c, F(n), F(s[0]), F(s[1]), n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), last(n), n->fp[0]));
        break;
    case KT_OP_LAYERNORM_BWD_WB:
        if (s[1]->dtype != KT_F32)
            CK(kt_cuda_layernorm_bwd_wb_x16(c, F(n), F(s[0]), s[1]->data, cdt(s[1]), kt_node_rows(s[1]), n->shape[1], n->fp[0], n->scratch));
        else CK(kt_cuda_layernorm_bwd_wb(c, F(n), F(s[0]), F(s[1]), kt_node_rows(s[1]), n->shape[1], n->fp[0], n->scratch));
        break;
    case KT_OP_BATCHNORM:
        CK(kt_cuda_batchnorm_fwd(c, F(n), F(s[0]), F(s[1]), F(s[2]), F(s[3]), F(s[4]), kt_node_rows(n), last(n), n->fp[0], n->fp[1],
                                 g->training, n->scratch));
        break;
    case KT_OP_BATCHNORM_BWD_X:
        CK(kt_cuda_batchnorm_bwd_x(c, F(n), F(s[0]), F(s[1]), F(s[2]), F(s[4]), kt_node_rows(n), last(n), n->fp[0], g->training,
                                   n->scratch));
        break;
    case KT_OP_BATCHNORM_BWD_WB:
        CK(kt_cuda_batchnorm_bwd_wb(c, F(n), F(s[0]), F(s[1]), F(s[2]), F(s[3]), kt_node_rows(s[1]), n->shape[1], n->fp[0],
                                    g->training, n->scratch));
        break;
    case KT_OP_GELU:
    case KT_OP_RELU:
    case KT_OP_SILU:
    case KT_OP_SIGMOID: CK(kt_cuda_act_fwd(c, kt_node_act(n->op), F(n), F(s[0]), numel)); break;
    case KT_OP_ACT_BWD: /* v (s[1]) may be a pre-activation stored in 16 bits (stores_pre_activation_16) */
        if (n->fuse_colsum) /* and the bias gradient summed from it (planner fusion); the output maybe 16-bit (stores_bf16_candidate) */
            CK(kt_cuda_act_bwd_colsum(c, kt_node_act(n->ip[0]), n->data, cdt(n), s[0]->data, cdt(s[0]), s[1]->data, cdt(s[1]), kt_node_rows(n),
                                      last(n), F(n->fuse_colsum), n->scratch));
        else if (s[0]->dtype != KT_F32) /* only the fused kernel reads a 16-bit gradient (stores_gemm_grad_16) */
            return kt_err_set(err, KT_ERR_UNSUPPORTED, "activation backward %s: a 16-bit incoming gradient without the fused bias gradient", n->name);
        else if (s[1]->dtype != KT_F32) CK(kt_cuda_gelu_bwd_v16(c, F(n), F(s[0]), s[1]->data, cdt(s[1]), numel));
        else CK(kt_cuda_act_bwd(c, kt_node_act(n->ip[0]), F(n), F(s[0]), F(s[1]), numel));
        break;
    case KT_OP_ADD: CK(kt_cuda_add(c, F(n), F(s[0]), F(s[1]), numel)); break;
    case KT_OP_MUL:
        if (n->fuse_next && n->fuse_next->op == KT_OP_ADD) { /* layer scale + the residual add (KT_FUSE_SCALE_ADD) */
            const kt_node *a = n->fuse_next, *other = a->src[0] == n ? a->src[1] : a->src[0];
            if (other->dtype != KT_F32) return kt_err_set(err, KT_ERR_UNSUPPORTED, "fused residual add: %s is not f32", other->name);
            CK(kt_cuda_scale_add(c, F(a), s[0]->data, cdt(s[0]), F(s[1]), F(other), kt_node_rows(n), last(n)));
        } else if (n->fuse_next || n->fuse_colsum) { /* layer scale's backward: data, bias (fuse_colsum) and gamma (fuse_next) gradients */
            const kt_node *a = n->fuse_next ? n->fuse_next->src[1] : NULL;
            CK(kt_cuda_layer_scale_bwd(c, n->data, cdt(n), F(s[0]), F(s[1]), a ? a->data : NULL, a ? cdt(a) : KT_CUDA_F32, kt_node_rows(n),
                                       last(n), n->fuse_colsum ? F(n->fuse_colsum) : NULL, n->fuse_next ? F(n->fuse_next) : NULL,
                                       n->scratch));
        } else if (s[0]->dtype != KT_F32) /* a linear output stored in 16 bits, times layer scale (stores_linear_out_16) */
            CK(kt_cuda_mul_bcast_a16(c, F(n), s[0]->data, cdt(s[0]), F(s[1]), kt_node_rows(n), last(n)));
        else if (kt_node_numel(s[1]) == numel) CK(kt_cuda_mul(c, F(n), F(s[0]), F(s[1]), numel));
        else CK(kt_cuda_mul_bcast(c, F(n), F(s[0]), F(s[1]), kt_node_rows(n), last(n)));
        break;
    case KT_OP_MUL_BCAST_BWD:
        if (s[1]->dtype != KT_F32)
            CK(kt_cuda_mul_bcast_bwd_a16(c, F(n), F(s[0]), s[1]->data, cdt(s[1]), kt_node_rows(s[0]), n->shape[0], n->scratch));
        else CK(kt_cuda_mul_bcast_bwd(c, F(n), F(s[0]), F(s[1]), kt_node_rows(s[0]), n->shape[0], n->scratch));
        break;
    case KT_OP_SCALE: CK(kt_cuda_scale(c, F(n), F(s[0]), n->fp[0], numel)); break;
    case KT_OP_BIAS: CK(kt_cuda_bias(c, F(n), F(s[0]), F(s[1]), kt_node_rows(n), last(n))); break;
    case KT_OP_REDUCE_ROWS: CK(kt_cuda_reduce_rows(c, F(n), F(s[0]), kt_node_rows(s[0]), n->shape[0], n->scratch)); break;
    case KT_OP_AVGPOOL2D: {
        kt_pool_shape ps = kt_node_pool_geom(n, s[0]);
        CK(kt_cuda_avgpool_fwd(c, &ps, F(s[0]), F(n)));
        break;
    }
    case KT_OP_AVGPOOL2D_BWD: {
        kt_pool_shape ps = kt_node_pool_geom(n, n);
        CK(kt_cuda_avgpool_bwd(c, &ps, F(s[0]), F(n)));
        break;
    }
    case KT_OP_MAXPOOL2D: {
        kt_pool_shape ps = kt_node_pool_geom(n, s[0]);
        CK(kt_cuda_maxpool_fwd(c, &ps, F(s[0]), F(n)));
        break;
    }
    case KT_OP_MAXPOOL2D_BWD: {
        kt_pool_shape ps = kt_node_pool_geom(n, n);
        CK(kt_cuda_maxpool_bwd(c, &ps, F(s[0]), F(s[1]), F(n)));
        break;
    }
    case KT_OP_GLOBAL_AVGPOOL:
        CK(kt_cuda_gap_fwd(c, F(s[0]), F(n), s[0]->shape[0], s[0]->shape[1] * s[0]->shape[2], s[0]->shape[3]));
        break;
    case KT_OP_GLOBAL_AVGPOOL_BWD: CK(kt_cuda_gap_bwd(c, F(s[0]), F(n), n->shape[0], n->shape[1] * n->shape[2], n->shape[3])); break;
    case KT_OP_DROPOUT:
    case KT_OP_DROPOUT_BWD:
    case KT_OP_DROP_PATH:
    case KT_OP_DROP_PATH_BWD: return dropout_compute(be, g, n, err);
    case KT_OP_SOFTMAX: CK(kt_cuda_softmax(c, F(n), F(s[0]), kt_node_rows(n), last(n))); break;
    case KT_OP_SOFTMAX_BWD: CK(kt_cuda_softmax_bwd(c, F(n), F(s[0]), F(s[1]), kt_node_rows(n), last(n))); break;
    case KT_OP_SOFTMAX_CE: {
        int64_t bad = -1;
        int32_t label = 0;
        CK(kt_cuda_softmax_ce(c, F(n), F(s[0]), (const int32_t *)s[1]->data, s[0]->shape[0], s[0]->shape[1], n->fp[0], n->scratch,
                              &bad, &label));
        if (bad >= 0)
            return kt_err_set(err, KT_ERR_ARG, "label %d of row %lld is outside the %lld classes of %s", label, (long long)bad,
                              (long long)s[0]->shape[1], s[1]->name);
        break;
    }
    case KT_OP_SOFTMAX_CE_BWD:
        CK(kt_cuda_softmax_ce_bwd(c, F(n), F(s[0]), F(s[1]), (const int32_t *)s[2]->data, n->shape[0], n->shape[1], n->fp[0]));
        break;
    case KT_OP_BCE_LOGITS: CK(kt_cuda_bce_logits(c, F(n), F(s[0]), F(s[1]), kt_node_numel(s[0]), n->scratch)); break;
    case KT_OP_BCE_LOGITS_BWD: CK(kt_cuda_bce_logits_bwd(c, F(n), F(s[0]), F(s[1]), F(s[2]), numel)); break;
    case KT_OP_SUM: CK(kt_cuda_sum(c, F(n), F(s[0]), kt_node_numel(s[0]), n->fp[0], n->scratch)); break;
    case KT_OP_SUM_BWD: CK(kt_cuda_fill_scaled(c, F(n), F(s[0]), numel, n->fp[0])); break;
    case KT_OP_PERMUTE:
    case KT_OP_CONCAT:
    case KT_OP_SLICE:
    case KT_OP_SLICE_BWD: return shape_compute(be, n, err);
    case KT_OP_COPY: /* or a saved input rounded to 16 bits in its own pass (stores_saved_input_16, no fused conv) */
        if (n->dtype != s[0]->dtype) CK(round16(c, cdt(n), n->data, F(s[0]), numel));
        else CK(kt_cuda_copy(c, n->data, s[0]->data, kt_node_bytes(n)));
        break;
    default: return kt_err_set(err, KT_ERR_UNSUPPORTED, "cuda backend: no kernel for op %s", kt_op_name(n->op));
    }
    return KT_OK;
}

/* ---- memory and sweeps ---- */

static kt_status cuda_alloc(kt_backend *be, size_t bytes, void **ptr, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    if (kt_cuda_ctx_alloc(CTX(be), ptr, bytes)) return kt_err_set(err, KT_ERR_NOMEM, "%s", kt_cuda_ctx_error(CTX(be)));
    return KT_OK;
}

static void cuda_release(kt_backend *be, void *ptr) {
    kt_cuda_ctx_bind(CTX(be)); /* as every entry point: cudaFree on the context's GPU */
    kt_cuda_ctx_free(CTX(be), ptr);
}

static kt_status cuda_copy(kt_backend *be, void *dst, const void *src, size_t bytes, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    CK(kt_cuda_ctx_copy(CTX(be), dst, src, bytes));
    return KT_OK;
}

static kt_status cuda_pin_host(kt_backend *be, void *p, size_t bytes, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    char msg[256];
    if (kt_cuda_host_register(p, bytes, msg, sizeof msg)) return kt_err_set(err, KT_ERR_CUDA, "%s (%.0f MiB)", msg, (double)bytes / 1048576.0);
    return KT_OK;
}

static void cuda_unpin_host(kt_backend *be, void *p) {
    kt_cuda_ctx_bind(CTX(be)); /* nothing to report: the memory stays pinned at worst */
    kt_cuda_host_unregister(p);
}

static kt_status cuda_memzero(kt_backend *be, void *dst, size_t bytes, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    CK(kt_cuda_ctx_memset(CTX(be), dst, 0, bytes));
    return KT_OK;
}

static kt_status cuda_adamw(kt_backend *be, float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                            float beta2, float eps, float wd, int64_t step, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    kt_adamw_hp hp = {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = wd, .step = step};
    CK(kt_cuda_adamw(CTX(be), p, g, m, v, n, &hp));
    return KT_OK;
}

static kt_status cuda_sumsq(kt_backend *be, const float *x, int64_t n, double *out, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    CK(kt_cuda_sumsq(CTX(be), x, n, out));
    return KT_OK;
}

static kt_status cuda_scale(kt_backend *be, float *x, int64_t n, float s, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    CK(kt_cuda_scale(CTX(be), x, x, s, n));
    return KT_OK;
}

static kt_status cuda_sync(kt_backend *be, kt_err *err) {
    CK(kt_cuda_ctx_bind(CTX(be)));
    CK(kt_cuda_ctx_sync(CTX(be)));
    return KT_OK;
}

static void cuda_destroy(kt_backend *be) {
    if (!be) return;
    kt_cuda_ctx_destroy(CTX(be));
    free(be);
}

/* GPU device's name and compute capability; nonzero when there is no such GPU */
static int gpu_cc(int device, char *name, size_t len, int *major, int *minor) {
    int sms = 0;
    size_t mem = 0;
    return kt_cuda_device_props(device, name, len, major, minor, &sms, &mem);
}

kt_status kt_backend_cuda_create(kt_backend **out, int device, kt_err *err) {
    *out = NULL;
    char msg[512];
    /* KT_CUDA_WITHOUT=a,b: plan without those fusions (bench/gpu: isolate one that fails on a card) */
    unsigned without = 0;
    kt_err ferr;
    if (kt_fusions_parse(getenv("KT_CUDA_WITHOUT"), &without, &ferr)) return kt_err_set(err, KT_ERR_ARG, "KT_CUDA_WITHOUT: %s", ferr.msg);
    /* a GPU below the floor is refused by what it is, before any code is loaded (no such GPU: the
     * context says so below) */
    char name[256];
    int ma = 0, mi = 0;
    if (device >= 0 && !gpu_cc(device, name, sizeof name, &ma, &mi) && !kt_cuda_cc_supported(ma, mi))
        return kt_err_set(err, KT_ERR_CUDA,
                          "cuda backend: GPU %d (%s, compute %d.%d) is older than the CUDA backend supports: it needs compute "
                          "capability %d.%d or newer (bf16 and TF32 tensor cores: A100, RTX 30xx and newer); --device cpu runs on the CPU",
                          device, name, ma, mi, KT_CUDA_MIN_CC_MAJOR, KT_CUDA_MIN_CC_MINOR);
    kt_cuda_ctx *c = NULL;
    if (kt_cuda_ctx_create(&c, device, msg, sizeof msg)) return kt_err_set(err, KT_ERR_CUDA, "cuda backend: %s", msg);
    kt_backend *be = calloc(1, sizeof *be);
    if (!be) {
        kt_cuda_ctx_destroy(c);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for the cuda backend");
    }
    *be = (kt_backend){.name = "cuda",
                       .device = KT_CUDA,
                       .fusions = KT_FUSE_LINEAR_GELU | KT_FUSE_LAYERNORM_BWD | KT_FUSE_ACT_BWD_COLSUM | KT_FUSE_OTHER_COLSUM |
                                  KT_FUSE_LAYERSCALE_BWD | KT_FUSE_SCALE_COLSUM | KT_FUSE_SCALE_ADD | KT_FUSE_DWCONV_BWD_ADD, /* the pairs its kernels compute in one pass */
                       .supports = cuda_supports,
                       .prepare = cuda_prepare,
                       .unsupported_why = cuda_unsupported_why,
                       .scratch_bytes = cuda_scratch,
                       .alloc = cuda_alloc,
                       .release = cuda_release,
                       .upload = cuda_copy,
                       .download = cuda_copy,
                       .memzero = cuda_memzero,
                       .pin_host = cuda_pin_host,
                       .unpin_host = cuda_unpin_host,
                       .compute = cuda_compute,
                       .adamw = cuda_adamw,
                       .sumsq = cuda_sumsq,
                       .scale = cuda_scale,
                       .sync = cuda_sync,
                       .destroy = cuda_destroy,
                       .ctx = c};
    be->fusions &= ~without;
    *out = be;
    return KT_OK;
}

kt_status kt_backend_cuda_set_tf32(kt_backend *be, int on, kt_err *err) {
    if (!kt_backend_is_cuda(be)) return kt_err_set(err, KT_ERR_ARG, "TF32 is a setting of the cuda backend, not of %s", be ? be->name : "NULL");
    kt_cuda_ctx_set_tf32(CTX(be), on);
    return KT_OK;
}

kt_status kt_backend_cuda_set_precision(kt_backend *be, const char *precision, kt_err *err) {
    if (!kt_backend_is_cuda(be))
        return kt_err_set(err, KT_ERR_ARG, "--precision %s is a setting of the cuda backend, not of %s", precision ? precision : "NULL",
                          be ? be->name : "NULL");
    int tf32 = 0;
    kt_cuda_dtype half = KT_CUDA_F32;
    /* bf16/fp16: cuDNN convolutions in TF32 (less error than 16-bit operands); the patch
     * convolutions leave cuDNN for 16-bit GEMMs (cuda_prepare), as autocast's */
    if (!strcmp(precision, "tf32")) tf32 = 1;
    else if (!strcmp(precision, "bf16")) half = KT_CUDA_BF16, tf32 = 1;
    else if (!strcmp(precision, "fp16")) half = KT_CUDA_F16, tf32 = 1;
    else if (strcmp(precision, "fp32"))
        return kt_err_set(err, KT_ERR_ARG, "unknown precision '%s' (fp32, tf32, bf16 or fp16)", precision);
    kt_cuda_ctx_set_tf32(CTX(be), tf32);
    kt_cuda_ctx_set_gemm_half(CTX(be), half);
    return KT_OK;
}

kt_status kt_backend_cuda_set_memory_limit(kt_backend *be, size_t mib, kt_err *err) {
    if (!kt_backend_is_cuda(be)) return kt_err_set(err, KT_ERR_ARG, "a GPU memory cap is a setting of the cuda backend, not of %s", be ? be->name : "NULL");
    if (mib > (SIZE_MAX >> 20)) return kt_err_set(err, KT_ERR_ARG, "GPU memory cap of %zu MiB is out of range", mib);
    kt_cuda_ctx_set_memory_limit(CTX(be), mib << 20);
    return KT_OK;
}

/* GPU 0 present, at or above the floor, and (as far as the build's list tells) running this build's
 * code: what "auto" picks; a GPU it passes over still says why under --device cuda */
int kt_backend_cuda_available(void) {
    if (!kt_cuda_available()) return 0;
    char name[256];
    int ma = 0, mi = 0;
    if (gpu_cc(0, name, sizeof name, &ma, &mi)) return 0;
    return kt_cuda_cc_supported(ma, mi) && kt_cuda_arch_fit(kt_cuda_build_archs(), ma, mi, NULL) != KT_CUDA_FIT_NONE;
}

#else /* a build without CUDA: the backend is absent, and says so */

kt_status kt_backend_cuda_create(kt_backend **out, int device, kt_err *err) {
    (void)device;
    *out = NULL;
    return kt_err_set(err, KT_ERR_UNSUPPORTED, "this build has no CUDA backend (configure with a CUDA toolkit and -DKT_CUDA=ON)");
}

kt_status kt_backend_cuda_set_tf32(kt_backend *be, int on, kt_err *err) {
    (void)be;
    (void)on;
    return kt_err_set(err, KT_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

kt_status kt_backend_cuda_set_precision(kt_backend *be, const char *precision, kt_err *err) {
    (void)be;
    (void)precision;
    return kt_err_set(err, KT_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

kt_status kt_backend_cuda_set_memory_limit(kt_backend *be, size_t mib, kt_err *err) {
    (void)be;
    (void)mib;
    return kt_err_set(err, KT_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

int kt_backend_cuda_available(void) { return 0; }

#endif

int kt_backend_is_cuda(const kt_backend *be) { return be && be->device == KT_CUDA && be->name && !strcmp(be->name, "cuda"); }
