/* Graph storage: node creation, leaves, error state, printing. */
#include "engine/graph.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/graph_internal.h"

static const char *op_names[KT_OP_COUNT] = {
    [KT_OP_NONE] = "none", [KT_OP_INPUT] = "input", [KT_OP_PARAM] = "param", [KT_OP_CONV2D] = "conv2d",
    [KT_OP_LINEAR] = "linear", [KT_OP_MATMUL] = "matmul", [KT_OP_LAYERNORM] = "layernorm",
    [KT_OP_BATCHNORM] = "batchnorm", [KT_OP_GELU] = "gelu", [KT_OP_RELU] = "relu", [KT_OP_SILU] = "silu",
    [KT_OP_SIGMOID] = "sigmoid", [KT_OP_ADD] = "add", [KT_OP_MUL] = "mul", [KT_OP_SCALE] = "scale",
    [KT_OP_BIAS] = "bias", [KT_OP_AVGPOOL2D] = "avgpool2d", [KT_OP_MAXPOOL2D] = "maxpool2d",
    [KT_OP_GLOBAL_AVGPOOL] = "global_avgpool", [KT_OP_DROPOUT] = "dropout", [KT_OP_DROP_PATH] = "drop_path",
    [KT_OP_SOFTMAX] = "softmax", [KT_OP_SOFTMAX_CE] = "softmax_ce", [KT_OP_BCE_LOGITS] = "bce_logits",
    [KT_OP_SUM] = "sum", [KT_OP_RESHAPE] = "reshape", [KT_OP_PERMUTE] = "permute", [KT_OP_CONCAT] = "concat",
    [KT_OP_SLICE] = "slice", [KT_OP_COPY] = "copy", [KT_OP_CONV2D_BWD_DATA] = "conv2d_bwd_data",
    [KT_OP_CONV2D_BWD_WEIGHT] = "conv2d_bwd_weight", [KT_OP_REDUCE_ROWS] = "reduce_rows",
    [KT_OP_LAYERNORM_BWD_X] = "layernorm_bwd_x", [KT_OP_LAYERNORM_BWD_WB] = "layernorm_bwd_wb",
    [KT_OP_BATCHNORM_BWD_X] = "batchnorm_bwd_x", [KT_OP_BATCHNORM_BWD_WB] = "batchnorm_bwd_wb",
    [KT_OP_ACT_BWD] = "act_bwd", [KT_OP_MUL_BCAST_BWD] = "mul_bcast_bwd", [KT_OP_AVGPOOL2D_BWD] = "avgpool2d_bwd",
    [KT_OP_MAXPOOL2D_BWD] = "maxpool2d_bwd", [KT_OP_GLOBAL_AVGPOOL_BWD] = "global_avgpool_bwd",
    [KT_OP_DROPOUT_BWD] = "dropout_bwd", [KT_OP_DROP_PATH_BWD] = "drop_path_bwd", [KT_OP_SOFTMAX_BWD] = "softmax_bwd",
    [KT_OP_SOFTMAX_CE_BWD] = "softmax_ce_bwd", [KT_OP_BCE_LOGITS_BWD] = "bce_logits_bwd", [KT_OP_SUM_BWD] = "sum_bwd",
    [KT_OP_SLICE_BWD] = "slice_bwd",
};

const char *kt_op_name(kt_op op) { return (op >= 0 && op < KT_OP_COUNT && op_names[op]) ? op_names[op] : "?"; }

kt_status kt_graph_init(kt_graph *g, kt_err *err) {
    memset(g, 0, sizeof *g);
    g->cap_nodes = 256;
    g->nodes = malloc(sizeof(kt_node *) * (size_t)g->cap_nodes);
    if (!g->nodes) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a graph");
    g->seed = 0x6b657261747261ull; /* "keratra": any fixed default; trainers set their own */
    g->training = 1;
    return KT_OK;
}

void kt_graph_free(kt_graph *g) {
    if (!g) return;
    kt_graph_release_memory(g);
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i]);
    free(g->nodes);
    free(g->params);
    memset(g, 0, sizeof *g);
}

kt_status kt_graph_status(const kt_graph *g, kt_err *err) {
    if (g->status && err) *err = g->err;
    return g->status;
}

kt_node *kt_graph_fail(kt_graph *g, kt_status code, const char *fmt, ...) {
    if (g->status) return NULL; /* keep the first error: later ones are consequences */
    g->status = code;
    g->err.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err.msg, sizeof g->err.msg, fmt, ap);
    va_end(ap);
    return NULL;
}

kt_node *kt_graph_new_node(kt_graph *g, kt_op op, int ndim, const int64_t *shape) {
    if (g->status) return NULL;
    if (g->planned) return kt_graph_fail(g, KT_ERR_STATE, "cannot add a %s node to a graph that is already planned", kt_op_name(op));
    if (ndim < 0 || ndim > KT_MAX_DIMS) return kt_graph_fail(g, KT_ERR_SHAPE, "%s: rank %d outside 0..%d", kt_op_name(op), ndim, KT_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) {
            char b[128];
            return kt_graph_fail(g, KT_ERR_SHAPE, "%s: output shape %s has an empty dimension", kt_op_name(op),
                                 kt_shape_str(ndim, shape, b, sizeof b));
        }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes * 2;
        kt_node **nn = realloc(g->nodes, sizeof(kt_node *) * (size_t)cap);
        if (!nn) return kt_graph_fail(g, KT_ERR_NOMEM, "no memory for graph nodes");
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    kt_node *n = calloc(1, sizeof *n);
    if (!n) return kt_graph_fail(g, KT_ERR_NOMEM, "no memory for a graph node");
    n->op = op;
    n->id = g->n_nodes;
    n->ndim = ndim;
    for (int i = 0; i < ndim; i++) n->shape[i] = shape[i];
    n->dtype = KT_F32;
    n->param_index = -1;
    n->grad_of = -1;
    n->last_use = -1;
    snprintf(n->name, sizeof n->name, "%s_%d", kt_op_name(op), n->id);
    g->nodes[g->n_nodes++] = n;
    return n;
}

