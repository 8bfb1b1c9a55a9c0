/* Forward op builders: validate shapes (errors name both shapes) and create nodes. */
#include <string.h>

#include "engine/graph.h"
#include "engine/graph_internal.h"

#define SHP(n, b) kt_node_shape_str((n), (b), sizeof(b))

kt_node *kt_node_make(kt_graph *g, kt_op op, int ndim, const int64_t *shape, int n_src, kt_node *const *src) {
    if (g->status) return NULL;
    for (int i = 0; i < n_src; i++)
        if (!src[i]) return kt_graph_fail(g, KT_ERR_ARG, "%s: input %d is missing (NULL)", kt_op_name(op), i);
    kt_node *n = kt_graph_new_node(g, op, ndim, shape);
    if (!n) return NULL;
    for (int i = 0; i < n_src; i++) kt_node_add_src(n, src[i]);
    return n;
}

static int same_shape(const kt_node *a, const kt_node *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

static int is_vec(const kt_node *v, int64_t c) { return v->ndim == 1 && v->shape[0] == c; }

/* Returns nonzero (after recording an error) when any required input is NULL. */
static int missing(kt_graph *g, const char *op, int n, kt_node *const *xs) {
    if (g->status) return 1;
    for (int i = 0; i < n; i++)
        if (!xs[i]) {
            kt_graph_fail(g, KT_ERR_ARG, "%s: input %d is missing (NULL)", op, i);
            return 1;
        }
    return 0;
}

kt_node *kt_conv2d(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, int stride, int pad, int groups) {
    return kt_conv2d_ex(g, x, w, b, stride, stride, pad, pad, groups);
}

kt_node *kt_conv2d_ex(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, int sh, int sw, int ph, int pw, int groups) {
    char s1[128], s2[128];
    if (missing(g, "conv2d", 2, (kt_node *[]){x, w})) return NULL;
    if (x->ndim != 4) return kt_graph_fail(g, KT_ERR_SHAPE, "conv2d: input %s must be (N, H, W, C)", SHP(x, s1));
    if (w->ndim != 4) return kt_graph_fail(g, KT_ERR_SHAPE, "conv2d: weight %s must be (Cout, Cin/groups, kh, kw)", SHP(w, s1));
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0 || groups < 1)
        return kt_graph_fail(g, KT_ERR_ARG, "conv2d: stride %dx%d, padding %dx%d, groups %d out of range", sh, sw, ph, pw, groups);
    int64_t N = x->shape[0], H = x->shape[1], W = x->shape[2], Ci = x->shape[3];
    int64_t Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    if (Ci % groups || Co % groups || w->shape[1] != Ci / groups)
        return kt_graph_fail(g, KT_ERR_SHAPE, "conv2d: input %s and weight %s do not fit with groups=%d (need weight dim 1 = %lld)",
                             SHP(x, s1), SHP(w, s2), groups, (long long)(Ci / groups));
    if (b && !is_vec(b, Co))
        return kt_graph_fail(g, KT_ERR_SHAPE, "conv2d: bias %s must be (%lld) for weight %s", SHP(b, s1), (long long)Co, SHP(w, s2));
    int64_t Ho = (H + 2 * ph - kh) / sh + 1, Wo = (W + 2 * pw - kw) / sw + 1;
    if (H + 2 * ph < kh || W + 2 * pw < kw || Ho < 1 || Wo < 1)
        return kt_graph_fail(g, KT_ERR_SHAPE, "conv2d: input %s is smaller than kernel %lldx%lld with padding %dx%d", SHP(x, s1),
                             (long long)kh, (long long)kw, ph, pw);
    int64_t shape[4] = {N, Ho, Wo, Co};
    kt_node *srcs[3] = {x, w, b};
    kt_node *n = kt_node_make(g, KT_OP_CONV2D, 4, shape, b ? 3 : 2, srcs);
    if (!n) return NULL;
    n->ip[0] = sh;
    n->ip[1] = sw;
    n->ip[2] = ph;
    n->ip[3] = pw;
    n->ip[4] = groups;
    /* A depthwise weight gradient reads the input in backward, often the only reason the residual
     * stream stays alive (in f32) until then; it reads this node instead, a view of x that a backend
     * may store as a 16-bit copy (cuda_prepare under autocast), as autocast saves one. */
    if (groups > 1 && groups == Ci && Co == Ci && (w->flags & KT_NODE_REQUIRES_GRAD)) {
        kt_node *sv = kt_node_make(g, KT_OP_COPY, 4, x->shape, 1, &x);
        if (!sv) return NULL;
        sv->flags = (sv->flags & ~(uint32_t)KT_NODE_REQUIRES_GRAD) | KT_NODE_SAVED_INPUT; /* backward only reads it */
        sv->dtype = x->dtype;
        sv->view_of = x->view_of ? x->view_of : x;
        kt_node_set_name(sv, "saved_input_%d", n->id);
        n->saved_input = sv;
    }
    return n;
}

