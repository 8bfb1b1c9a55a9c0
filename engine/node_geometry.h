/* What a node's kernel needs to know about its shapes, derived the same way for every backend:
 * convolution and pooling geometry, row counts over the channel axis, activation kinds. */
#ifndef KT_NODE_GEOMETRY_H
#define KT_NODE_GEOMETRY_H

#include "engine/graph.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/pool.h"

/* Rows of a (..., C) node: numel / C. */
int64_t kt_node_rows(const kt_node *n);
/* Convolution geometry of CONV2D (x, w), CONV2D_BWD_DATA (dy, w; x's shape is the node's) and
 * CONV2D_BWD_WEIGHT (dy, x; w's shape is the node's). */
kt_conv_shape kt_node_conv_geom(const kt_node *n);
/* Pooling geometry of a pooling node (or its backward) over input x. */
kt_pool_shape kt_node_pool_geom(const kt_node *n, const kt_node *x);
/* The activation of GELU/RELU/SILU/SIGMOID ops (and of ACT_BWD's ip[0]). */
kt_act kt_node_act(int op);
/* A node's shape seen as (outer, shape[axis], inner) around one axis. */
void kt_node_around_axis(const kt_node *n, int axis, int64_t *outer, int64_t *inner);

#endif
