/* Fuzz entry points: see fuzz_targets.h. */
#include "fuzz_targets.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/model_io.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/train_state.h"
#include "datasets/csv.h"
#include "datasets/image.h"
#include "datasets/roboflow.h"
#include "serve/diet.h"
#include "serve/diet_json.h"
#include "serve/diet_library.h"
#include "serve/http.h"
#include "serve/http_client.h"
#include "serve/predict.h"
#include "nets/model.h"

/* A broken invariant: say which, then abort so that the fuzzer (or ctest) records the input. */
__attribute__((format(printf, 2, 3), noreturn)) static void broken(const char *target, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz %s: ", target);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

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

/* An accepted file written again by our writer (same names, dtypes, shapes, bytes, metadata) must
 * read back equal: names and metadata go through the writer's JSON escaping. Written to /dev/shm
 * (the writer renames a temporary file into place, which an in-memory file cannot do). */
static void st_roundtrip(const kt_st_file *f) {
    char path[96];
    snprintf(path, sizeof path, "/dev/shm/kt_fuzz_roundtrip.%d.safetensors", (int)getpid());
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
    if (ok && kt_st_writer_save(&w, path, &err) != KT_OK) broken("safetensors", "cannot write it again: %s", err.msg);
    kt_st_writer_free(&w);
    if (!ok) return;
    kt_st_file g;
    if (kt_st_open(&g, path, &err) != KT_OK) broken("safetensors", "our own rewrite does not read back: %s", err.msg);
    if (g.n_tensors != f->n_tensors || g.n_meta != f->n_meta)
        broken("safetensors", "rewrite has %d tensors and %d metadata keys, the file %d and %d", g.n_tensors, g.n_meta,
               f->n_tensors, f->n_meta);
    for (int i = 0; i < f->n_tensors; i++) {
        const kt_st_tensor *a = &f->tensors[i], *b = kt_st_find(&g, a->name);
        if (!b || b->dtype != a->dtype || b->ndim != a->ndim || memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) ||
            b->nbytes != a->nbytes || (a->nbytes && memcmp(b->data, a->data, a->nbytes)))
            broken("safetensors", "tensor [%s] differs after a rewrite", a->name);
    }
    for (int i = 0; i < f->n_meta; i++) {
        const char *v = kt_st_meta(&g, f->meta_keys[i]);
        if (!v || strcmp(v, f->meta_vals[i])) broken("safetensors", "metadata [%s] differs after a rewrite", f->meta_keys[i]);
    }
    kt_st_close(&g);
    unlink(path);
}

/* Checkpoint metadata read from a file, written by kt_ckpt_meta_to_writer and read again, must
 * give the same fields: class names and metrics go through our JSON writing. */
