/* The small CNN: three conv blocks at 32, 64, 128 channels. */
#include "nets/smallcnn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static kt_node *conv_block(kt_graph *g, kt_node *x, int idx, int64_t ci, int64_t co) {
    char n[64];
    snprintf(n, sizeof n, "features.%d.weight", idx);
    kt_node *w = kt_param(g, n, 4, (int64_t[]){co, ci, 3, 3}, 0);
    snprintf(n, sizeof n, "features.%d.bias", idx);
    kt_node *b = kt_param(g, n, 1, &co, KT_NODE_NO_DECAY);
    kt_node *bn[4];
    const char *sfx[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "features.%d.%s", idx + 1, sfx[i]);
        bn[i] = kt_param(g, n, 1, &co, i < 2 ? KT_NODE_NO_DECAY : KT_NODE_BUFFER);
    }
    kt_node *h = kt_conv2d(g, x, w, b, 1, 1, 1);
    h = kt_relu(g, kt_batchnorm(g, h, bn[0], bn[1], bn[2], bn[3], 1e-5f, 0.1f));
    return kt_maxpool2d(g, h, 2, 2, 0);
}

kt_node *kt_smallcnn_build(kt_graph *g, int num_classes, float drop, kt_node *x) {
    kt_node *h = conv_block(g, x, 0, 3, 32);
    h = conv_block(g, h, 4, 32, 64);
    h = conv_block(g, h, 8, 64, 128);
    kt_node_set_name(h, "features"); /* last block output: Grad-CAM reads it */
    h = kt_global_avgpool(g, h);
    if (drop > 0) h = kt_dropout(g, h, drop);
    int64_t C = num_classes;
    kt_node *fw = kt_param(g, "fc.weight", 2, (int64_t[]){C, 128}, KT_NODE_HEAD);
    kt_node *fb = kt_param(g, "fc.bias", 1, &C, KT_NODE_HEAD | KT_NODE_NO_DECAY);
    kt_node *logits = kt_linear(g, h, fw, fb);
    if (logits) {
        kt_node_set_name(logits, "logits");
        kt_keep(logits);
    }
    return logits;
}

void kt_smallcnn_init(const kt_graph *g, float *params, float *state, kt_rng *rng) {
    for (int p = 0; p < g->n_params; p++) {
        kt_node *n = g->params[p].node;
        float *d = ((n->flags & KT_NODE_BUFFER) ? state : params) + g->params[p].offset;
        int64_t k = kt_node_numel(n);
        const char *nm = n->name;
        if (strstr(nm, "running_var")) {
            for (int64_t i = 0; i < k; i++) d[i] = 1.0f;
        } else if (strstr(nm, "running_mean")) {
            memset(d, 0, (size_t)k * sizeof(float));
        } else if (n->ndim == 1) {
            /* BatchNorm affine (features.1/5/9): weight 1, bias 0; conv/fc bias: PyTorch's uniform(+-1/sqrt(fan_in)) is
             * replaced by 0, which trains the same here and keeps init independent of layer order */
            int bn_weight = strstr(nm, ".weight") != NULL;
            for (int64_t i = 0; i < k; i++) d[i] = bn_weight ? 1.0f : 0.0f;
        } else {
            float fan_in = (float)(k / n->shape[0]);
            float bound = 1.0f / sqrtf(fan_in); /* PyTorch's kaiming_uniform_(a=sqrt(5)) bound */
            for (int64_t i = 0; i < k; i++) d[i] = (2.0f * kt_rng_uniform(rng) - 1.0f) * bound;
        }
    }
}
