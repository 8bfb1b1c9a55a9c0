/* Reverse-mode autograd over the graph: walks forward nodes backwards, applies each op's rule
 * (which emits backward nodes), sums gradients that meet, and pins parameter gradients. */
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/graph_internal.h"

typedef struct bw_ctx {
    kt_graph *g;
    kt_node **grad;  /* (n_forward) accumulated gradient per forward node */
    kt_node **clone; /* (n_forward) recomputed copy per forward node */
} bw_ctx;

/* The value of forward node x as backward code should read it: x itself, or, for cheap nodes
 * marked KT_NODE_RECOMPUTE, a copy recomputed in backward so the forward output can die early. */
static kt_node *R(bw_ctx *c, kt_node *x) {
    if (!c->g->recompute || !(x->flags & KT_NODE_RECOMPUTE) || x->id >= c->g->n_forward) return x;
    if (c->clone[x->id]) return c->clone[x->id];
    /* the copy reads recomputed sources too, so no stored forward value of a chain of cheap
     * nodes (depthwise conv -> LayerNorm) is kept alive for backward */
    kt_node *srcs[KT_MAX_SRC];
    for (int i = 0; i < x->n_src; i++) srcs[i] = R(c, x->src[i]);
    kt_node *n = kt_node_make(c->g, x->op, x->ndim, x->shape, x->n_src, srcs);
    if (!n) return x;
    memcpy(n->ip, x->ip, sizeof n->ip);
    memcpy(n->fp, x->fp, sizeof n->fp);
    n->dtype = x->dtype;
    n->view_of = x->view_of;
    snprintf(n->name, sizeof n->name, "recompute.%.80s", x->name);
    c->clone[x->id] = n;
    return n;
}

static void acc(bw_ctx *c, kt_node *x, kt_node *dx) {
    if (!x || !dx || !(x->flags & KT_NODE_REQUIRES_GRAD)) return;
    kt_node **slot = &c->grad[x->id];
    *slot = *slot ? kt_add(c->g, *slot, dx) : dx;
}

static int rg(const kt_node *x) { return x && (x->flags & KT_NODE_REQUIRES_GRAD); }

static kt_node *mk(bw_ctx *c, kt_op op, const kt_node *like, int n_src, kt_node *const *src) {
    return kt_node_make(c->g, op, like->ndim, like->shape, n_src, src);
}

static kt_node *reduce_rows(bw_ctx *c, kt_node *dy) {
    int64_t C = dy->shape[dy->ndim - 1];
    return kt_node_make(c->g, KT_OP_REDUCE_ROWS, 1, &C, 1, &dy);
}

/* Row r (of 2) of a (2, C) node, as a (C) node: a slice made in the parameter's shape, so that it
 * is the parameter's gradient itself (written straight into grad_buf). A reshape view of a (1, C)
 * slice would be copied there again: two tiny kernels per LayerNorm parameter instead of one. */
static kt_node *row_of(bw_ctx *c, kt_node *wb, int r) {
    if (!wb) return NULL;
    int64_t C = wb->shape[1];
    kt_node *s = kt_node_make(c->g, KT_OP_SLICE, 1, &C, 1, &wb);
    if (s) {
        s->ip[0] = 0; /* axis */
        s->ip[1] = r; /* start */
        s->ip[2] = 1; /* length */
    }
    return s;
}