static void meta_roundtrip(const kt_ckpt_meta *m) {
    char path[96];
    snprintf(path, sizeof path, "/dev/shm/kt_fuzz_meta.%d.safetensors", (int)getpid());
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err = {0};
    if (kt_ckpt_meta_to_writer(m, &w, &err) != KT_OK || kt_st_writer_save(&w, path, &err) != KT_OK)
        broken("safetensors", "metadata read from a file cannot be written again: %s", err.msg);
    kt_st_writer_free(&w);
    kt_st_file g;
    kt_ckpt_meta b;
    if (kt_st_open(&g, path, &err) != KT_OK) broken("safetensors", "rewritten metadata does not open: %s", err.msg);
    if (kt_ckpt_meta_from_file(&g, &b, &err) != KT_OK) broken("safetensors", "rewritten metadata does not read: %s", err.msg);
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
    if (!same) broken("safetensors", "checkpoint metadata differs after a rewrite (arch %s, %d classes)", m->arch ? m->arch : "-", m->n_classes);
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
            broken("safetensors", "accepted a header of %llu bytes in a %zu-byte file", (unsigned long long)f.header_len,
                   len);
        const uint8_t *lo = (const uint8_t *)f.map + 8 + f.header_len, *hi = (const uint8_t *)f.map + f.map_len;
        float *buf = NULL;
        for (int i = 0; i < f.n_tensors; i++) {
            const kt_st_tensor *t = &f.tensors[i];
            if (t->nbytes != (uint64_t)t->numel * (uint64_t)kt_st_dtype_size(t->dtype))
                broken("safetensors", "tensor %s: %llu bytes for %lld elements", t->name, (unsigned long long)t->nbytes,
                       (long long)t->numel);
            if (t->nbytes && (t->data < lo || t->data > hi || t->nbytes > (uint64_t)(hi - t->data)))
                broken("safetensors", "tensor %s lies outside the data section", t->name);
            if (kt_st_find(&f, t->name) != t) broken("safetensors", "kt_st_find(%s) finds another tensor", t->name);
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
                broken("safetensors", "metadata accepted %d classes", m.n_classes);
            for (int i = 0; m.class_names && i < m.n_classes; i++)
                if (!m.class_names[i]) broken("safetensors", "class name %d missing", i);
            meta_roundtrip(&m);
        }
        kt_ckpt_meta_free(&m);
        st_roundtrip(&f);
        kt_st_close(&f);
    } else if (!err.msg[0]) {
        broken("safetensors", "refused a file without saying why");
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
        if (!err.msg[0]) broken("weights", "refused without a message");
        if (!fz_same(fz_w, FZ_W, 100.0f) || !fz_same(fz_b, FZ_B, 200.0f))
            broken("weights", "a failed load changed the parameters (%s)", err.msg);
    } else if (rep.n_loaded + rep.n_kept != 2 || (mode == KT_LOAD_STRICT && rep.n_kept)) {
        broken("weights", "loaded %d and kept %d of 2 parameters", rep.n_loaded, rep.n_kept);
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
    snprintf(path, sizeof path, "/dev/shm/kt_fuzz_state.%d.safetensors", (int)getpid());
    kt_err err = {0};
    if (kt_train_state_save(path, fz_params, 2, m, v, a, &err) != KT_OK)
        broken("train_state", "a state that loaded cannot be saved again: %s", err.msg);
    float m0[FZ_W], v0[FZ_W], m1[FZ_B], v1[FZ_B];
    float *m2[2] = {m0, m1}, *v2[2] = {v0, v1};
    kt_train_state b;
    if (kt_train_state_load(path, fz_params, 2, m2, v2, 1, &b, &err) != KT_OK)
        broken("train_state", "a state saved again does not load: %s", err.msg);
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
    if (!same) broken("train_state", "a state saved again loads differently (step %lld)", (long long)a->step);
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
            broken("train_state", "%d rng streams, %d arrays", st.n_rng, st.n_arrays);
        for (int i = 0; i < st.n_arrays; i++)
            if (st.arrays[i].n < 0 || (st.arrays[i].n > 0 && !st.arrays[i].data))
                broken("train_state", "array %s of %lld without data", st.arrays[i].name, (long long)st.arrays[i].n);
        state_roundtrip(&st, m, v);
        kt_train_state_free(&st);
    } else {
        if (!err.msg[0]) broken("train_state", "refused without a message");
        if (!fz_same(m0, FZ_W, 10.0f) || !fz_same(v0, FZ_W, 20.0f) || !fz_same(m1, FZ_B, 30.0f) || !fz_same(v1, FZ_B, 40.0f))
            broken("train_state", "a failed load changed the moments (%s)", err.msg);
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

/* ---- CSV ------------------------------------------------------------------------------------- */
/* The record as kt_csv_write_field writes it (the folds file of a run) must read back as the same
 * fields. A record of one empty field is a blank line, which readers skip: left out. */
static void csv_roundtrip(const kt_csv *c) {
    if (c->n_fields == 1 && !c->fields[0][0]) return;
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    if (!f) return;
    for (int i = 0; i < c->n_fields; i++) {
        if (i) fputc(',', f);
        kt_csv_write_field(f, c->fields[i]);
    }
    fputc('\n', f);
    if (fclose(f) != 0) return;
    kt_csv back;
    kt_csv_init(&back, text, tlen);
    kt_err err = {0};
    int line, r = kt_csv_next(&back, &line, "roundtrip.csv", &err);
    if (r != 1 || back.n_fields != c->n_fields)
        broken("csv", "a record of %d fields written as [%s] reads back as %d fields (%s)", c->n_fields, text,
               r == 1 ? back.n_fields : -1, err.msg);
    for (int i = 0; i < c->n_fields; i++)
        if (strcmp(back.fields[i], c->fields[i]))
            broken("csv", "field %d [%s] written as [%s] reads back as [%s]", i, c->fields[i], text, back.fields[i]);
    if (kt_csv_next(&back, &line, "roundtrip.csv", &err) != 0) broken("csv", "one record written as [%s] reads as more", text);
    kt_csv_free(&back);
    free(text);
}

int kt_fuzz_csv(const uint8_t *data, size_t len) {
    kt_csv c;
    kt_csv_init(&c, (const char *)data, len);
    kt_err err = {0};
    int line = 0, prev = 0, r;
    while ((r = kt_csv_next(&c, &line, "fuzz.csv", &err)) == 1) {
        if (line < prev) broken("csv", "record on line %d after one on line %d", line, prev);
        prev = line;
        size_t total = 0;
        for (int i = 0; i < c.n_fields; i++) total += strlen(c.fields[i]); /* every field NUL-terminated */
        if (total > len) broken("csv", "fields of %zu bytes from %zu bytes of text", total, len);
        csv_roundtrip(&c);
    }
    if (r == -1 && !err.msg[0]) broken("csv", "an error without a message");
    kt_csv_free(&c);
    return 0;
}

/* ---- JPEG / PNG ------------------------------------------------------------------------------ */
/* One decoder for the process, as each loader thread keeps one (NULL if it cannot be made). */
static kt_decoder *decoder(void) {
    static kt_decoder dec;
    static int state; /* 0 not made, 1 ready, -1 failed */
    kt_err err;
    if (!state) state = kt_decoder_init(&dec, &err) == KT_OK ? 1 : -1;
    return state > 0 ? &dec : NULL;
}

int kt_fuzz_image(const uint8_t *data, size_t len) {
    kt_decoder *dec = decoder();
    if (!dec) return 0;
    kt_err err = {0};
    /* 0.26 Mpx keeps each run fast (the limit is the decompression-bomb guard, itself under test) */
    kt_decode_opts o = {.max_pixels = 1 << 18};
    kt_image_header hdr;
    kt_status ps = kt_image_probe(dec, data, len, &o, &hdr, &err);
    kt_image im;
    kt_image_init(&im);
    kt_status ds = kt_image_decode(dec, data, len, &o, &im, &err);
    if (ds == KT_OK) {
        if (ps != KT_OK) broken("image", "decoded a %dx%d image whose header the probe refused", im.w, im.h);
        if (im.w != hdr.w || im.h != hdr.h)
            broken("image", "the probe says %dx%d (orientation %d), the decoder gives %dx%d", hdr.w, hdr.h,
                   hdr.orientation, im.w, im.h);
        if (!im.px || im.cap < (size_t)im.w * im.h * 3) broken("image", "a %dx%d image in %zu bytes", im.w, im.h, im.cap);
        unsigned sum = 0; /* read every pixel: uninitialised or freed bytes show under the sanitizers */
        for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) sum += im.px[i];
        if (sum == 0xFFFFFFFFu) fputc(' ', stderr);
        /* The scaled decode (training's fast path) keeps the orientation and at least the asked size. */
        kt_decode_opts so = o;
        so.min_w = so.min_h = 8;
        kt_image small;
        kt_image_init(&small);
        if (kt_image_decode(dec, data, len, &so, &small, &err) == KT_OK) {
            int full = im.w < 8 || im.h < 8; /* nothing smaller would keep 8x8: the full size */
            if (small.w > im.w || small.h > im.h || (full && (small.w != im.w || small.h != im.h)) ||
                (!full && (small.w < 8 || small.h < 8)) || (im.w > im.h && small.w < small.h) ||
                (im.w < im.h && small.w > small.h))
                broken("image", "scaled decode %dx%d of a %dx%d image", small.w, small.h, im.w, im.h);
        }
        kt_image_free(&small);
    } else if (!err.msg[0]) {
        broken("image", "refused without saying why");
    }
    kt_image_free(&im);
    return 0;
}

