/* Helpers of the trainer tests. */
#include "test_trainer_util.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "datasets/synth.h"
#include "kt_test.h"

char *kt_tt_synth(const char *name, int classes, int per_class, int size, uint64_t seed, int multilabel) {
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/%s", kt_test_tmpdir(), name);
    kt_synth_opts o;
    kt_synth_opts_default(&o);
    o.out = path;
    o.classes = classes;
    o.per_class = per_class;
    o.size = size;
    o.seed = seed;
    o.multilabel = multilabel;
    o.overwrite = 1;
    kt_err err = {0};
    if (kt_synth_write(&o, NULL, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "synth: %s", err.msg);
        free(path);
        return NULL;
    }
    return path;
}

void kt_tt_config(kt_train_config *c, const char *data, const char *out_name, char **out_path) {
    /* one compute thread: tests run side by side under ctest -j, and a run is bit-identical for a
     * given thread count anyway */
    omp_set_num_threads(1);
    kt_train_config_default(c);
    *out_path = malloc(4096);
    snprintf(*out_path, 4096, "%s/%s", kt_test_tmpdir(), out_name);
    c->data = data;
    c->out = *out_path;
    c->arch = "smallcnn";
    c->img_size = 32;
    c->folds = 2;
    c->epochs = 2;
    c->batch = 8;
    c->lr = 3e-3;
    c->workers = 2;
    c->no_plots = 1;
    c->threads = 1;
}

int kt_tt_exists(const char *dir, const char *file) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    struct stat st;
    return stat(p, &st) == 0;
}

int kt_tt_same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    kt_err err = {0};
    int same = kt_file_read(a, &x, &nx, &err) == KT_OK && kt_file_read(b, &y, &ny, &err) == KT_OK && nx == ny &&
               !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

char *kt_tt_read(const char *dir, const char *file) {
    char p[8192], *data = NULL;
    size_t n = 0;
    kt_err err = {0};
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (kt_file_read(p, &data, &n, &err) != KT_OK) return NULL;
    return data;
}
