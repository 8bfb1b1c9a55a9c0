/* ConvNeXt as timm defines it (atto .. large), built as a graph of engine ops on NHWC input, with
 * timm's parameter names (stem.0.weight, stages.2.blocks.5.conv_dw.weight, head.fc.weight, ...). */
#ifndef KT_CONVNEXT_H
#define KT_CONVNEXT_H

#include "base/rng.h"
#include "engine/graph.h"

typedef struct kt_convnext_cfg {
    const char *name; /* "convnext_tiny" */
    int depths[4];
    int dims[4];
    int conv_mlp; /* timm builds the MLP as 1x1 convolutions (atto..nano): weights stored (out, in, 1, 1) */
} kt_convnext_cfg;

/* Accepts "convnext_tiny" or "tiny"; NULL when unknown. */
const kt_convnext_cfg *kt_convnext_find(const char *name);
/* All known configs, for --help and `keratrack info`. */
const kt_convnext_cfg *kt_convnext_list(int *n);

typedef struct kt_convnext_opts {
    int num_classes;
    float drop_path_rate; /* stochastic depth, linear from 0 to this over all blocks */
    float head_drop_rate; /* dropout before head.fc */
    float ls_init;        /* layer-scale gamma init (timm: 1e-6) */
} kt_convnext_opts;

/* Appends the network to g: x (N, H, W, 3) with H, W divisible by 32 -> logits (N, classes).
 * Parameters are created with their timm names; GELU and LayerNorm outputs are marked for
 * recomputation in backward (used when g->recompute is set). */
kt_node *kt_convnext_build(kt_graph *g, const kt_convnext_cfg *cfg, const kt_convnext_opts *o, kt_node *x);

/* timm's initialisation: conv and linear weights truncated normal (std 0.02, cut at +-2),
 * biases 0, LayerNorm weight 1 / bias 0, gamma = ls_init. Writes host memory: params is the
 * host copy of g's parameter buffer (g->param_buf on the CPU backend). */
void kt_convnext_init(const kt_graph *g, float *params, float ls_init, kt_rng *rng);

/* Parameter count of a config with the given class count (without building a graph). */
int64_t kt_convnext_param_count(const kt_convnext_cfg *cfg, int num_classes);
/* Forward FLOPs (2 per multiply-add) of convolutions and linears for one image. */
double kt_convnext_flops(const kt_convnext_cfg *cfg, int num_classes, int h, int w);

#endif