/* ---- a Roboflow export: the input becomes train/_classes.csv [NUL valid/_classes.csv] ------------ */
static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static char ds_root[64];
static const char *const ds_splits[] = {"train", "valid"}, *const ds_files[] = {"a.jpg", "b.jpg", "c.png", "_classes.csv"};

static void ds_remove(void) { /* at exit: the folder and everything in it */
    char p[160];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            snprintf(p, sizeof p, "%s/%s/%s", ds_root, ds_splits[i], ds_files[j]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/%s", ds_root, ds_splits[i]);
        rmdir(p);
    }
    rmdir(ds_root);
}

int kt_fuzz_dataset(const uint8_t *data, size_t len) {
    const char *root = ds_root;
    char p[160];
    if (!ds_root[0]) { /* a folder for the process: a.jpg, b.jpg and c.png exist in train/ and valid/ */
        snprintf(ds_root, sizeof ds_root, "/tmp/kt_fuzz_dataset.XXXXXX");
        if (!mkdtemp(ds_root)) broken("dataset", "cannot make a temporary folder");
        atexit(ds_remove);
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s", root, ds_splits[i]);
            mkdir(p, 0755);
            for (int j = 0; j < 3; j++) {
                snprintf(p, sizeof p, "%s/%s/%s", root, ds_splits[i], ds_files[j]);
                write_file(p, "x", 1);
            }
        }
    }
    if (len < 1) return 0;
    kt_dataset_opts o;
    kt_dataset_opts_default(&o);
    o.strict = data[0] & 1;
    o.labels = (kt_label_kind)((data[0] >> 1) % 3);
    o.verify = KT_VERIFY_EXISTS;
    o.max_messages = 4;
    data++, len--;
    const uint8_t *nul = memchr(data, 0, len);
    size_t tlen = nul ? (size_t)(nul - data) : len;
    snprintf(p, sizeof p, "%s/train/_classes.csv", root);
    if (!write_file(p, data, tlen)) return 0;
    snprintf(p, sizeof p, "%s/valid/_classes.csv", root);
    if (nul) {
        if (!write_file(p, nul + 1, len - tlen - 1)) return 0;
    } else {
        unlink(p);
    }
    kt_dataset ds;
    kt_err err = {0};
    kt_status st = kt_dataset_open(&ds, root, &o, &err);
    if (getenv("KT_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz dataset: %s\n", st == KT_OK ? "opened" : err.msg);
    if (st == KT_OK) {
        if (getenv("KT_FUZZ_VERBOSE"))
            fprintf(stderr, "  %d classes, %lld items, %lld bad rows\n", ds.n_classes, (long long)ds.n_items,
                    (long long)ds.n_bad_rows);
        if (ds.n_classes < 1) broken("dataset", "opened with %d classes", ds.n_classes);
        for (int c = 0; c < ds.n_classes; c++) {
            if (!ds.class_names[c]) broken("dataset", "class %d has no name", c);
            for (int d = 0; d < c; d++)
                if (!strcmp(ds.class_names[c], ds.class_names[d])) broken("dataset", "class %s twice", ds.class_names[c]);
        }
        int64_t total = 0;
        for (int sp = 0; sp < KT_SPLIT_COUNT; sp++) {
            if (ds.split_count[sp] && ds.split_first[sp] != total)
                broken("dataset", "split %d starts at %lld, not %lld", sp, (long long)ds.split_first[sp], (long long)total);
            total += ds.split_count[sp];
        }
        if (total != ds.n_items) broken("dataset", "splits hold %lld items of %lld", (long long)total, (long long)ds.n_items);
        if (ds.n_messages > o.max_messages) broken("dataset", "%d messages kept, limit %d", ds.n_messages, o.max_messages);
        for (int64_t i = 0; i < ds.n_items; i++) {
            const kt_ds_item *it = &ds.items[i];
            const float *t = kt_dataset_target(&ds, i);
            int ones = 0;
            for (int c = 0; c < ds.n_classes; c++) {
                if (t[c] != 0.0f && t[c] != 1.0f) broken("dataset", "item %lld: target %g", (long long)i, t[c]);
                ones += t[c] == 1.0f;
            }
            if (ds.kind == KT_LABELS_SINGLE && (ones != 1 || it->label < 0 || it->label >= ds.n_classes || t[it->label] != 1.0f))
                broken("dataset", "single-label item %lld: label %d with %d ones", (long long)i, it->label, ones);
            if (ds.kind == KT_LABELS_MULTI && it->label != -1)
                broken("dataset", "multi-label item %lld has label %d", (long long)i, it->label);
            if (kt_dataset_find(&ds, it->path) != i) broken("dataset", "item %s listed twice", it->path);
        }
        kt_dataset_close(&ds);
    } else if (!err.msg[0]) {
        broken("dataset", "refused without a message");
    }
    return 0;
}

