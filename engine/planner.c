/* Memory planning: one pass over the execution order assigns every activation (and every
 * kernel's scratch) an offset in one arena, reusing blocks whose lifetimes have ended; elementwise
 * ops write in place over an input that dies at that node. Parameters, their gradients and state
 * get stable contiguous buffers. After this, runs allocate nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/graph_internal.h"
#include "engine/node_geometry.h"

#define ALIGN 64
static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

typedef struct {
    size_t off, size;
} block;

typedef struct {
    block *free;
    int n_free, cap;
    size_t top;
} arena_sim;

static int sim_alloc(arena_sim *a, size_t size, size_t *off) {
    int best = -1;
    for (int i = 0; i < a->n_free; i++)
        if (a->free[i].size >= size && (best < 0 || a->free[i].size < a->free[best].size)) best = i;
    if (best >= 0) {
        *off = a->free[best].off;
        a->free[best].off += size;
        a->free[best].size -= size;
        if (a->free[best].size == 0) a->free[best] = a->free[--a->n_free];
        return 0;
    }
    /* grow: extend a free block that ends at the top, if any */
    for (int i = 0; i < a->n_free; i++)
        if (a->free[i].off + a->free[i].size == a->top) {
            *off = a->free[i].off;
            a->top = a->free[i].off + size;
            a->free[i] = a->free[--a->n_free];
            return 0;
        }
    *off = a->top;
    a->top += size;
    return 0;
}

static int sim_free(arena_sim *a, size_t off, size_t size) {
    /* merge with neighbours */
    for (int i = 0; i < a->n_free; i++) {
        if (a->free[i].off + a->free[i].size == off) {
            off = a->free[i].off;
            size += a->free[i].size;
            a->free[i--] = a->free[--a->n_free];
        } else if (off + size == a->free[i].off) {
            size += a->free[i].size;
            a->free[i--] = a->free[--a->n_free];
        }
    }
    if (a->n_free == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        block *b = realloc(a->free, sizeof *b * (size_t)cap);
        if (!b) return -1;
        a->free = b;
        a->cap = cap;
    }
    a->free[a->n_free++] = (block){off, size};
    return 0;
}

enum { HOME_ARENA, HOME_PARAM, HOME_STATE, HOME_GRAD, HOME_INPUTS, HOME_VIEW };

static int home_of(const kt_node *n) {
    if (n->op == KT_OP_PARAM) return (n->flags & KT_NODE_BUFFER) ? HOME_STATE : HOME_PARAM;
    if (n->view_of) return HOME_VIEW;
    if (n->grad_of >= 0) return HOME_GRAD;
    if (n->op == KT_OP_INPUT || (n->flags & KT_NODE_KEEP)) return HOME_INPUTS;
    return HOME_ARENA;
}

static const kt_node *base_of(const kt_node *n) { return n->view_of ? n->view_of : n; }

/* Ops whose kernel may write its output over source 0 (same size, elementwise access). */
static int inplace_ok(const kt_node *n) {
    switch (n->op) {
    case KT_OP_ADD:
    case KT_OP_SCALE:
    case KT_OP_BIAS:
    case KT_OP_GELU:
    case KT_OP_RELU:
    case KT_OP_SILU:
    case KT_OP_SIGMOID:
    case KT_OP_ACT_BWD:
    case KT_OP_DROPOUT:
    case KT_OP_DROPOUT_BWD:
    case KT_OP_DROP_PATH:
    case KT_OP_DROP_PATH_BWD:
        return 1;
    case KT_OP_MUL:
        return 1;
    default:
        return 0;
    }
}

static int only_forward_reader(const kt_graph *g, const kt_node *n, const kt_node *reader) {
    for (int j = n->id + 1; j < g->n_forward; j++)
        for (int k = 0; k < g->nodes[j]->n_src; k++)
            if (base_of(g->nodes[j]->src[k]) == n && g->nodes[j] != reader) return 0;
    return 1;
}

static int is_bcast_mul(const kt_node *n) { return n->op == KT_OP_MUL && n->src[1]->ndim == 1 && n->ndim > 1; }

int kt_node_read_only_by(const kt_graph *g, const kt_node *n, const kt_node *reader) {
    for (int j = n->id + 1; j < g->n_nodes; j++) {
        const kt_node *r = g->nodes[j];
        if (r->view_of == n) return 0;
        for (int k = 0; k < r->n_src; k++)
            if (r->src[k] == n && r != reader) return 0;
    }
    return 1;
}

