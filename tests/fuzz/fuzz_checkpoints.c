/* Fuzz targets of the checkpoint files: safetensors (+ metadata, inspection, rewrites), weights loading,
 * --resume training states. See fuzz_targets.h. */
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/model_io.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/train_state.h"

#include "fuzz_internal.h"

/* ---- safetensors files: the readers map a path, so the bytes go to an anonymous in-memory file ---- */
/* Returns the file's descriptor (close it) and its path in path[64], or -1. */
static int to_memfd(const uint8_t *data, size_t len, char *path) {
    int fd = memfd_create("kt_fuzz.safetensors", 0);
    if (fd < 0) return -1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* Where a rewrite goes: /dev/shm, since the writers rename a temporary file into place, which an
 * in-memory file cannot do; one file per process and kind. */
static void rewrite_path(char *path, size_t n, const char *kind) {
    snprintf(path, n, "/dev/shm/kt_fuzz_%s.%d.safetensors", kind, (int)getpid());
}

/* An accepted file written again by our writer (same names, dtypes, shapes, bytes, metadata) must
 * read back equal: names and metadata go through the writer's JSON escaping. */
static void st_roundtrip(const kt_st_file *f) {
    char path[96];
    rewrite_path(path, sizeof path, "roundtrip");
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err = {0};
    int ok = 1;
    for (int i = 0; ok && i < f->n_tensors; i++) {
        const kt_st_tensor *t = &f->tensors[i];
        ok = kt_st_writer_add(&w, t->name, t->dtype, t->ndim, t->shape, t->dtype, t->data, &err) == KT_OK;
    }
    for (int i = 0; ok && i < f->n_meta; i++) ok = kt_st_writer_meta(&w, f->meta_keys[i], f->meta_vals[i], &err) == KT_OK;
    /* names the reader takes and the writer refuses (empty, "__metadata__") are not a round trip */
    if (ok && kt_st_writer_save(&w, path, &err) != KT_OK) kt_fuzz_broken("safetensors", "cannot write it again: %s", err.msg);
    kt_st_writer_free(&w);
    if (!ok) return;
    kt_st_file g;
    if (kt_st_open(&g, path, &err) != KT_OK) kt_fuzz_broken("safetensors", "our own rewrite does not read back: %s", err.msg);
    if (g.n_tensors != f->n_tensors || g.n_meta != f->n_meta)
        kt_fuzz_broken("safetensors", "rewrite has %d tensors and %d metadata keys, the file %d and %d", g.n_tensors, g.n_meta,
               f->n_tensors, f->n_meta);
    for (int i = 0; i < f->n_tensors; i++) {
        const kt_st_tensor *a = &f->tensors[i], *b = kt_st_find(&g, a->name);
        if (!b || b->dtype != a->dtype || b->ndim != a->ndim || memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) ||
            b->nbytes != a->nbytes || (a->nbytes && memcmp(b->data, a->data, a->nbytes)))
            kt_fuzz_broken("safetensors", "tensor [%s] differs after a rewrite", a->name);
    }
    for (int i = 0; i < f->n_meta; i++) {
        const char *v = kt_st_meta(&g, f->meta_keys[i]);
        if (!v || strcmp(v, f->meta_vals[i])) kt_fuzz_broken("safetensors", "metadata [%s] differs after a rewrite", f->meta_keys[i]);
    }
    kt_st_close(&g);
    unlink(path);
}

/* Checkpoint metadata read from a file, written by kt_ckpt_meta_to_writer and read again, must
 * give the same fields: class names and metrics go through our JSON writing. */