/* ---- prediction on uploaded bytes: decode, EXIF, resize and crop, a small CNN's forward -------- */
static kt_predictor *pred;
static char pred_dir[64];

static void pred_stop(void) {
    kt_predictor_free(pred);
    pred = NULL;
    char p[128];
    snprintf(p, sizeof p, "%s/model.safetensors", pred_dir);
    unlink(p);
    rmdir(pred_dir);
}

/* A 4-class smallcnn at 32 px, initialised (not trained) and saved as a checkpoint, then opened as
 * the server opens one. */
static kt_predictor *predictor(void) {
    static int state;
    if (state) return pred;
    state = 1;
    snprintf(pred_dir, sizeof pred_dir, "/tmp/kt_fuzz_predict.XXXXXX");
    if (!mkdtemp(pred_dir)) broken("predict", "cannot make a temporary folder");
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", pred_dir);
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = 4, .batch = 1, .img_h = 32, .img_w = 32};
    kt_err err = {0};
    kt_ckpt_meta meta;
    kt_ckpt_meta_init(&meta);
    static const char *const names[] = {"LEVEL_2", "LEVEL_3", "LEVEL_4", "LEVEL_5"};
    meta.img_h = meta.img_w = 32;
    if (kt_model_create(&m, &o, NULL, &err) || kt_model_init_weights(&m, 1, &err) ||
        kt_ckpt_meta_set_classes(&meta, names, 4, &err) || kt_model_save_weights(&m, path, &meta, &err))
        broken("predict", "cannot make the model: %s", err.msg);
    kt_model_free(&m);
    kt_ckpt_meta_free(&meta);
    const char *paths[1] = {path};
    if (kt_predictor_open(&pred, paths, 1, "cpu", 1, &err)) broken("predict", "cannot open the model: %s", err.msg);
    atexit(pred_stop);
    return pred;
}