/* an f32 ADD of two same-shaped tensors, one of them n */
static int adds(const kt_node *a, const kt_node *n) {
    return a->op == KT_OP_ADD && (a->src[0] == n) != (a->src[1] == n) && a->dtype == KT_F32 && a->src[0]->dtype == KT_F32 &&
           a->src[1]->dtype == KT_F32 && kt_node_numel(a->src[0]) == kt_node_numel(a->src[1]);
}

static int is_depthwise_bwd_data(const kt_node *n) {
    if (n->op != KT_OP_CONV2D_BWD_DATA) return 0;
    kt_conv_shape cs = kt_node_conv_geom(n);
    return kt_conv_is_depthwise(&cs);
}

/* Picks the fused pairs and column sums described at kt_node::fuse_next among those the backend's
 * kernels compute (kt_backend::fusions). Only f32 nodes: the fused kernels read and write f32
 * (a fused GELU may be stored in 16 bits: the CUDA backend's kernel writes either). */
static void choose_fusions(kt_graph *g, unsigned fusions) {
    for (int i = 0; i + 1 < g->n_nodes; i++) {
        kt_node *n = g->nodes[i], *nx = g->nodes[i + 1];
        int pair = 0;
        if ((fusions & KT_FUSE_LINEAR_GELU) && n->op == KT_OP_LINEAR && nx->op == KT_OP_GELU && nx->src[0] == n &&
            n->dtype == KT_F32 && !(n->flags & KT_NODE_KEEP) && only_forward_reader(g, n, nx))
            pair = 1;
        if ((fusions & KT_FUSE_LAYERNORM_BWD) && n->op == KT_OP_LAYERNORM_BWD_X && nx->op == KT_OP_LAYERNORM_BWD_WB &&
            nx->src[0] == n->src[0] && nx->src[1] == n->src[1] && n->dtype == KT_F32)
            pair = 1;
        if ((fusions & KT_FUSE_LAYERSCALE_BWD) && is_bcast_mul(n) && nx->op == KT_OP_MUL_BCAST_BWD && nx->src[0] == n->src[0] &&
            (n->flags & KT_NODE_BACKWARD) && n->dtype == KT_F32)
            pair = 1;
        if ((fusions & KT_FUSE_SCALE_ADD) && is_bcast_mul(n) && !(n->flags & KT_NODE_BACKWARD) && n->dtype == KT_F32 && adds(nx, n) &&
            kt_node_read_only_by(g, n, nx))
            pair = 1;
        if ((fusions & KT_FUSE_DWCONV_BWD_ADD) && is_depthwise_bwd_data(n) && n->dtype == KT_F32 && adds(nx, n) && kt_node_read_only_by(g, n, nx))
            pair = 1;
        if (pair && !nx->view_of && !(n->flags & KT_NODE_KEEP)) {
            n->fuse_next = nx;
            nx->fused = 1;
            i++; /* a node computes at most one follower */
        }
    }
    /* bias gradients: a REDUCE_ROWS straight into the gradient buffer, of an activation-gradient,
     * layer-scale or LayerNorm-data-gradient output, is summed while that output is written */
    for (int i = 0; i < g->n_nodes; i++) {
        kt_node *r = g->nodes[i];
        if (r->op != KT_OP_REDUCE_ROWS || r->grad_of < 0 || r->fused || r->dtype != KT_F32) continue;
        kt_node *p = r->src[0];
        int ok = p->op == KT_OP_ACT_BWD            ? (fusions & KT_FUSE_ACT_BWD_COLSUM) != 0
                 : p->op == KT_OP_LAYERNORM_BWD_X ? (fusions & KT_FUSE_OTHER_COLSUM) != 0
                                                  : (fusions & KT_FUSE_SCALE_COLSUM) && is_bcast_mul(p) && (p->flags & KT_NODE_BACKWARD);
        if (ok && p->dtype == KT_F32 && !p->fused && !p->fuse_colsum && !p->view_of && p->op != KT_OP_INPUT) {
            p->fuse_colsum = r;
            r->fused = 1;
        }
    }
}

