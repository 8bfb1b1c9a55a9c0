/* The planner fusions by name (KT_FUSE_* bits), for the people who switch them off: kt_gpu_bench's
 * --without and the CUDA backend's KT_CUDA_WITHOUT, which measure what each saves or isolate one
 * that fails on a card. */
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"

static const struct {
    const char *name;
    unsigned bit;
} NAMES[] = {{"linear_gelu", KT_FUSE_LINEAR_GELU},       {"layernorm_bwd", KT_FUSE_LAYERNORM_BWD},
             {"layerscale_bwd", KT_FUSE_LAYERSCALE_BWD}, {"act_bwd_colsum", KT_FUSE_ACT_BWD_COLSUM},
             {"layernorm_colsum", KT_FUSE_OTHER_COLSUM}, {"scale_colsum", KT_FUSE_SCALE_COLSUM},
             {"scale_add", KT_FUSE_SCALE_ADD},           {"dwconv_bwd_add", KT_FUSE_DWCONV_BWD_ADD}};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

kt_status kt_fusions_parse(const char *list, unsigned *bits, kt_err *err) {
    *bits = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        unsigned b = 0;
        for (size_t k = 0; k < N_NAMES; k++)
            if (strlen(NAMES[k].name) == len && !strncmp(p, NAMES[k].name, len)) b = NAMES[k].bit;
        if (!b) {
            char known[256] = "";
            kt_fusions_label(~0u, known, sizeof known);
            return kt_err_set(err, KT_ERR_ARG, "unknown fusion '%.*s' (known: %s)", (int)(len > 64 ? 64 : len), p, known);
        }
        *bits |= b;
        p += len + (p[len] == ',');
    }
    return KT_OK;
}

void kt_fusions_label(unsigned bits, char *out, size_t cap) {
    if (!cap) return;
    out[0] = 0;
    for (size_t k = 0; k < N_NAMES; k++) {
        size_t used = strlen(out);
        if ((bits & NAMES[k].bit) && used < cap) snprintf(out + used, cap - used, "%s%s", used ? "," : "", NAMES[k].name);
    }
}