int kt_fuzz_predict(const uint8_t *data, size_t len) {
    kt_predictor *p = predictor();
    kt_decoder *dec = decoder();
    if (!dec) return 0;
    kt_err err = {0};
    /* images over 1 Mpx are left out: the decoder's own limit (100 Mpx) is a guard, not a fuzz target */
    kt_decode_opts small = {.max_pixels = 1 << 20};
    kt_image_header hdr;
    if (kt_image_probe(dec, data, len, &small, &hdr, &err) != KT_OK) return 0;
    float probs[4] = {-1, -1, -1, -1};
    if (kt_predictor_run_bytes(p, data, len, probs, &err) == KT_OK) {
        double sum = 0;
        for (int i = 0; i < 4; i++) {
            if (!(probs[i] >= 0.0f && probs[i] <= 1.0f)) broken("predict", "a %dx%d image: probability %g", hdr.w, hdr.h, probs[i]);
            sum += probs[i];
        }
        if (fabs(sum - 1.0) > 1e-4) broken("predict", "a %dx%d image: probabilities sum to %.6f", hdr.w, hdr.h, sum);
        if (getenv("KT_FUZZ_VERBOSE"))
            fprintf(stderr, "fuzz predict: %dx%d -> %.3f %.3f %.3f %.3f\n", hdr.w, hdr.h, probs[0], probs[1], probs[2], probs[3]);
    } else if (!err.msg[0]) {
        broken("predict", "refused without a message");
    }
    return 0;
}

