/* The executor: runs planned nodes in order on the graph's backend. No allocation happens here. */
#include "base/timer.h"
#include "engine/backend.h"
#include "engine/graph.h"

static kt_status run_range(kt_graph *g, int from, int to, kt_err *err) {
    if (g->status) return kt_graph_status(g, err);
    if (!g->planned) return kt_err_set(err, KT_ERR_STATE, "run before kt_graph_plan");
    kt_backend *be = g->backend;
    for (int i = from; i < to; i++) {
        kt_node *n = g->nodes[i];
        if (n->op == KT_OP_INPUT || n->op == KT_OP_PARAM || n->view_of || n->fused) continue;
        double t0 = g->profile ? kt_now() : 0;
        kt_status s = be->compute(be, g, n, err);
        if (s) return kt_err_prefix(err, "node %d (%s %s): ", n->id, kt_op_name(n->op), n->name);
        if (g->profile) {
            be->sync(be, err);
            g->prof_time[n->op] += kt_now() - t0;
            g->prof_calls[n->op]++;
        }
    }
    return be->sync(be, err);
}

kt_status kt_graph_forward(kt_graph *g, kt_err *err) { return run_range(g, 0, g->n_forward, err); }

kt_status kt_graph_backward_run(kt_graph *g, kt_err *err) {
    if (g->n_forward == g->n_nodes) return kt_err_set(err, KT_ERR_STATE, "graph has no backward part (call kt_graph_backward)");
    return run_range(g, g->n_forward, g->n_nodes, err);
}

kt_status kt_graph_run(kt_graph *g, kt_err *err) { return run_range(g, 0, g->n_nodes, err); }