static void meta_roundtrip(const kt_ckpt_meta *m) {
    char path[96];
    rewrite_path(path, sizeof path, "meta");
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err = {0};
    if (kt_ckpt_meta_to_writer(m, &w, &err) != KT_OK || kt_st_writer_save(&w, path, &err) != KT_OK)
        kt_fuzz_broken("safetensors", "metadata read from a file cannot be written again: %s", err.msg);
    kt_st_writer_free(&w);
    kt_st_file g;
    kt_ckpt_meta b;
    if (kt_st_open(&g, path, &err) != KT_OK) kt_fuzz_broken("safetensors", "rewritten metadata does not open: %s", err.msg);
    if (kt_ckpt_meta_from_file(&g, &b, &err) != KT_OK) kt_fuzz_broken("safetensors", "rewritten metadata does not read: %s", err.msg);
    int same = (!m->arch) == (!b.arch) && (!m->arch || !strcmp(m->arch, b.arch)) && m->n_classes == b.n_classes &&
               (!m->class_names) == (!b.class_names) && m->img_h == b.img_h && m->img_w == b.img_w &&
               m->has_norm == b.has_norm && m->epoch == b.epoch && (!m->metrics_json) == (!b.metrics_json) &&
               m->n_extra == b.n_extra;
    if (same && m->metrics_json) same = !strcmp(m->metrics_json, b.metrics_json);
    for (int i = 0; same && m->class_names && i < m->n_classes; i++) same = !strcmp(m->class_names[i], b.class_names[i]);
    for (int i = 0; same && m->has_norm && i < 3; i++) same = m->mean[i] == b.mean[i] && m->std[i] == b.std[i];
    for (int i = 0; same && i < m->n_extra; i++) {
        const char *v = kt_ckpt_meta_get_extra(&b, m->extra_keys[i]);
        same = v && !strcmp(v, m->extra_vals[i]);
    }
    if (!same) kt_fuzz_broken("safetensors", "checkpoint metadata differs after a rewrite (arch %s, %d classes)", m->arch ? m->arch : "-", m->n_classes);
    kt_ckpt_meta_free(&b);
    kt_st_close(&g);
    unlink(path);
}

int kt_fuzz_safetensors(const uint8_t *data, size_t len) {
    char path[64];
    int fd = to_memfd(data, len, path);
    if (fd < 0) return 0;
    kt_st_file f;
    kt_err err = {0};
    if (kt_st_open(&f, path, &err) == KT_OK) {
        if (f.map_len != len || f.header_len > len - 8)
            kt_fuzz_broken("safetensors", "accepted a header of %llu bytes in a %zu-byte file", (unsigned long long)f.header_len,
                   len);
        const uint8_t *lo = (const uint8_t *)f.map + 8 + f.header_len, *hi = (const uint8_t *)f.map + f.map_len;
        float *buf = NULL;
        for (int i = 0; i < f.n_tensors; i++) {
            const kt_st_tensor *t = &f.tensors[i];
            if (t->nbytes != (uint64_t)t->numel * (uint64_t)kt_st_dtype_size(t->dtype))
                kt_fuzz_broken("safetensors", "tensor %s: %llu bytes for %lld elements", t->name, (unsigned long long)t->nbytes,
                       (long long)t->numel);
            if (t->nbytes && (t->data < lo || t->data > hi || t->nbytes > (uint64_t)(hi - t->data)))
                kt_fuzz_broken("safetensors", "tensor %s lies outside the data section", t->name);
            if (kt_st_find(&f, t->name) != t) kt_fuzz_broken("safetensors", "kt_st_find(%s) finds another tensor", t->name);
            if (t->numel <= (1 << 16) && kt_st_dtype_is_float(t->dtype)) {
                float *b = realloc(buf, sizeof(float) * (size_t)(t->numel ? t->numel : 1));
                if (!b) break;
                buf = b;
                kt_st_read_f32(&f, t, buf, t->numel, &err); /* a wrong count or dtype is an error, not a crash */
            }
        }
        free(buf);
        kt_ckpt_summary s;
        kt_ckpt_inspect(&f, &s);
        kt_ckpt_meta m;
        kt_ckpt_meta_init(&m);
        if (kt_ckpt_meta_from_file(&f, &m, &err) == KT_OK) {
            if (m.n_classes < 0 || m.n_classes > KT_CKPT_MAX_CLASSES)
                kt_fuzz_broken("safetensors", "metadata accepted %d classes", m.n_classes);
            for (int i = 0; m.class_names && i < m.n_classes; i++)
                if (!m.class_names[i]) kt_fuzz_broken("safetensors", "class name %d missing", i);
            meta_roundtrip(&m);
        }
        kt_ckpt_meta_free(&m);
        st_roundtrip(&f);
        kt_st_close(&f);
    } else if (!err.msg[0]) {
        kt_fuzz_broken("safetensors", "refused a file without saying why");
    }
    close(fd);
    return 0;
}

