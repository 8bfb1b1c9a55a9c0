/* A small CNN of the kind seed 002 serves (3 x [conv3x3 -> BatchNorm -> ReLU -> maxpool 2] ->
 * global average pool -> dropout -> fc), for fast models on modest hardware. PyTorch nn.Sequential
 * names: features.0/1 (conv, bn), features.4/5, features.8/9, fc. */
#ifndef KT_SMALLCNN_H
#define KT_SMALLCNN_H

#include "base/rng.h"
#include "engine/graph.h"

#define KT_SMALLCNN_NAME "smallcnn"

kt_node *kt_smallcnn_build(kt_graph *g, int num_classes, float drop, kt_node *x);
/* Kaiming-uniform conv/fc weights (PyTorch's default), BN weight 1 bias 0, running var 1. */
/* params, state: host copies of g's parameter and state buffers. */
void kt_smallcnn_init(const kt_graph *g, float *params, float *state, kt_rng *rng);

#endif
