#include "kt_fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt_meta.h"
#include "kt_test.h"
#include "nets/model.h"

int kt_fixture_atto_checkpoint(const char *path, const char *const *names, int classes, int side, uint64_t seed) {
    kt_err err;
    kt_model m;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = classes, .batch = 1, .img_h = side, .img_w = side};
    if (kt_model_create(&m, &o, NULL, &err) || kt_model_init_weights(&m, seed, &err)) {
        kt_test_fail(__FILE__, __LINE__, "model: %s", err.msg);
        return 0;
    }
    for (int p = 0; p < m.n_refs; p++)
        if (strstr(m.refs[p].name, "gamma"))
            for (int64_t i = 0; i < kt_param_numel(&m.refs[p]); i++) m.refs[p].data[i] = 0.5f;
    kt_ckpt_meta meta;
    kt_ckpt_meta_init(&meta);
    kt_status s = kt_ckpt_meta_set_classes(&meta, names, classes, &err);
    meta.img_h = meta.img_w = side;
    if (!s) s = kt_model_save_weights(&m, path, &meta, &err);
    kt_ckpt_meta_free(&meta);
    kt_model_free(&m);
    if (s) kt_test_fail(__FILE__, __LINE__, "checkpoint %s: %s", path, err.msg);
    return !s;
}

int kt_fixture_count_named(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, needle)) n++;
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) n += kt_fixture_count_named(p, needle);
    }
    closedir(d);
    return n;
}