static void rule(bw_ctx *c, kt_node *n, kt_node *dy) {
    kt_graph *g = c->g;
    kt_node **s = n->src;
    switch (n->op) {
    case KT_OP_CONV2D:
        if (rg(s[0])) {
            kt_node *dx = mk(c, KT_OP_CONV2D_BWD_DATA, s[0], 2, (kt_node *[]){dy, s[1]});
            if (dx) {
                memcpy(dx->ip, n->ip, 5 * sizeof(int32_t));
                dx->ip[5] = (int32_t)s[0]->shape[1];
                dx->ip[6] = (int32_t)s[0]->shape[2];
                dx->ip[7] = (int32_t)s[0]->shape[3];
            }
            acc(c, s[0], dx);
        }
        if (rg(s[1])) {
            kt_node *x = R(c, s[0]); /* a recomputed input stays; else the saved view (kt_conv2d_ex) */
            if (x == s[0] && n->saved_input) x = n->saved_input;
            kt_node *dw = mk(c, KT_OP_CONV2D_BWD_WEIGHT, s[1], 2, (kt_node *[]){dy, x});
            if (dw) memcpy(dw->ip, n->ip, 5 * sizeof(int32_t));
            acc(c, s[1], dw);
        }
        if (n->n_src > 2 && rg(s[2])) acc(c, s[2], reduce_rows(c, dy));
        break;
    case KT_OP_LINEAR: {
        kt_node *x = s[0], *w = s[1];
        int64_t O = w->shape[0], K = w->shape[1], M = kt_node_numel(x) / K;
        kt_node *dy2 = dy->ndim == 2 ? dy : kt_reshape(g, dy, 2, (int64_t[]){M, O});
        if (rg(x)) {
            kt_node *dx = kt_matmul(g, dy2, w, 0, 0);
            if (x->ndim != 2) dx = kt_reshape(g, dx, x->ndim, x->shape);
            acc(c, x, dx);
        }
        if (rg(w)) {
            kt_node *xr = R(c, x);
            kt_node *x2 = xr->ndim == 2 ? xr : kt_reshape(g, xr, 2, (int64_t[]){M, K});
            acc(c, w, kt_matmul(g, dy2, x2, 1, 0));
        }
        if (n->n_src > 2 && rg(s[2])) acc(c, s[2], reduce_rows(c, dy));
        break;
    }
    case KT_OP_MATMUL: {
        int ta = n->ip[0], tb = n->ip[1];
        kt_node *a = R(c, s[0]), *b = R(c, s[1]);
        if (rg(s[0])) acc(c, s[0], ta ? kt_matmul(g, b, dy, tb, 1) : kt_matmul(g, dy, b, 0, !tb));
        if (rg(s[1])) acc(c, s[1], tb ? kt_matmul(g, dy, a, 1, ta) : kt_matmul(g, a, dy, !ta, 0));
        break;
    }
    case KT_OP_LAYERNORM: {
        kt_node *x = R(c, s[0]);
        if (rg(s[0])) {
            kt_node *srcs[3] = {dy, x, n->n_src > 1 ? s[1] : NULL};
            kt_node *dx = mk(c, KT_OP_LAYERNORM_BWD_X, s[0], n->n_src > 1 ? 3 : 2, srcs);
            if (dx) dx->fp[0] = n->fp[0];
            acc(c, s[0], dx);
        }
        if (n->n_src > 1 && (rg(s[1]) || rg(s[2]))) {
            int64_t shape[2] = {2, s[1]->shape[0]};
            kt_node *wb = kt_node_make(g, KT_OP_LAYERNORM_BWD_WB, 2, shape, 2, (kt_node *[]){dy, x});
            if (wb) wb->fp[0] = n->fp[0];
            if (rg(s[1])) acc(c, s[1], row_of(c, wb, 0));
            if (rg(s[2])) acc(c, s[2], row_of(c, wb, 1));
        }
        break;
    }
    case KT_OP_BATCHNORM: {
        kt_node *x = R(c, s[0]);
        if (rg(s[0])) {
            kt_node *dx = mk(c, KT_OP_BATCHNORM_BWD_X, s[0], 5, (kt_node *[]){dy, x, s[1], s[3], s[4]});
            if (dx) dx->fp[0] = n->fp[0];
            acc(c, s[0], dx);
        }
        if (rg(s[1]) || rg(s[2])) {
            int64_t shape[2] = {2, s[1]->shape[0]};
            kt_node *wb = kt_node_make(g, KT_OP_BATCHNORM_BWD_WB, 2, shape, 4, (kt_node *[]){dy, x, s[3], s[4]});
            if (wb) wb->fp[0] = n->fp[0];
            if (rg(s[1])) acc(c, s[1], row_of(c, wb, 0));
            if (rg(s[2])) acc(c, s[2], row_of(c, wb, 1));
        }
        break;
    }
    case KT_OP_GELU:
    case KT_OP_RELU:
    case KT_OP_SILU:
    case KT_OP_SIGMOID: {
        /* sigmoid's derivative is cheapest from its output, the others from their input */
        kt_node *v = n->op == KT_OP_SIGMOID ? R(c, n) : R(c, s[0]);
        kt_node *dx = mk(c, KT_OP_ACT_BWD, s[0], 2, (kt_node *[]){dy, v});
        if (dx) dx->ip[0] = n->op;
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_ADD:
        acc(c, s[0], dy);
        acc(c, s[1], dy);
        break;
    case KT_OP_MUL:
        if (rg(s[0])) acc(c, s[0], kt_mul(g, dy, R(c, s[1])));
        if (rg(s[1])) {
            if (s[1]->ndim == n->ndim && memcmp(s[1]->shape, n->shape, sizeof(int64_t) * (size_t)n->ndim) == 0)
                acc(c, s[1], kt_mul(g, dy, R(c, s[0])));
            else
                acc(c, s[1], kt_node_make(g, KT_OP_MUL_BCAST_BWD, 1, s[1]->shape, 2, (kt_node *[]){dy, R(c, s[0])}));
        }
        break;
    case KT_OP_SCALE:
        acc(c, s[0], kt_scale(g, dy, n->fp[0]));
        break;
    case KT_OP_BIAS:
        acc(c, s[0], dy);
        if (rg(s[1])) acc(c, s[1], reduce_rows(c, dy));
        break;
    case KT_OP_AVGPOOL2D: {
        kt_node *dx = mk(c, KT_OP_AVGPOOL2D_BWD, s[0], 1, &dy);
        if (dx) memcpy(dx->ip, n->ip, sizeof dx->ip);
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_MAXPOOL2D: {
        kt_node *dx = mk(c, KT_OP_MAXPOOL2D_BWD, s[0], 2, (kt_node *[]){dy, R(c, s[0])});
        if (dx) memcpy(dx->ip, n->ip, sizeof dx->ip);
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_GLOBAL_AVGPOOL:
        acc(c, s[0], mk(c, KT_OP_GLOBAL_AVGPOOL_BWD, s[0], 1, &dy));
        break;
    case KT_OP_DROPOUT:
    case KT_OP_DROP_PATH: {
        kt_node *dx = mk(c, n->op == KT_OP_DROPOUT ? KT_OP_DROPOUT_BWD : KT_OP_DROP_PATH_BWD, s[0], 1, &dy);
        if (dx) {
            dx->ip[0] = n->id; /* same mask key as the forward node */
            dx->fp[0] = n->fp[0];
        }
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_SOFTMAX:
        acc(c, s[0], mk(c, KT_OP_SOFTMAX_BWD, s[0], 2, (kt_node *[]){dy, R(c, n)}));
        break;
    case KT_OP_SOFTMAX_CE: {
        kt_node *dx = mk(c, KT_OP_SOFTMAX_CE_BWD, s[0], 3, (kt_node *[]){dy, R(c, s[0]), s[1]});
        if (dx) dx->fp[0] = n->fp[0];
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_BCE_LOGITS:
        if (rg(s[1])) {
            kt_graph_fail(g, KT_ERR_UNSUPPORTED, "bce_logits: gradients with respect to the targets (%s) are not supported", s[1]->name);
            return;
        }
        acc(c, s[0], mk(c, KT_OP_BCE_LOGITS_BWD, s[0], 3, (kt_node *[]){dy, R(c, s[0]), s[1]}));
        break;
    case KT_OP_SUM: {
        kt_node *dx = mk(c, KT_OP_SUM_BWD, s[0], 1, &dy);
        if (dx) dx->fp[0] = n->fp[0];
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_RESHAPE:
        acc(c, s[0], kt_reshape(g, dy, s[0]->ndim, s[0]->shape));
        break;
    case KT_OP_PERMUTE: {
        int inv[KT_MAX_DIMS];
        for (int i = 0; i < n->ndim; i++) inv[n->ip[i]] = i;
        acc(c, s[0], kt_permute(g, dy, inv));
        break;
    }
    case KT_OP_CONCAT: {
        int axis = n->ip[0];
        int64_t off = 0;
        for (int i = 0; i < n->n_src; i++) {
            if (rg(s[i])) acc(c, s[i], kt_slice(g, dy, axis, off, s[i]->shape[axis]));
            off += s[i]->shape[axis];
        }
        break;
    }
    case KT_OP_SLICE: {
        kt_node *dx = mk(c, KT_OP_SLICE_BWD, s[0], 1, &dy);
        if (dx) memcpy(dx->ip, n->ip, 3 * sizeof(int32_t));
        acc(c, s[0], dx);
        break;
    }
    case KT_OP_COPY:
        acc(c, s[0], dy);
        break;
    default:
        kt_graph_fail(g, KT_ERR_UNSUPPORTED, "no gradient rule for op %s (node %s)", kt_op_name(n->op), n->name);
    }
}

kt_status kt_graph_backward(kt_graph *g, kt_node *loss, kt_err *err) {
    if (g->status) return kt_graph_status(g, err);
    if (g->planned) return kt_err_set(err, KT_ERR_STATE, "kt_graph_backward must come before kt_graph_plan");
    if (g->n_forward) return kt_err_set(err, KT_ERR_STATE, "kt_graph_backward was already called on this graph");
    if (!loss || kt_node_numel(loss) != 1)
        return kt_err_set(err, KT_ERR_SHAPE, "backward needs a scalar loss of shape (1), got %s", loss ? loss->name : "NULL");
    if (!(loss->flags & KT_NODE_REQUIRES_GRAD))
        return kt_err_set(err, KT_ERR_ARG, "loss %s does not depend on any trainable parameter", loss->name);
    int nf = g->n_nodes;
    g->n_forward = nf;
    g->loss = loss;
    kt_keep(loss);
    bw_ctx c = {g, calloc((size_t)nf, sizeof(kt_node *)), calloc((size_t)nf, sizeof(kt_node *))};
    if (!c.grad || !c.clone) {
        free(c.grad);
        free(c.clone);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for autograd");
    }
    int64_t one = 1;
    g->loss_grad = kt_input(g, "loss_grad", KT_F32, 1, &one);
    kt_keep(g->loss_grad);
    c.grad[loss->id] = g->loss_grad;
    for (int i = nf - 1; i >= 0 && !g->status; i--) {
        kt_node *n = g->nodes[i];
        kt_node *dy = c.grad[i];
        if (!dy || !(n->flags & KT_NODE_REQUIRES_GRAD) || n->op == KT_OP_PARAM || n->op == KT_OP_INPUT) continue;
        rule(&c, n, dy);
    }
    /* Each trainable parameter's gradient lands in grad_buf; a node that cannot sit there alone
     * (a view, a leaf, or already another parameter's gradient) is copied first. */
    for (int p = 0; p < g->n_params && !g->status; p++) {
        kt_node *pn = g->params[p].node;
        if (pn->flags & KT_NODE_BUFFER) continue;
        kt_node *d = c.grad[pn->id];
        if (!d) continue;
        if (d->view_of || d->op == KT_OP_INPUT || d->grad_of >= 0 || d->id < nf || (d->flags & KT_NODE_KEEP)) d = kt_copy(g, d);
        if (!d) break;
        d->grad_of = p;
        kt_node_set_name(d, "grad.%.80s", pn->name);
        pn->grad = d;
    }
    for (int i = 0; i < nf && !g->status; i++) {
        kt_node *n = g->nodes[i];
        int wanted = (n->op == KT_OP_INPUT && (n->flags & KT_NODE_REQUIRES_GRAD)) || (n->flags & KT_NODE_KEEP_GRAD);
        if (wanted && c.grad[i]) {
            kt_node *d = c.grad[i];
            if (d->view_of || d->op == KT_OP_INPUT || d->grad_of >= 0) d = kt_copy(g, d);
            kt_keep(d);
            n->grad = d;
            if (n->flags & KT_NODE_KEEP_GRAD) kt_keep(n);
        }
    }
    for (int i = nf; i < g->n_nodes; i++) g->nodes[i]->flags |= KT_NODE_BACKWARD;
    free(c.grad);
    free(c.clone);
    return kt_graph_status(g, err);
}