void kt_graph_release_memory(kt_graph *g) {
    kt_backend *be = g->backend ? g->backend : kt_backend_cpu();
    if (!g->params_shared) {
        if (g->param_buf) be->release(be, g->param_buf);
        if (g->state_buf) be->release(be, g->state_buf);
    }
    if (g->grad_buf) be->release(be, g->grad_buf);
    if (g->arena) be->release(be, g->arena);
    if (g->inputs_buf) be->release(be, g->inputs_buf);
    g->param_buf = g->grad_buf = g->state_buf = NULL;
    g->arena = g->inputs_buf = NULL;
    g->planned = 0;
}

static kt_status alloc_zeroed(kt_backend *be, size_t bytes, void **p, const char *what, kt_err *err) {
    kt_status s = be->alloc(be, bytes, p, err);
    if (s) return kt_err_prefix(err, "planning %s: ", what);
    /* zeroing also faults the pages in now, not during the first step */
    return be->memzero(be, *p, bytes, err);
}

kt_status kt_graph_plan(kt_graph *g, kt_backend *be, const kt_graph *share, kt_err *err) {
    if (g->status) return kt_graph_status(g, err);
    if (g->planned) return kt_err_set(err, KT_ERR_STATE, "graph is already planned");
    if (!be) be = kt_backend_cpu();
    g->backend = be;
    if (!g->n_forward) g->n_forward = g->n_nodes;
    int N = g->n_nodes;
    if (N <= 0) return kt_err_set(err, KT_ERR_STATE, "graph has no nodes");

    for (int i = 0; i < N; i++) { /* undo a previous plan's precision choices */
        kt_node *n = g->nodes[i];
        if (n->flags & KT_NODE_STORED_BF16) n->dtype = KT_F32;
        if (n->flags & KT_NODE_SAVED_INPUT) n->view_of = n->src[0]->view_of ? n->src[0]->view_of : n->src[0];
        n->flags &= ~(uint32_t)(KT_NODE_AUTOCAST | KT_NODE_AUTOCAST_F16 | KT_NODE_STORED_BF16 | KT_NODE_OUT_SCRATCH | KT_NODE_PATCH_F32);
    }
    for (int i = 0; i < N; i++) {
        kt_node *n = g->nodes[i];
        if (!be->supports(be, n)) {
            char why[900] = "";
            if (be->unsupported_why) be->unsupported_why(be, n, why, sizeof why);
            return kt_err_set(err, KT_ERR_UNSUPPORTED, "backend %s has no kernel for %s (node %s)%s%s", be->name, kt_op_name(n->op), n->name,
                              why[0] ? ": " : "", why);
        }
        n->last_use = n->id;
        n->fuse_next = n->fuse_colsum = NULL;
        n->fused = 0;
    }
    if (be->fusions) choose_fusions(g, be->fusions);
    if (be->prepare) be->prepare(be, g); /* after the fusions: a fused pair may store differently */
    for (int i = 0; i < N; i++) {
        kt_node *n = g->nodes[i];
        n->scratch_bytes = (n->op == KT_OP_INPUT || n->op == KT_OP_PARAM || n->view_of || n->fused) ? 0 : be->scratch_bytes(be, n);
    }
    /* lifetimes: a node's memory lives until its last reader (readers of its views count) */
    for (int i = 0; i < N; i++) {
        kt_node *n = g->nodes[i];
        for (int k = 0; k < n->n_src; k++) {
            kt_node *b = (kt_node *)base_of(n->src[k]);
            if (b->last_use < i) b->last_use = i;
        }
        if (n->view_of && (n->flags & KT_NODE_KEEP)) ((kt_node *)n->view_of)->flags |= KT_NODE_KEEP;
    }

    /* offsets */
    size_t *off = calloc((size_t)(unsigned)N, sizeof(size_t));
    size_t *scr = calloc((size_t)(unsigned)N, sizeof(size_t));
    arena_sim a = {0};
    size_t inputs_top = 0, naive = 0, peak_top = 0;
    if (!off || !scr) {
        free(off);
        free(scr);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for planning");
    }
    for (int i = 0; i < N; i++) {
        kt_node *n = g->nodes[i];
        int home = home_of(n);
        naive += align_up(kt_node_bytes(n)) + align_up(n->scratch_bytes);
        if (home == HOME_INPUTS) {
            off[i] = inputs_top;
            inputs_top += align_up(kt_node_bytes(n));
        } else if (home == HOME_ARENA) {
            size_t sz = align_up(kt_node_bytes(n));
            kt_node *s0 = n->n_src ? n->src[0] : NULL;
            if (s0 && inplace_ok(n) && home_of(s0) == HOME_ARENA && s0->last_use == i && kt_node_bytes(s0) == kt_node_bytes(n) &&
                s0->dtype == n->dtype) {
                off[i] = off[s0->id]; /* take over the block: it is not freed at s0's death */
                s0->last_use = -1; /* block now belongs to n */
            } else {
                sim_alloc(&a, sz, &off[i]);
            }
        }
        if (n->scratch_bytes) sim_alloc(&a, align_up(n->scratch_bytes), &scr[i]);
        if (a.top > peak_top) {
            peak_top = a.top;
            g->peak_node = i;
        }
        /* frees after node i runs: its scratch, and arena blocks whose last reader is i. A node that
         * also computes its follower frees nothing until the follower's memory is placed, so the
         * follower's output (written by this node's kernel) never lands on memory still in use. */
        if (n->fuse_next) continue;
        int first = (i > 0 && g->nodes[i - 1]->fuse_next == n) ? i - 1 : i;
        for (int j = first; j <= i; j++) {
            kt_node *m = g->nodes[j];
            if (m->scratch_bytes) sim_free(&a, scr[j], align_up(m->scratch_bytes));
            for (int k = 0; k < m->n_src; k++) {
                kt_node *b = (kt_node *)base_of(m->src[k]);
                if (home_of(b) == HOME_ARENA && b->last_use == j) {
                    b->last_use = -2; /* freed once */
                    sim_free(&a, off[b->id], align_up(kt_node_bytes(b)));
                }
            }
            if (home_of(m) == HOME_ARENA && m->last_use == j) { /* nobody reads it: free right away */
                m->last_use = -2;
                sim_free(&a, off[j], align_up(kt_node_bytes(m)));
            }
        }
    }
    free(a.free);

    kt_status st = KT_OK;
    size_t pbytes = (size_t)g->n_param_elems * sizeof(float), sbytes = (size_t)g->n_buffer_elems * sizeof(float);
    int any_grad = 0;
    for (int i = 0; i < N; i++) any_grad |= g->nodes[i]->grad_of >= 0;
    g->arena_bytes = a.top;
    g->inputs_bytes = inputs_top;
    if (share) {
        g->params_shared = 1;
        for (int p = 0; p < g->n_params && !st; p++) {
            kt_node *pn = g->params[p].node, *other = kt_param_find(share, pn->name);
            char s1[128], s2[128];
            if (!other || !share->planned)
                st = kt_err_set(err, KT_ERR_ARG, "sharing parameters: %s is not in the other (planned) graph", pn->name);
            else if (other->ndim != pn->ndim || memcmp(other->shape, pn->shape, sizeof(int64_t) * (size_t)pn->ndim))
                st = kt_err_set(err, KT_ERR_SHAPE, "sharing parameters: %s is %s here but %s there", pn->name,
                                kt_node_shape_str(pn, s1, sizeof s1), kt_node_shape_str(other, s2, sizeof s2));
            else pn->data = other->data;
        }
    } else {
        if (!st && pbytes) st = alloc_zeroed(be, pbytes, (void **)&g->param_buf, "parameters", err);
        if (!st && sbytes) st = alloc_zeroed(be, sbytes, (void **)&g->state_buf, "state buffers", err);
    }
    if (!st && any_grad && pbytes) st = alloc_zeroed(be, pbytes, (void **)&g->grad_buf, "gradients", err);
    if (!st) st = alloc_zeroed(be, g->arena_bytes ? g->arena_bytes : ALIGN, &g->arena, "activations", err);
    if (!st) st = alloc_zeroed(be, g->inputs_bytes ? g->inputs_bytes : ALIGN, &g->inputs_buf, "inputs", err);
    if (st) {
        free(off);
        free(scr);
        kt_graph_release_memory(g);
        return st;
    }
    for (int i = 0; i < N; i++) {
        kt_node *n = g->nodes[i];
        switch (home_of(n)) {
        case HOME_PARAM:
            if (!share) n->data = g->param_buf + g->params[n->param_index].offset;
            break;
        case HOME_STATE:
            if (!share) n->data = g->state_buf + g->params[n->param_index].offset;
            break;
        case HOME_GRAD: n->data = g->grad_buf + g->params[n->grad_of].offset; break;
        case HOME_INPUTS: n->data = (char *)g->inputs_buf + off[i]; break;
        case HOME_VIEW: n->data = n->view_of->data; break;
        default: n->data = (char *)g->arena + off[i]; break;
        }
        n->scratch = n->scratch_bytes ? (char *)g->arena + scr[i] : NULL;
    }
    free(off);
    free(scr);
    g->planned = 1;
    if (g->loss_grad) {
        float one = 1.0f;
        st = be->upload(be, g->loss_grad->data, &one, sizeof one, err);
        if (st) return st;
    }
    g->naive_bytes = naive;
    return KT_OK;
}