/* ---- the diet engine ------------------------------------------------------------------------ */
static const kt_meal_lib *default_meals(void) {
    static kt_meal_lib lib;
    static int state; /* 0 not loaded, 1 loaded, -1 failed */
    kt_err err;
    if (!state) state = kt_meal_lib_load_default(&lib, &err) == KT_OK ? 1 : -1;
    if (state < 0) broken("diet", "the embedded meal library does not load");
    return &lib;
}

static const kt_diet_facts *default_facts(void) {
    static kt_diet_facts facts;
    static int state;
    kt_err err;
    if (!state) state = kt_diet_facts_load_default(&facts, &err) == KT_OK ? 1 : -1;
    if (state < 0) broken("diet", "the embedded nutrient facts do not load");
    return &facts;
}

int kt_fuzz_diet(const uint8_t *data, size_t len) {
    const uint8_t *nul = memchr(data, 0, len);
    size_t jlen = nul ? (size_t)(nul - data) : len;
    const char *csv = nul ? (const char *)nul + 1 : "";
    size_t clen = nul ? len - jlen - 1 : 0;
    kt_err err = {0};
    char field[32] = "";
    cJSON *aj = cJSON_ParseWithLength((const char *)data, jlen);
    kt_diet_assessment as;
    int as_ok = aj && kt_diet_assessment_parse(aj, &as, field, &err) == KT_OK;
    if (aj && !as_ok && !err.msg[0]) broken("diet", "assessment refused without a message");
    cJSON_Delete(aj);
    kt_diet_obs *obs = NULL;
    int n = 0;
    err.msg[0] = '\0';
    int h_ok = kt_diet_history_parse_csv(csv, clen, "fuzz_history.csv", &obs, &n, &err) == KT_OK;
    if (!h_ok && !err.msg[0]) broken("diet", "history refused without a message");
    for (int i = 0; h_ok && i < n; i++)
        if (!(obs[i].severity >= 0.0 && obs[i].severity <= 1.0))
            broken("diet", "history line %d accepted with severity %g", i, obs[i].severity);
    if (as_ok && h_ok) {
        if (as.age < KT_DIET_AGE_MIN || as.age > KT_DIET_AGE_MAX || !(as.weight_kg >= KT_DIET_WEIGHT_MIN) ||
            !(as.weight_kg <= KT_DIET_WEIGHT_MAX) || !(as.height_cm >= KT_DIET_HEIGHT_MIN) ||
            !(as.height_cm <= KT_DIET_HEIGHT_MAX))
            broken("diet", "assessment accepted age %d, weight %g, height %g", as.age, as.weight_kg, as.height_cm);
        kt_diet_plan *plan = calloc(1, sizeof *plan);
        if (plan && kt_diet_plan_make(plan, &as, obs, n, default_meals(), default_facts(), 1700000000000000LL, &err) == KT_OK) {
            if (!(plan->confidence >= 0.7 && plan->confidence <= 0.95))
                broken("diet", "confidence %g outside [0.7, 0.95]", plan->confidence);
            for (int k = 0; k < KT_NUT_COUNT; k++) {
                const kt_nutrient_target *t = &plan->targets[k];
                if (!isfinite(t->target) || t->target < 0 || !isfinite(t->recommended) || t->recommended > t->target)
                    broken("diet", "nutrient %d: target %g, recommended %g", k, t->target, t->recommended);
            }
            cJSON *o = kt_diet_plan_to_json(plan, default_facts());
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            free(s);
            cJSON_Delete(o);
        }
        free(plan);
    }
    free(obs);
    return 0;
}