/* Two parameters as a model lists them: a 1x1-conv weight stored 4-D by timm, and a head bias. */
enum { FZ_W = 6, FZ_B = 3 };
static float fz_w[FZ_W], fz_b[FZ_B];
static const kt_param_ref fz_params[2] = {
    {.name = "mlp.fc1.weight", .ndim = 2, .shape = {3, 2}, .file_ndim = 4, .file_shape = {3, 2, 1, 1}, .data = fz_w},
    {.name = "head.fc.bias", .ndim = 1, .shape = {3}, .data = fz_b, .is_head = 1},
};

static void fz_fill(float *a, int n, float base) {
    for (int i = 0; i < n; i++) a[i] = base + (float)i;
}

static int fz_same(const float *a, int n, float base) {
    for (int i = 0; i < n; i++)
        if (a[i] != base + (float)i) return 0;
    return 1;
}

/* Weights into a model's parameters (byte 0: strict or fine-tuning load; the rest is the file).
 * A failed load must leave every parameter as it was. */
int kt_fuzz_weights(const uint8_t *data, size_t len) {
    if (len < 1) return 0;
    kt_load_mode mode = data[0] & 1 ? KT_LOAD_FINETUNE : KT_LOAD_STRICT;
    char path[64];
    int fd = to_memfd(data + 1, len - 1, path);
    if (fd < 0) return 0;
    fz_fill(fz_w, FZ_W, 100.0f);
    fz_fill(fz_b, FZ_B, 200.0f);
    kt_load_report rep;
    kt_err err = {0};
    if (kt_model_load(path, NULL, fz_params, 2, mode, &rep, &err) != KT_OK) {
        if (!err.msg[0]) kt_fuzz_broken("weights", "refused without a message");
        if (!fz_same(fz_w, FZ_W, 100.0f) || !fz_same(fz_b, FZ_B, 200.0f))
            kt_fuzz_broken("weights", "a failed load changed the parameters (%s)", err.msg);
    } else if (rep.n_loaded + rep.n_kept != 2 || (mode == KT_LOAD_STRICT && rep.n_kept)) {
        kt_fuzz_broken("weights", "loaded %d and kept %d of 2 parameters", rep.n_loaded, rep.n_kept);
    }
    close(fd);
    return 0;
}

/* A resume file for the same two parameters (byte 0: check the parameters' hash). A failed load
 * must leave the moments as they were. */
/* A state that loaded, saved again with its moments and loaded once more, must give the same
 * counters, scale, streams, arrays, config and moments (what --resume relies on after a resume). */
static void state_roundtrip(const kt_train_state *a, float *const *m, float *const *v) {
    char path[96];
    rewrite_path(path, sizeof path, "state");
    kt_err err = {0};
    if (kt_train_state_save(path, fz_params, 2, m, v, a, &err) != KT_OK)
        kt_fuzz_broken("train_state", "a state that loaded cannot be saved again: %s", err.msg);
    float m0[FZ_W], v0[FZ_W], m1[FZ_B], v1[FZ_B];
    float *m2[2] = {m0, m1}, *v2[2] = {v0, v1};
    kt_train_state b;
    if (kt_train_state_load(path, fz_params, 2, m2, v2, 1, &b, &err) != KT_OK)
        kt_fuzz_broken("train_state", "a state saved again does not load: %s", err.msg);
    int same = a->step == b.step && a->epoch == b.epoch && a->batch == b.batch && a->fold == b.fold &&
               a->sched_step == b.sched_step && a->sched_total == b.sched_total &&
               a->loss_scale_good_steps == b.loss_scale_good_steps && a->n_rng == b.n_rng && a->n_arrays == b.n_arrays &&
               !memcmp(&a->loss_scale, &b.loss_scale, sizeof(double)) && !memcmp(&a->best_metric, &b.best_metric, sizeof(double)) &&
               (!a->config_json) == (!b.config_json) && (!a->config_json || !strcmp(a->config_json, b.config_json)) &&
               !memcmp(m0, m[0], sizeof m0) && !memcmp(v0, v[0], sizeof v0) && !memcmp(m1, m[1], sizeof m1) &&
               !memcmp(v1, v[1], sizeof v1);
    for (int i = 0; same && i < a->n_rng; i++) {
        const kt_rng *r = kt_train_state_get_rng(&b, a->rng_names[i]);
        same = r && !memcmp(r, &a->rng[i], sizeof *r);
    }
    for (int i = 0; same && i < a->n_arrays; i++) {
        const kt_ts_array *x = kt_train_state_get_array(&b, a->arrays[i].name);
        same = x && x->n == a->arrays[i].n && (!x->n || !memcmp(x->data, a->arrays[i].data, sizeof(int64_t) * (size_t)x->n));
    }
    if (!same) kt_fuzz_broken("train_state", "a state saved again loads differently (step %lld)", (long long)a->step);
    kt_train_state_free(&b);
    unlink(path);
}

