/* Engine-private helpers shared by the graph builders, autograd, planner and executor. */
#ifndef KT_GRAPH_INTERNAL_H
#define KT_GRAPH_INTERNAL_H

#include "engine/graph.h"

kt_node *kt_graph_fail(kt_graph *g, kt_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
kt_node *kt_graph_new_node(kt_graph *g, kt_op op, int ndim, const int64_t *shape);
void kt_node_add_src(kt_node *n, kt_node *s);
void kt_graph_release_memory(kt_graph *g);

/* Creates a node for op with the given sources and output shape (used by builders and rules). */
kt_node *kt_node_make(kt_graph *g, kt_op op, int ndim, const int64_t *shape, int n_src, kt_node *const *src);

#endif