void kt_node_add_src(kt_node *n, kt_node *s) {
    n->src[n->n_src++] = s;
    if (s->flags & KT_NODE_REQUIRES_GRAD) n->flags |= KT_NODE_REQUIRES_GRAD;
}

kt_node *kt_input(kt_graph *g, const char *name, kt_dtype dt, int ndim, const int64_t *shape) {
    kt_node *n = kt_graph_new_node(g, KT_OP_INPUT, ndim, shape);
    if (!n) return NULL;
    n->dtype = dt;
    if (name) snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

kt_node *kt_param_find(const kt_graph *g, const char *name) {
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i].node->name, name) == 0) return g->params[i].node;
    return NULL;
}

kt_node *kt_param(kt_graph *g, const char *name, int ndim, const int64_t *shape, uint32_t flags) {
    if (g->status) return NULL;
    if (!name || !*name) return kt_graph_fail(g, KT_ERR_ARG, "a parameter needs a name");
    if (strlen(name) >= KT_NAME_MAX) return kt_graph_fail(g, KT_ERR_ARG, "parameter name too long: %s", name);
    if (kt_param_find(g, name)) return kt_graph_fail(g, KT_ERR_ARG, "two parameters named %s", name);
    kt_node *n = kt_graph_new_node(g, KT_OP_PARAM, ndim, shape);
    if (!n) return NULL;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->flags |= flags;
    if (!(flags & KT_NODE_BUFFER)) n->flags |= KT_NODE_REQUIRES_GRAD;
    if (g->n_params == g->cap_params) {
        int cap = g->cap_params ? g->cap_params * 2 : 64;
        kt_param_entry *p = realloc(g->params, sizeof *p * (size_t)cap);
        if (!p) return kt_graph_fail(g, KT_ERR_NOMEM, "no memory for the parameter table");
        g->params = p;
        g->cap_params = cap;
    }
    kt_param_entry *e = &g->params[g->n_params];
    e->node = n;
    e->numel = kt_node_numel(n);
    if (flags & KT_NODE_BUFFER) {
        e->offset = g->n_buffer_elems;
        g->n_buffer_elems += e->numel;
    } else {
        e->offset = g->n_param_elems;
        g->n_param_elems += e->numel;
    }
    n->param_index = g->n_params++;
    return n;
}

void kt_keep(kt_node *n) {
    if (n) n->flags |= KT_NODE_KEEP;
}

void kt_node_set_name(kt_node *n, const char *fmt, ...) {
    if (!n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->name, sizeof n->name, fmt, ap);
    va_end(ap);
}

int64_t kt_node_numel(const kt_node *n) {
    int64_t k = 1;
    for (int i = 0; i < n->ndim; i++) k *= n->shape[i];
    return k;
}

size_t kt_node_bytes(const kt_node *n) { return (size_t)kt_node_numel(n) * kt_dtype_size(n->dtype); }

float *kt_node_f32(const kt_node *n) { return (float *)n->data; }

const char *kt_node_shape_str(const kt_node *n, char *buf, int len) { return kt_shape_str(n->ndim, n->shape, buf, len); }

void kt_graph_print(const kt_graph *g, FILE *f) {
    char b[128];
    for (int i = 0; i < g->n_nodes; i++) {
        const kt_node *n = g->nodes[i];
        fprintf(f, "%5d %-20s %-22s %-40s", n->id, kt_op_name(n->op), kt_node_shape_str(n, b, sizeof b), n->name);
        for (int s = 0; s < n->n_src; s++) fprintf(f, " %d", n->src[s]->id);
        fputc('\n', f);
        if (i + 1 == g->n_forward && g->n_forward < g->n_nodes) fprintf(f, "----- backward -----\n");
    }
}

void kt_graph_print_profile(const kt_graph *g, FILE *f) {
    int order[KT_OP_COUNT];
    double total = 0;
    for (int i = 0; i < KT_OP_COUNT; i++) {
        order[i] = i;
        total += g->prof_time[i];
    }
    for (int i = 0; i < KT_OP_COUNT; i++)
        for (int j = i + 1; j < KT_OP_COUNT; j++)
            if (g->prof_time[order[j]] > g->prof_time[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    fprintf(f, "%-22s %10s %7s %8s\n", "op", "ms", "share", "calls");
    for (int i = 0; i < KT_OP_COUNT; i++) {
        int o = order[i];
        if (!g->prof_calls[o]) continue;
        fprintf(f, "%-22s %10.2f %6.1f%% %8lld\n", kt_op_name((kt_op)o), g->prof_time[o] * 1e3,
                total > 0 ? 100 * g->prof_time[o] / total : 0, (long long)g->prof_calls[o]);
    }
    fprintf(f, "%-22s %10.2f\n", "total", total * 1e3);
}
