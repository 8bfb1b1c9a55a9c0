/* ConvNeXt: stem (4x4/4 conv + LN), four stages (LN + 2x2/2 conv downsample, then blocks of
 * depthwise 7x7 conv -> LN -> Linear(C,4C) -> GELU -> Linear(4C,C) -> gamma -> drop path -> +),
 * head (global average pool -> LN -> dropout -> Linear). LayerNorm eps is timm's 1e-6. */
#include "nets/convnext.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/graph_internal.h"

#define LN_EPS 1e-6f

static const kt_convnext_cfg cfgs[] = {
    {"convnext_atto", {2, 2, 6, 2}, {40, 80, 160, 320}, 1},
    {"convnext_femto", {2, 2, 6, 2}, {48, 96, 192, 384}, 1},
    {"convnext_pico", {2, 2, 6, 2}, {64, 128, 256, 512}, 1},
    {"convnext_nano", {2, 2, 8, 2}, {80, 160, 320, 640}, 1},
    {"convnext_tiny", {3, 3, 9, 3}, {96, 192, 384, 768}, 0},
    {"convnext_small", {3, 3, 27, 3}, {96, 192, 384, 768}, 0},
    {"convnext_base", {3, 3, 27, 3}, {128, 256, 512, 1024}, 0},
    {"convnext_large", {3, 3, 27, 3}, {192, 384, 768, 1536}, 0},
};

const kt_convnext_cfg *kt_convnext_list(int *n) {
    *n = (int)(sizeof cfgs / sizeof cfgs[0]);
    return cfgs;
}

const kt_convnext_cfg *kt_convnext_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        if (!strcmp(name, cfgs[i].name) || !strcmp(name, cfgs[i].name + strlen("convnext_"))) return &cfgs[i];
    return NULL;
}

