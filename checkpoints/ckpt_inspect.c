/* Checkpoint summary: find timm's ConvNeXt names (under an optional prefix), infer the variant. */
#include "checkpoints/ckpt_inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* timm's ConvNeXt configurations (timm/models/convnext.py). The table lives here, not in nets/,
 * so reading a file needs no model code. */
static const struct {
    const char *name;
    int depths[4];
    int64_t dims[4];
} variants[] = {
    {"convnext_atto", {2, 2, 6, 2}, {40, 80, 160, 320}},
    {"convnext_femto", {2, 2, 6, 2}, {48, 96, 192, 384}},
    {"convnext_pico", {2, 2, 6, 2}, {64, 128, 256, 512}},
    {"convnext_nano", {2, 2, 8, 2}, {80, 160, 320, 640}},
    {"convnext_tiny", {3, 3, 9, 3}, {96, 192, 384, 768}},
    {"convnext_small", {3, 3, 27, 3}, {96, 192, 384, 768}},
    {"convnext_base", {3, 3, 27, 3}, {128, 256, 512, 1024}},
    {"convnext_large", {3, 3, 27, 3}, {192, 384, 768, 1536}},
    {"convnext_xlarge", {3, 3, 27, 3}, {256, 512, 1024, 2048}},
};

const char *kt_convnext_variant_name(const int depths[4], const int64_t dims[4]) {
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        int ok = 1;
        for (int s = 0; s < 4 && ok; s++) ok = variants[i].depths[s] == depths[s] && variants[i].dims[s] == dims[s];
        if (ok) return variants[i].name;
    }
    return NULL;
}

/* Parses "stages.<S>.blocks.<B>." at p; returns 1 and S, B when it matches. */
static int parse_block(const char *p, int *s, int *b) {
    char *end;
    if (strncmp(p, "stages.", 7)) return 0;
    long sv = strtol(p + 7, &end, 10);
    if (end == p + 7 || strncmp(end, ".blocks.", 8)) return 0;
    const char *q = end + 8;
    long bv = strtol(q, &end, 10);
    if (end == q || *end != '.' || sv < 0 || sv >= 8 || bv < 0 || bv > 1000) return 0;
    *s = (int)sv;
    *b = (int)bv;
    return 1;
}

static const kt_st_tensor *find_pref(const kt_st_file *f, const char *prefix, const char *name) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s", prefix, name);
    return kt_st_find(f, buf);
}

void kt_ckpt_inspect(const kt_st_file *f, kt_ckpt_summary *s) {
    memset(s, 0, sizeof *s);
    s->n_classes = s->head_in = -1;
    /* timm's names bare, or under a wrapper prefix that training scripts and our golden files use.
     * The stem must be a 4-D weight: "grad_stats.stem.0.weight" of a golden file is no model. */
    static const char *const prefixes[] = {"", "param.", "model.", "module.", "state_dict.", "model_ema."};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !s->is_convnext; i++) {
        const kt_st_tensor *t = find_pref(f, prefixes[i], "stem.0.weight");
        if (t && t->ndim == 4 && kt_st_dtype_is_float(t->dtype)) {
            snprintf(s->prefix, sizeof s->prefix, "%s", prefixes[i]);
            s->is_convnext = 1;
        }
    }
    size_t pl = strlen(s->prefix);
    int seen[KT_ST_COUNT] = {0};
    for (int i = 0; i < f->n_tensors; i++) {
        const kt_st_tensor *t = &f->tensors[i];
        if (strncmp(t->name, s->prefix, pl)) {
            s->n_other_tensors++;
            continue;
        }
        s->n_model_tensors++;
        s->n_params += t->numel;
        seen[t->dtype] = 1;
        int st, b;
        if (s->is_convnext && parse_block(t->name + pl, &st, &b)) {
            if (st + 1 > s->n_stages) s->n_stages = st + 1;
            if (b + 1 > s->depths[st]) s->depths[st] = b + 1;
        }
    }
    for (int d = 0; d < KT_ST_COUNT; d++)
        if (seen[d]) {
            size_t at = strlen(s->dtypes);
            snprintf(s->dtypes + at, sizeof s->dtypes - at, "%s%s", at ? ", " : "", kt_st_dtype_name((kt_st_dtype)d));
        }
    if (!s->is_convnext) return;
    char name[128];
    for (int st = 0; st < s->n_stages; st++) {
        snprintf(name, sizeof name, "stages.%d.blocks.0.conv_dw.weight", st);
        const kt_st_tensor *t = find_pref(f, s->prefix, name);
        if (t && t->ndim >= 1) s->dims[st] = t->shape[0];
    }
    const kt_st_tensor *fc1 = find_pref(f, s->prefix, "stages.0.blocks.0.mlp.fc1.weight");
    s->conv_mlp = fc1 && fc1->ndim == 4;
    const kt_st_tensor *head = find_pref(f, s->prefix, "head.fc.weight");
    if (head && head->ndim == 2) {
        s->n_classes = head->shape[0];
        s->head_in = head->shape[1];
    }
    if (s->n_stages == 4) {
        const char *v = kt_convnext_variant_name(s->depths, s->dims);
        if (v) snprintf(s->inferred, sizeof s->inferred, "%s", v);
    }
}
