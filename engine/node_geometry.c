/* Node geometry shared by the CPU and CUDA backends. */
#include "engine/node_geometry.h"

int64_t kt_node_rows(const kt_node *n) { return kt_node_numel(n) / n->shape[n->ndim - 1]; }

static kt_conv_shape conv_shape_of(const kt_node *n, const kt_node *x, const kt_node *w) {
    kt_conv_shape s = {.N = x->shape[0], .H = x->shape[1], .W = x->shape[2], .Ci = x->shape[3], .Co = w->shape[0],
                       .kh = w->shape[2], .kw = w->shape[3], .sh = n->ip[0], .sw = n->ip[1], .ph = n->ip[2],
                       .pw = n->ip[3], .groups = n->ip[4]};
    kt_conv_shape_finish(&s);
    return s;
}

kt_conv_shape kt_node_conv_geom(const kt_node *n) {
    switch (n->op) {
    case KT_OP_CONV2D: return conv_shape_of(n, n->src[0], n->src[1]);
    case KT_OP_CONV2D_BWD_DATA: return conv_shape_of(n, n, n->src[1]);
    default: return conv_shape_of(n, n->src[1], n);
    }
}

kt_pool_shape kt_node_pool_geom(const kt_node *n, const kt_node *x) {
    kt_pool_shape s = {.N = x->shape[0], .H = x->shape[1], .W = x->shape[2], .C = x->shape[3], .kh = n->ip[0],
                       .kw = n->ip[1], .sh = n->ip[2], .sw = n->ip[3], .ph = n->ip[4], .pw = n->ip[5],
                       .count_include_pad = n->ip[6]};
    s.Ho = (s.H + 2 * s.ph - s.kh) / s.sh + 1;
    s.Wo = (s.W + 2 * s.pw - s.kw) / s.sw + 1;
    return s;
}

kt_act kt_node_act(int op) {
    switch (op) {
    case KT_OP_RELU: return KT_ACT_RELU;
    case KT_OP_SILU: return KT_ACT_SILU;
    case KT_OP_SIGMOID: return KT_ACT_SIGMOID;
    default: return KT_ACT_GELU;
    }
}

void kt_node_around_axis(const kt_node *n, int axis, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= n->shape[i];
    for (int i = axis + 1; i < n->ndim; i++) *inner *= n->shape[i];
}