static kt_node *param(kt_graph *g, uint32_t flags, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static kt_node *param(kt_graph *g, uint32_t flags, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[KT_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return kt_param(g, name, ndim, shape, flags);
}

/* LayerNorm over channels with timm's names prefix.weight / prefix.bias */
static kt_node *ln(kt_graph *g, kt_node *x, int64_t C, const char *prefix) {
    kt_node *w = param(g, KT_NODE_NO_DECAY, 1, &C, "%s.weight", prefix);
    kt_node *b = param(g, KT_NODE_NO_DECAY, 1, &C, "%s.bias", prefix);
    kt_node *y = kt_layernorm(g, x, w, b, LN_EPS);
    if (y) y->flags |= KT_NODE_RECOMPUTE;
    return y;
}

static kt_node *block(kt_graph *g, kt_node *x, int s, int b, int64_t C, float dp, int conv_mlp) {
    char pre[64];
    snprintf(pre, sizeof pre, "stages.%d.blocks.%d", s, b);
    int64_t H = 4 * C;
    kt_node *w = param(g, 0, 4, (int64_t[]){C, 1, 7, 7}, "%s.conv_dw.weight", pre);
    kt_node *bias = param(g, KT_NODE_NO_DECAY, 1, &C, "%s.conv_dw.bias", pre);
    kt_node *h = kt_conv2d(g, x, w, bias, 1, 3, (int)C);
    /* with recomputation on, the depthwise output (LayerNorm's input) is redone in backward from
     * the block input, which is stored anyway: ~3% more compute for a seventh less memory */
    if (h) h->flags |= KT_NODE_RECOMPUTE;
    char lnp[80];
    snprintf(lnp, sizeof lnp, "%s.norm", pre);
    h = ln(g, h, C, lnp);
    uint32_t fflag = conv_mlp ? KT_NODE_FILE_4D : 0;
    kt_node *w1 = param(g, fflag, 2, (int64_t[]){H, C}, "%s.mlp.fc1.weight", pre);
    kt_node *b1 = param(g, KT_NODE_NO_DECAY, 1, &H, "%s.mlp.fc1.bias", pre);
    kt_node *w2 = param(g, fflag, 2, (int64_t[]){C, H}, "%s.mlp.fc2.weight", pre);
    kt_node *b2 = param(g, KT_NODE_NO_DECAY, 1, &C, "%s.mlp.fc2.bias", pre);
    h = kt_gelu(g, kt_linear(g, h, w1, b1));
    if (h) h->flags |= KT_NODE_RECOMPUTE;
    h = kt_linear(g, h, w2, b2);
    kt_node *gamma = param(g, KT_NODE_NO_DECAY, 1, &C, "%s.gamma", pre);
    h = kt_mul(g, h, gamma);
    if (dp > 0) h = kt_drop_path(g, h, dp);
    return kt_add(g, h, x);
}

kt_node *kt_convnext_build(kt_graph *g, const kt_convnext_cfg *cfg, const kt_convnext_opts *o, kt_node *x) {
    char s1[128];
    if (g->status) return NULL;
    if (!x || x->ndim != 4 || x->shape[3] != 3 || x->shape[1] % 32 || x->shape[2] % 32)
        return kt_graph_fail(g, KT_ERR_SHAPE, "%s: input %s must be (N, H, W, 3) with H and W divisible by 32", cfg->name,
                             x ? kt_node_shape_str(x, s1, sizeof s1) : "NULL");
    if (o->num_classes < 1) return kt_graph_fail(g, KT_ERR_ARG, "%s: %d classes", cfg->name, o->num_classes);
    int total = cfg->depths[0] + cfg->depths[1] + cfg->depths[2] + cfg->depths[3], k = 0;
    int64_t C0 = cfg->dims[0];
    kt_node *w = param(g, 0, 4, (int64_t[]){C0, 3, 4, 4}, "stem.0.weight");
    kt_node *b = param(g, KT_NODE_NO_DECAY, 1, &C0, "stem.0.bias");
    kt_node *h = ln(g, kt_conv2d(g, x, w, b, 4, 0, 1), C0, "stem.1");
    for (int s = 0; s < 4; s++) {
        int64_t C = cfg->dims[s];
        if (s > 0) {
            int64_t Cp = cfg->dims[s - 1];
            char p[48];
            snprintf(p, sizeof p, "stages.%d.downsample.0", s);
            h = ln(g, h, Cp, p);
            kt_node *dw = param(g, 0, 4, (int64_t[]){C, Cp, 2, 2}, "stages.%d.downsample.1.weight", s);
            kt_node *db = param(g, KT_NODE_NO_DECAY, 1, &C, "stages.%d.downsample.1.bias", s);
            h = kt_conv2d(g, h, dw, db, 2, 0, 1);
        }
        for (int bi = 0; bi < cfg->depths[s]; bi++, k++) {
            /* timm: torch.linspace(0, drop_path_rate, total)[k] */
            float dp = total > 1 ? o->drop_path_rate * (float)k / (float)(total - 1) : 0.0f;
            h = block(g, h, s, bi, C, dp, cfg->conv_mlp);
        }
    }
    int64_t CF = cfg->dims[3], NC = o->num_classes;
    kt_node_set_name(h, "features"); /* last stage output (N, H/32, W/32, C): Grad-CAM reads it */
    h = kt_global_avgpool(g, h);
    h = ln(g, h, CF, "head.norm");
    if (o->head_drop_rate > 0) h = kt_dropout(g, h, o->head_drop_rate);
    kt_node *fw = param(g, KT_NODE_HEAD, 2, (int64_t[]){NC, CF}, "head.fc.weight");
    kt_node *fb = param(g, KT_NODE_HEAD | KT_NODE_NO_DECAY, 1, &NC, "head.fc.bias");
    kt_node *logits = kt_linear(g, h, fw, fb);
    if (logits) {
        kt_node_set_name(logits, "logits");
        kt_keep(logits);
    }
    return logits;
}

void kt_convnext_init(const kt_graph *g, float *params, float ls_init, kt_rng *rng) {
    for (int p = 0; p < g->n_params; p++) {
        kt_node *n = g->params[p].node;
        if (n->flags & KT_NODE_BUFFER) continue;
        float *d = params + g->params[p].offset;
        int64_t k = kt_node_numel(n);
        const char *nm = n->name;
        size_t L = strlen(nm);
        int is_bias = L > 5 && !strcmp(nm + L - 5, ".bias");
        int is_gamma = L > 6 && !strcmp(nm + L - 6, ".gamma");
        int is_norm = strstr(nm, "norm") != NULL || !strncmp(nm, "stem.1.", 7) || strstr(nm, "downsample.0.") != NULL;
        for (int64_t i = 0; i < k; i++) {
            if (is_gamma) d[i] = ls_init;
            else if (is_bias) d[i] = 0.0f;
            else if (is_norm) d[i] = 1.0f;
            else d[i] = kt_rng_trunc_normal(rng, 0.0f, 0.02f, -2.0f, 2.0f);
        }
    }
}

int64_t kt_convnext_param_count(const kt_convnext_cfg *c, int num_classes) {
    int64_t n = (int64_t)c->dims[0] * 3 * 16 + c->dims[0] + 2 * c->dims[0];
    for (int s = 0; s < 4; s++) {
        int64_t C = c->dims[s];
        if (s > 0) n += 2 * (int64_t)c->dims[s - 1] + C * c->dims[s - 1] * 4 + C;
        int64_t blk = C * 49 + C + 2 * C + C * 4 * C + 4 * C + 4 * C * C + C + C;
        n += blk * c->depths[s];
    }
    n += 2 * (int64_t)c->dims[3] + (int64_t)num_classes * c->dims[3] + num_classes;
    return n;
}

double kt_convnext_flops(const kt_convnext_cfg *c, int num_classes, int h, int w) {
    double f = 0, hw = (double)(h / 4) * (w / 4);
    f += 2.0 * hw * c->dims[0] * 3 * 16;
    for (int s = 0; s < 4; s++) {
        double C = c->dims[s];
        if (s > 0) {
            hw /= 4;
            f += 2.0 * hw * C * c->dims[s - 1] * 4;
        }
        f += c->depths[s] * 2.0 * hw * (C * 49 + 8 * C * C);
    }
    f += 2.0 * c->dims[3] * num_classes;
    return f;
}