int kt_fuzz_train_state(const uint8_t *data, size_t len) {
    if (len < 1) return 0;
    int check_hash = data[0] & 1;
    char path[64];
    int fd = to_memfd(data + 1, len - 1, path);
    if (fd < 0) return 0;
    fz_fill(fz_w, FZ_W, 1.0f);
    fz_fill(fz_b, FZ_B, 2.0f);
    float m0[FZ_W], v0[FZ_W], m1[FZ_B], v1[FZ_B];
    fz_fill(m0, FZ_W, 10.0f), fz_fill(v0, FZ_W, 20.0f), fz_fill(m1, FZ_B, 30.0f), fz_fill(v1, FZ_B, 40.0f);
    float *m[2] = {m0, m1}, *v[2] = {v0, v1};
    kt_train_state st;
    kt_err err = {0};
    if (kt_train_state_load(path, fz_params, 2, m, v, check_hash, &st, &err) == KT_OK) {
        if (st.n_rng < 0 || st.n_rng > KT_TS_MAX_RNG || st.n_arrays < 0 || st.n_arrays > KT_TS_MAX_ARRAYS)
            kt_fuzz_broken("train_state", "%d rng streams, %d arrays", st.n_rng, st.n_arrays);
        for (int i = 0; i < st.n_arrays; i++)
            if (st.arrays[i].n < 0 || (st.arrays[i].n > 0 && !st.arrays[i].data))
                kt_fuzz_broken("train_state", "array %s of %lld without data", st.arrays[i].name, (long long)st.arrays[i].n);
        state_roundtrip(&st, m, v);
        kt_train_state_free(&st);
    } else {
        if (!err.msg[0]) kt_fuzz_broken("train_state", "refused without a message");
        if (!fz_same(m0, FZ_W, 10.0f) || !fz_same(v0, FZ_W, 20.0f) || !fz_same(m1, FZ_B, 30.0f) || !fz_same(v1, FZ_B, 40.0f))
            kt_fuzz_broken("train_state", "a failed load changed the moments (%s)", err.msg);
    }
    close(fd);
    return 0;
}

/* The seeds of the two targets above: a valid weights file and a valid state for fz_params. */
int kt_fuzz_write_seeds(const char *weights_path, const char *state_path) {
    fz_fill(fz_w, FZ_W, 1.0f);
    fz_fill(fz_b, FZ_B, 2.0f);
    kt_err err = {0};
    if (kt_model_save(weights_path, fz_params, 2, KT_ST_F32, NULL, &err) != KT_OK) return -1;
    float m0[FZ_W], v0[FZ_W], m1[FZ_B], v1[FZ_B];
    fz_fill(m0, FZ_W, 0.5f), fz_fill(v0, FZ_W, 0.25f), fz_fill(m1, FZ_B, 0.125f), fz_fill(v1, FZ_B, 1.0f);
    float *const m[2] = {m0, m1}, *const v[2] = {v0, v1};
    kt_train_state st;
    kt_train_state_init(&st);
    st.step = 12, st.epoch = 1, st.fold = 0, st.loss_scale = 65536.0;
    kt_rng r;
    kt_rng_seed(&r, 7);
    int64_t order[5] = {4, 0, 3, 1, 2};
    int rc = kt_train_state_set_rng(&st, "data", &r, &err) == KT_OK &&
                     kt_train_state_set_array(&st, "order", order, 5, &err) == KT_OK &&
                     kt_train_state_set_config(&st, "{\"lr\": 0.001}", &err) == KT_OK &&
                     kt_train_state_save(state_path, fz_params, 2, m, v, &st, &err) == KT_OK
                 ? 0
                 : -1;
    kt_train_state_free(&st);
    return rc;
}