int kt_fuzz_meals(const uint8_t *data, size_t len) {
    kt_meal_lib lib = {0};
    kt_err err = {0};
    if (kt_meal_lib_parse(&lib, (const char *)data, len, "fuzz_meals.json", &err) == KT_OK) {
        if (lib.n_meals <= 0) broken("meals", "accepted a library of %d meals", lib.n_meals);
        for (int i = 0; i < lib.n_meals; i++)
            if (!lib.meals[i].name) broken("meals", "meal %d has no name", i);
    } else if (!err.msg[0]) {
        broken("meals", "refused without a message");
    }
    kt_meal_lib_free(&lib);
    return 0;
}

/* ---- the HTTP API: one server for the process, requests built from the input -------------------- */
static kt_http_server *http_srv;
static char http_dir[64], http_token[512];

void kt_fuzz_http_stop(void) {
    if (!http_srv) return;
    kt_http_stop(http_srv);
    http_srv = NULL;
    char p[128];
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", http_dir, files[i]);
        unlink(p);
    }
    rmdir(http_dir);
}

static void http_log(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "fuzz http server: %s\n", line);
}

static int http_port(void) {
    static int state; /* 0 not started, 1 up, -1 failed */
    if (state) return state > 0 ? kt_http_port(http_srv) : -1;
    state = -1;
    snprintf(http_dir, sizeof http_dir, "/tmp/kt_fuzz_http.XXXXXX");
    if (!mkdtemp(http_dir)) return -1;
    char db[128];
    snprintf(db, sizeof db, "%s/fuzz.db", http_dir);
    /* error lines only: a failing handler or database says why beside the input that made it fail */
    kt_http_config cfg = {.host = "127.0.0.1", .threads = 2, .db_path = db, .log = http_log, .no_access_log = 1,
                          .predictor = predictor()}; /* the predict target's model: uploads run all the way */
    kt_err err = {0};
    if (kt_http_start(&http_srv, &cfg, &err) != KT_OK) broken("http", "the server does not start: %s", err.msg);
    atexit(kt_fuzz_http_stop);
    int port = kt_http_port(http_srv);
    kt_test_resp r;
    kt_test_post_json(port, "/register", NULL, "{\"name\": \"Fuzz\", \"email\": \"fuzz@example.com\", \"password\": \"fuzz-pass-1\"}", &r);
    kt_test_resp_free(&r);
    const char form[] = "username=fuzz@example.com&password=fuzz-pass-1";
    kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", form, sizeof form - 1, 0, &r);
    const cJSON *t = cJSON_GetObjectItem(r.json, "access_token");
    if (r.status != 200 || !cJSON_IsString(t)) broken("http", "cannot sign in: %d %s", r.status, r.body ? r.body : "");
    snprintf(http_token, sizeof http_token, "%s", t->valuestring);
    kt_test_resp_free(&r);
    state = 1;
    return port;
}