kt_node *kt_linear(kt_graph *g, kt_node *x, kt_node *w, kt_node *b) {
    char s1[128], s2[128];
    if (missing(g, "linear", 2, (kt_node *[]){x, w})) return NULL;
    if (w->ndim != 2) return kt_graph_fail(g, KT_ERR_SHAPE, "linear: weight %s must be (out, in)", SHP(w, s1));
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return kt_graph_fail(g, KT_ERR_SHAPE, "linear: input %s last dim does not match weight %s in-features %lld", SHP(x, s1),
                             SHP(w, s2), (long long)w->shape[1]);
    if (b && !is_vec(b, w->shape[0]))
        return kt_graph_fail(g, KT_ERR_SHAPE, "linear: bias %s must be (%lld) for weight %s", SHP(b, s1), (long long)w->shape[0],
                             SHP(w, s2));
    int64_t shape[KT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    kt_node *srcs[3] = {x, w, b};
    return kt_node_make(g, KT_OP_LINEAR, x->ndim, shape, b ? 3 : 2, srcs);
}

kt_node *kt_matmul(kt_graph *g, kt_node *a, kt_node *b, int ta, int tb) {
    char s1[128], s2[128];
    if (missing(g, "matmul", 2, (kt_node *[]){a, b})) return NULL;
    if (a->ndim != b->ndim || (a->ndim != 2 && a->ndim != 3))
        return kt_graph_fail(g, KT_ERR_SHAPE, "matmul: operands %s and %s must both be 2-D or both 3-D", SHP(a, s1), SHP(b, s2));
    int o = a->ndim - 2;
    if (o && a->shape[0] != b->shape[0])
        return kt_graph_fail(g, KT_ERR_SHAPE, "matmul: batch sizes of %s and %s differ", SHP(a, s1), SHP(b, s2));
    int64_t M = ta ? a->shape[o + 1] : a->shape[o], K = ta ? a->shape[o] : a->shape[o + 1];
    int64_t Kb = tb ? b->shape[o + 1] : b->shape[o], N = tb ? b->shape[o] : b->shape[o + 1];
    if (K != Kb)
        return kt_graph_fail(g, KT_ERR_SHAPE, "matmul: inner dimensions of %s%s and %s%s differ (%lld vs %lld)", SHP(a, s1),
                             ta ? "^T" : "", SHP(b, s2), tb ? "^T" : "", (long long)K, (long long)Kb);
    int64_t shape[3] = {a->shape[0], M, N};
    if (!o) {
        shape[0] = M;
        shape[1] = N;
    }
    kt_node *n = kt_node_make(g, KT_OP_MATMUL, a->ndim, shape, 2, (kt_node *[]){a, b});
    if (!n) return NULL;
    n->ip[0] = ta;
    n->ip[1] = tb;
    return n;
}

kt_node *kt_layernorm(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, float eps) {
    char s1[128], s2[128];
    if (missing(g, "layernorm", 1, &x)) return NULL;
    int64_t C = x->shape[x->ndim - 1];
    if ((w == NULL) != (b == NULL)) return kt_graph_fail(g, KT_ERR_ARG, "layernorm: give both weight and bias, or neither");
    if (w && (!is_vec(w, C) || !is_vec(b, C)))
        return kt_graph_fail(g, KT_ERR_SHAPE, "layernorm: weight %s / bias %s must be (%lld) for input %s", SHP(w, s1), SHP(b, s2),
                             (long long)C, SHP(x, s2));
    if (!(eps > 0)) return kt_graph_fail(g, KT_ERR_ARG, "layernorm: eps must be > 0");
    kt_node *srcs[3] = {x, w, b};
    kt_node *n = kt_node_make(g, KT_OP_LAYERNORM, x->ndim, x->shape, w ? 3 : 1, srcs);
    if (n) n->fp[0] = eps;
    return n;
}

kt_node *kt_batchnorm(kt_graph *g, kt_node *x, kt_node *w, kt_node *b, kt_node *rm, kt_node *rv, float eps, float momentum) {
    char s1[128], s2[128];
    if (missing(g, "batchnorm", 5, (kt_node *[]){x, w, b, rm, rv})) return NULL;
    int64_t C = x->shape[x->ndim - 1];
    kt_node *v[4] = {w, b, rm, rv};
    for (int i = 0; i < 4; i++)
        if (!is_vec(v[i], C))
            return kt_graph_fail(g, KT_ERR_SHAPE, "batchnorm: %s %s must be (%lld) for input %s", v[i]->name, SHP(v[i], s1),
                                 (long long)C, SHP(x, s2));
    if (!(rm->flags & KT_NODE_BUFFER) || !(rv->flags & KT_NODE_BUFFER))
        return kt_graph_fail(g, KT_ERR_ARG, "batchnorm: running statistics must be state buffers (kt_param with KT_NODE_BUFFER)");
    kt_node *n = kt_node_make(g, KT_OP_BATCHNORM, x->ndim, x->shape, 5, (kt_node *[]){x, w, b, rm, rv});
    if (n) {
        n->fp[0] = eps;
        n->fp[1] = momentum;
    }
    return n;
}

static kt_node *unary(kt_graph *g, kt_op op, kt_node *x) {
    if (missing(g, kt_op_name(op), 1, &x)) return NULL;
    return kt_node_make(g, op, x->ndim, x->shape, 1, &x);
}

kt_node *kt_gelu(kt_graph *g, kt_node *x) { return unary(g, KT_OP_GELU, x); }
kt_node *kt_relu(kt_graph *g, kt_node *x) { return unary(g, KT_OP_RELU, x); }
kt_node *kt_silu(kt_graph *g, kt_node *x) { return unary(g, KT_OP_SILU, x); }
kt_node *kt_sigmoid(kt_graph *g, kt_node *x) { return unary(g, KT_OP_SIGMOID, x); }
kt_node *kt_softmax(kt_graph *g, kt_node *x) { return unary(g, KT_OP_SOFTMAX, x); }
kt_node *kt_copy(kt_graph *g, kt_node *x) { return unary(g, KT_OP_COPY, x); }

kt_node *kt_add(kt_graph *g, kt_node *a, kt_node *b) {
    char s1[128], s2[128];
    if (missing(g, "add", 2, (kt_node *[]){a, b})) return NULL;
    if (!same_shape(a, b)) return kt_graph_fail(g, KT_ERR_SHAPE, "add: shapes %s and %s differ", SHP(a, s1), SHP(b, s2));
    return kt_node_make(g, KT_OP_ADD, a->ndim, a->shape, 2, (kt_node *[]){a, b});
}

kt_node *kt_mul(kt_graph *g, kt_node *a, kt_node *b) {
    char s1[128], s2[128];
    if (missing(g, "mul", 2, (kt_node *[]){a, b})) return NULL;
    if (!same_shape(a, b) && !is_vec(b, a->shape[a->ndim - 1]))
        return kt_graph_fail(g, KT_ERR_SHAPE, "mul: %s and %s must have one shape, or the second be (%lld) for the last axis",
                             SHP(a, s1), SHP(b, s2), (long long)a->shape[a->ndim - 1]);
    return kt_node_make(g, KT_OP_MUL, a->ndim, a->shape, 2, (kt_node *[]){a, b});
}

kt_node *kt_scale(kt_graph *g, kt_node *x, float s) {
    kt_node *n = unary(g, KT_OP_SCALE, x);
    if (n) n->fp[0] = s;
    return n;
}

kt_node *kt_bias(kt_graph *g, kt_node *x, kt_node *b) {
    char s1[128], s2[128];
    if (missing(g, "bias", 2, (kt_node *[]){x, b})) return NULL;
    if (!is_vec(b, x->shape[x->ndim - 1]))
        return kt_graph_fail(g, KT_ERR_SHAPE, "bias: %s must be (%lld) for input %s", SHP(b, s1), (long long)x->shape[x->ndim - 1],
                             SHP(x, s2));
    return kt_node_make(g, KT_OP_BIAS, x->ndim, x->shape, 2, (kt_node *[]){x, b});
}

static kt_node *pool(kt_graph *g, kt_op op, kt_node *x, int k, int s, int p) {
    char s1[128];
    if (missing(g, kt_op_name(op), 1, &x)) return NULL;
    if (x->ndim != 4) return kt_graph_fail(g, KT_ERR_SHAPE, "%s: input %s must be (N, H, W, C)", kt_op_name(op), SHP(x, s1));
    if (k < 1 || s < 1 || p < 0 || p > k / 2)
        return kt_graph_fail(g, KT_ERR_ARG, "%s: kernel %d, stride %d, padding %d invalid (padding at most kernel/2)", kt_op_name(op), k,
                             s, p);
    int64_t Ho = (x->shape[1] + 2 * p - k) / s + 1, Wo = (x->shape[2] + 2 * p - k) / s + 1;
    if (x->shape[1] + 2 * p < k || x->shape[2] + 2 * p < k)
        return kt_graph_fail(g, KT_ERR_SHAPE, "%s: input %s smaller than kernel %d", kt_op_name(op), SHP(x, s1), k);
    int64_t shape[4] = {x->shape[0], Ho, Wo, x->shape[3]};
    kt_node *n = kt_node_make(g, op, 4, shape, 1, &x);
    if (!n) return NULL;
    n->ip[0] = n->ip[1] = k;
    n->ip[2] = n->ip[3] = s;
    n->ip[4] = n->ip[5] = p;
    return n;
}

kt_node *kt_avgpool2d(kt_graph *g, kt_node *x, int k, int stride, int pad, int count_include_pad) {
    kt_node *n = pool(g, KT_OP_AVGPOOL2D, x, k, stride, pad);
    if (n) n->ip[6] = count_include_pad;
    return n;
}

kt_node *kt_maxpool2d(kt_graph *g, kt_node *x, int k, int stride, int pad) { return pool(g, KT_OP_MAXPOOL2D, x, k, stride, pad); }

kt_node *kt_global_avgpool(kt_graph *g, kt_node *x) {
    char s1[128];
    if (missing(g, "global_avgpool", 1, &x)) return NULL;
    if (x->ndim != 4) return kt_graph_fail(g, KT_ERR_SHAPE, "global_avgpool: input %s must be (N, H, W, C)", SHP(x, s1));
    int64_t shape[2] = {x->shape[0], x->shape[3]};
    return kt_node_make(g, KT_OP_GLOBAL_AVGPOOL, 2, shape, 1, &x);
}

kt_node *kt_dropout(kt_graph *g, kt_node *x, float p) {
    if (!(p >= 0 && p < 1)) return kt_graph_fail(g, KT_ERR_ARG, "dropout: p=%g must be in [0, 1)", (double)p);
    kt_node *n = unary(g, KT_OP_DROPOUT, x);
    if (n) n->fp[0] = p;
    return n;
}

kt_node *kt_drop_path(kt_graph *g, kt_node *x, float p) {
    if (!(p >= 0 && p < 1)) return kt_graph_fail(g, KT_ERR_ARG, "drop_path: p=%g must be in [0, 1)", (double)p);
    kt_node *n = unary(g, KT_OP_DROP_PATH, x);
    if (n) n->fp[0] = p;
    return n;
}

kt_node *kt_softmax_ce(kt_graph *g, kt_node *logits, kt_node *labels, float smoothing) {
    char s1[128], s2[128];
    if (missing(g, "softmax_ce", 2, (kt_node *[]){logits, labels})) return NULL;
    if (logits->ndim != 2) return kt_graph_fail(g, KT_ERR_SHAPE, "softmax_ce: logits %s must be (N, classes)", SHP(logits, s1));
    if (labels->ndim != 1 || labels->shape[0] != logits->shape[0] || labels->dtype != KT_I32)
        return kt_graph_fail(g, KT_ERR_SHAPE, "softmax_ce: labels %s (%s) must be i32 (%lld) for logits %s", SHP(labels, s1),
                             kt_dtype_name(labels->dtype), (long long)logits->shape[0], SHP(logits, s2));
    if (!(smoothing >= 0 && smoothing < 1))
        return kt_graph_fail(g, KT_ERR_ARG, "softmax_ce: label smoothing %g must be in [0, 1)", (double)smoothing);
    int64_t one = 1;
    kt_node *n = kt_node_make(g, KT_OP_SOFTMAX_CE, 1, &one, 2, (kt_node *[]){logits, labels});
    if (n) n->fp[0] = smoothing;
    return n;
}

kt_node *kt_bce_logits(kt_graph *g, kt_node *logits, kt_node *targets) {
    char s1[128], s2[128];
    if (missing(g, "bce_logits", 2, (kt_node *[]){logits, targets})) return NULL;
    if (!same_shape(logits, targets) || targets->dtype != KT_F32)
        return kt_graph_fail(g, KT_ERR_SHAPE, "bce_logits: targets %s must be f32 with the shape of logits %s", SHP(targets, s1),
                             SHP(logits, s2));
    int64_t one = 1;
    return kt_node_make(g, KT_OP_BCE_LOGITS, 1, &one, 2, (kt_node *[]){logits, targets});
}

kt_node *kt_sum(kt_graph *g, kt_node *x, float scale) {
    if (missing(g, "sum", 1, &x)) return NULL;
    int64_t one = 1;
    kt_node *n = kt_node_make(g, KT_OP_SUM, 1, &one, 1, &x);
    if (n) n->fp[0] = scale;
    return n;
}

kt_node *kt_reshape(kt_graph *g, kt_node *x, int ndim, const int64_t *shape) {
    char s1[128], s2[128];
    if (missing(g, "reshape", 1, &x)) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (ndim < 1 || ndim > KT_MAX_DIMS || n != kt_node_numel(x))
        return kt_graph_fail(g, KT_ERR_SHAPE, "reshape: cannot view %s as %s", SHP(x, s1), kt_shape_str(ndim, shape, s2, sizeof s2));
    kt_node *r = kt_node_make(g, KT_OP_RESHAPE, ndim, shape, 1, &x);
    if (!r) return NULL;
    r->dtype = x->dtype;
    r->view_of = x->view_of ? x->view_of : x;
    return r;
}

kt_node *kt_permute(kt_graph *g, kt_node *x, const int *perm) {
    char s1[128];
    if (missing(g, "permute", 1, &x)) return NULL;
    int seen[KT_MAX_DIMS] = {0};
    int64_t shape[KT_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]])
            return kt_graph_fail(g, KT_ERR_ARG, "permute: not a permutation of the %d axes of %s", x->ndim, SHP(x, s1));
        seen[perm[i]] = 1;
        shape[i] = x->shape[perm[i]];
    }
    kt_node *n = kt_node_make(g, KT_OP_PERMUTE, x->ndim, shape, 1, &x);
    if (n)
        for (int i = 0; i < x->ndim; i++) n->ip[i] = perm[i];
    return n;
}

