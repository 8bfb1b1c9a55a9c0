/* Helpers for the checkpoint tests (see ckpt_testutil.h). */
#include "ckpt_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "checkpoints/safetensors.h"
#include "kt_test.h"

const char *ckt_write_raw(const char *name, const char *header, int64_t hlen, size_t data_len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", kt_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    uint64_t hl = hlen < 0 ? strlen(header) : (uint64_t)hlen;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++) fputc(0x11, f);
    fclose(f);
    return path;
}

const char *ckt_open_error(const char *path) {
    static kt_err err;
    kt_err_clear(&err);
    kt_st_file f;
    if (kt_st_open(&f, path, &err) == KT_OK) {
        kt_st_close(&f);
        return "";
    }
    return err.msg;
}

static void add(ckt_model *m, const char *name, int ndim, const int64_t *shape, int file_ndim, const int64_t *fshape,
                int is_head) {
    kt_param_ref *p = &m->p[m->n];
    memset(p, 0, sizeof *p);
    m->names[m->n] = strdup(name);
    p->name = m->names[m->n];
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    p->file_ndim = file_ndim;
    for (int i = 0; i < file_ndim; i++) p->file_shape[i] = fshape[i];
    p->is_head = is_head;
    m->n++;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})

void ckt_atto_init(ckt_model *m, int n_classes, uint64_t seed) {
    static const int depths[4] = {2, 2, 6, 2};
    static const int64_t dims[4] = {40, 80, 160, 320};
    memset(m, 0, sizeof *m);
    m->p = calloc(256, sizeof *m->p);
    m->names = calloc(256, sizeof *m->names);
    char nm[256];
    add(m, "stem.0.weight", 4, S(40, 3, 4, 4), 0, NULL, 0);
    add(m, "stem.0.bias", 1, S(40), 0, NULL, 0);
    add(m, "stem.1.weight", 1, S(40), 0, NULL, 0);
    add(m, "stem.1.bias", 1, S(40), 0, NULL, 0);
    for (int s = 0; s < 4; s++) {
        int64_t c = dims[s];
        if (s > 0) {
            snprintf(nm, sizeof nm, "stages.%d.downsample.0.weight", s);
            add(m, nm, 1, S(dims[s - 1]), 0, NULL, 0);
            snprintf(nm, sizeof nm, "stages.%d.downsample.0.bias", s);
            add(m, nm, 1, S(dims[s - 1]), 0, NULL, 0);
            snprintf(nm, sizeof nm, "stages.%d.downsample.1.weight", s);
            add(m, nm, 4, S(c, dims[s - 1], 2, 2), 0, NULL, 0);
            snprintf(nm, sizeof nm, "stages.%d.downsample.1.bias", s);
            add(m, nm, 1, S(c), 0, NULL, 0);
        }
        for (int b = 0; b < depths[s]; b++) {
            const char *pre = "stages.%d.blocks.%d.%s";
            snprintf(nm, sizeof nm, pre, s, b, "gamma");
            add(m, nm, 1, S(c), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "conv_dw.weight");
            add(m, nm, 4, S(c, 1, 7, 7), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "conv_dw.bias");
            add(m, nm, 1, S(c), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "norm.weight");
            add(m, nm, 1, S(c), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "norm.bias");
            add(m, nm, 1, S(c), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "mlp.fc1.weight");
            add(m, nm, 2, S(4 * c, c), 4, S(4 * c, c, 1, 1), 0);
            snprintf(nm, sizeof nm, pre, s, b, "mlp.fc1.bias");
            add(m, nm, 1, S(4 * c), 0, NULL, 0);
            snprintf(nm, sizeof nm, pre, s, b, "mlp.fc2.weight");
            add(m, nm, 2, S(c, 4 * c), 4, S(c, 4 * c, 1, 1), 0);
            snprintf(nm, sizeof nm, pre, s, b, "mlp.fc2.bias");
            add(m, nm, 1, S(c), 0, NULL, 0);
        }
    }
    add(m, "head.norm.weight", 1, S(320), 0, NULL, 0);
    add(m, "head.norm.bias", 1, S(320), 0, NULL, 0);
    add(m, "head.fc.weight", 2, S(n_classes, 320), 0, NULL, 1);
    add(m, "head.fc.bias", 1, S(n_classes), 0, NULL, 1);
    int64_t total = kt_params_count(m->p, m->n);
    m->storage = malloc((size_t)total * sizeof(float));
    kt_rng r;
    kt_rng_seed(&r, seed);
    float *at = m->storage;
    for (int i = 0; i < m->n; i++) {
        m->p[i].data = at;
        int64_t k = kt_param_numel(&m->p[i]);
        for (int64_t j = 0; j < k; j++) at[j] = (float)(kt_rng_normal(&r) * 0.05);
        at += k;
    }
}

void ckt_model_free(ckt_model *m) {
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->p);
    free(m->storage);
    memset(m, 0, sizeof *m);
}