int kt_fuzz_http(const uint8_t *data, size_t len) {
    static const char *const paths[] = {"/register", "/token", "/predict", "/history", "/history/1", "/history/0",
                                        "/history/-3", "/history/99999999999999999999", "/history/x",
                                        "/diet/assessment", "/diet/recommendations", "/diet/lifestyle",
                                        "/diet/lifestyle/history", "/diet/food-log", "/diet/progress-analysis",
                                        "/health", "/metrics", "/", "/app.js", "/nowhere", "/history/1/x"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *const types[] = {"application/json", "application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=kt-fuzz", "text/plain"};
    if (len < 2) return 0;
    int port = http_port();
    if (port < 0) return 0;
    const char *path = paths[data[0] % (sizeof paths / sizeof paths[0])];
    const char *method = methods[data[1] & 3];
    int auth = (data[1] >> 2) & 3; /* 0, 1: the valid token; 2: none; 3: a forged one */
    const char *type = types[(data[1] >> 4) & 3];
    data += 2, len -= 2;
    const uint8_t *nul = memchr(data, 0, len);
    size_t qlen = nul ? (size_t)(nul - data) : 0; /* no NUL: all of it is the body */
    const uint8_t *body = nul ? nul + 1 : data;
    size_t blen = nul ? len - qlen - 1 : len;
    /* the query, percent-encoded where a raw byte would end the request line */
    char *target = malloc(strlen(path) + 2 + 3 * qlen + 1);
    if (!target) return 0;
    size_t n = (size_t)sprintf(target, "%s", path);
    if (qlen) target[n++] = '?';
    for (size_t i = 0; i < qlen; i++) {
        uint8_t c = data[i];
        if (c <= 0x20 || c >= 0x7F || c == '#') n += (size_t)sprintf(target + n, "%%%02X", c);
        else target[n++] = (char)c;
    }
    target[n] = '\0';
    char headers[700];
    int hn = snprintf(headers, sizeof headers, "Content-Type: %s\r\n", type);
    if (auth < 2) snprintf(headers + hn, sizeof headers - (size_t)hn, "Authorization: Bearer %s\r\n", http_token);
    else if (auth == 3) snprintf(headers + hn, sizeof headers - (size_t)hn, "Authorization: Bearer eyJ.forged.x\r\n");
    kt_test_resp r;
    kt_test_http(port, method, target, headers, body, blen, 0, &r);
    if (getenv("KT_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz http: %s %s -> %d %.120s\n", method, target, r.status, r.body ? r.body : "");
    if (r.status == 0) broken("http", "no answer to %s %s (%d bytes of body)", method, target, (int)blen);
    /* with a model loaded, any 5xx is a handler, model or database failure */
    if (r.status >= 500)
        broken("http", "%s %s (%s): %d %.300s", method, target, type, r.status, r.body ? r.body : "");
    int page = !strcmp(path, "/") || !strcmp(path, "/app.js");
    if (!page && r.status >= 400 && !cJSON_IsObject(r.json))
        broken("http", "%s %s: %d without a JSON error body: %.200s", method, target, r.status, r.body ? r.body : "");
    kt_test_resp_free(&r);
    free(target);
    return 0;
}

const kt_fuzz_target kt_fuzz_targets[] = {
    {"safetensors", kt_fuzz_safetensors}, {"csv", kt_fuzz_csv},     {"image", kt_fuzz_image},
    {"diet", kt_fuzz_diet},               {"meals", kt_fuzz_meals}, {"http", kt_fuzz_http},
    {"dataset", kt_fuzz_dataset},         {"predict", kt_fuzz_predict},         {"weights", kt_fuzz_weights}, {"train_state", kt_fuzz_train_state},
    {NULL, NULL},
};

const kt_fuzz_target *kt_fuzz_find(const char *name) {
    for (const kt_fuzz_target *t = kt_fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}