kt_node *kt_concat(kt_graph *g, kt_node *const *xs, int n, int axis) {
    char s1[128], s2[128];
    if (n < 1 || n > KT_MAX_SRC) return kt_graph_fail(g, KT_ERR_ARG, "concat: %d inputs (1..%d allowed)", n, KT_MAX_SRC);
    if (missing(g, "concat", n, xs)) return NULL;
    if (axis < 0 || axis >= xs[0]->ndim) return kt_graph_fail(g, KT_ERR_ARG, "concat: axis %d out of range for %s", axis, SHP(xs[0], s1));
    int64_t shape[KT_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        int ok = xs[i]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++)
            if (d != axis && xs[i]->shape[d] != xs[0]->shape[d]) ok = 0;
        if (!ok)
            return kt_graph_fail(g, KT_ERR_SHAPE, "concat: %s and %s differ outside axis %d", SHP(xs[0], s1), SHP(xs[i], s2), axis);
        shape[axis] += xs[i]->shape[axis];
    }
    kt_node *r = kt_node_make(g, KT_OP_CONCAT, xs[0]->ndim, shape, n, xs);
    if (r) r->ip[0] = axis;
    return r;
}

kt_node *kt_slice(kt_graph *g, kt_node *x, int axis, int64_t start, int64_t len) {
    char s1[128];
    if (missing(g, "slice", 1, &x)) return NULL;
    if (axis < 0 || axis >= x->ndim || start < 0 || len < 1 || start + len > x->shape[axis])
        return kt_graph_fail(g, KT_ERR_SHAPE, "slice: [%lld, %lld) on axis %d outside %s", (long long)start, (long long)(start + len),
                             axis, SHP(x, s1));
    int64_t shape[KT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    kt_node *n = kt_node_make(g, KT_OP_SLICE, x->ndim, shape, 1, &x);
    if (n) {
        n->ip[0] = axis;
        n->ip[1] = (int32_t)start;
        n->ip[2] = (int32_t)len;
    }
    return n;
}