void kt_graph_plan_stats(const kt_graph *g, kt_plan_stats *st) {
    memset(st, 0, sizeof *st);
    st->arena_bytes = g->arena_bytes;
    st->inputs_bytes = g->inputs_bytes;
    st->param_bytes = g->params_shared ? 0 : (size_t)g->n_param_elems * sizeof(float);
    st->grad_bytes = g->grad_buf ? (size_t)g->n_param_elems * sizeof(float) : 0;
    st->state_bytes = g->params_shared ? 0 : (size_t)g->n_buffer_elems * sizeof(float);
    st->naive_bytes = g->naive_bytes;
    st->n_nodes = g->n_nodes;
    st->peak_node = g->peak_node;
    for (int i = 0; i < g->n_nodes; i++) st->n_views += g->nodes[i]->view_of != NULL;
}

/* The activations alive where the arena peaks, summed by forward/backward, op and dtype: where the
 * memory goes (kt_gpu_bench model --plan-only). A block taken over in place counts
 * once per node, so the peak node's own in-place output may count twice: a breakdown, not a total. */
typedef struct {
    int backward;
    kt_op op;
    kt_dtype dt;
    size_t bytes;
    int count;
} peak_group;

static int cmp_group(const void *a, const void *b) {
    size_t x = ((const peak_group *)a)->bytes, y = ((const peak_group *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

void kt_graph_print_peak(const kt_graph *g, FILE *f, int top) {
    if (!g->planned) {
        fprintf(f, "(not planned)\n");
        return;
    }
    int N = g->n_nodes, p = g->peak_node;
    int *last = malloc(sizeof(int) * (size_t)(N > 0 ? N : 1));
    peak_group *grp = calloc((size_t)(N > 0 ? N : 1), sizeof *grp);
    if (!last || !grp) {
        free(last);
        free(grp);
        fprintf(f, "(no memory for the breakdown)\n");
        return;
    }
    for (int i = 0; i < N; i++) last[i] = i;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < g->nodes[i]->n_src; k++) {
            const kt_node *b = base_of(g->nodes[i]->src[k]);
            if (last[b->id] < i) last[b->id] = i;
        }
    int ng = 0;
    size_t total = 0;
    for (int i = 0; i <= p && i < N; i++) {
        const kt_node *n = g->nodes[i];
        if (home_of(n) != HOME_ARENA || last[i] < p) continue;
        int bw = i >= g->n_forward, j = 0;
        while (j < ng && !(grp[j].backward == bw && grp[j].op == n->op && grp[j].dt == n->dtype)) j++;
        if (j == ng) grp[ng++] = (peak_group){bw, n->op, n->dtype, 0, 0};
        grp[j].bytes += align_up(kt_node_bytes(n));
        grp[j].count++;
        total += align_up(kt_node_bytes(n));
    }
    qsort(grp, (size_t)ng, sizeof *grp, cmp_group);
    const kt_node *pn = g->nodes[p];
    fprintf(f, "arena %.0f MiB, peak at node %d of %d (%s, %s): %.0f MiB of activations alive there, %.0f MiB its scratch\n",
            g->arena_bytes / 1048576.0, p, N, pn->name, p < g->n_forward ? "forward" : "backward", total / 1048576.0,
            pn->scratch_bytes / 1048576.0);
    for (int j = 0; j < ng && j < top; j++)
        fprintf(f, "  %-8s %-22s %-4s %8.0f MiB  %4d tensors\n", grp[j].backward ? "backward" : "forward", kt_op_name(grp[j].op),
                kt_dtype_name(grp[j].dt), grp[j].bytes / 1048576.0, grp[j].count);
    free(last);
    free(grp);
}
