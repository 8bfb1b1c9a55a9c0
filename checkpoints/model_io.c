/* Model parameters <-> safetensors with timm's names: validate everything, then copy. */
#include "checkpoints/model_io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t kt_param_numel(const kt_param_ref *p) {
    int64_t n = 1;
    for (int i = 0; i < p->ndim; i++) n *= p->shape[i];
    return n;
}

int64_t kt_params_count(const kt_param_ref *params, int n) {
    int64_t t = 0;
    for (int i = 0; i < n; i++) t += kt_param_numel(&params[i]);
    return t;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < len) snprintf(buf + at, len - at, "]");
}

static int same_shape(int nd, const int64_t *a, int nd2, const int64_t *b) {
    if (nd != nd2) return 0;
    for (int i = 0; i < nd; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int shape_ok(const kt_param_ref *p, const kt_st_tensor *t) {
    return same_shape(p->ndim, p->shape, t->ndim, t->shape) ||
           (p->file_ndim > 0 && same_shape(p->file_ndim, p->file_shape, t->ndim, t->shape));
}

/* Appends printf-style text to a bounded buffer (silently truncating). */
static void appendf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...) {
    size_t at = strnlen(buf, len);
    if (at + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + at, len - at, fmt, ap);
    va_end(ap);
}

/* Why parameter p cannot be loaded from t (NULL t: missing); "" when it can. */
static void param_problem(const kt_st_file *f, const kt_param_ref *p, const kt_st_tensor *t, const char *full,
                          char *why, size_t len) {
    why[0] = '\0';
    if (!t) {
        snprintf(why, len, "parameter '%s' is missing from the file", full);
        return;
    }
    if (t->dtype != KT_ST_F32 && t->dtype != KT_ST_F16 && t->dtype != KT_ST_BF16) {
        snprintf(why, len, "tensor '%s' has dtype %s; a parameter must be F32, F16 or BF16", full,
                 kt_st_dtype_name(t->dtype));
        return;
    }
    if (!shape_ok(p, t)) {
        char fs[128], ms[128], ms2[128];
        fmt_shape(fs, sizeof fs, t->ndim, t->shape);
        fmt_shape(ms, sizeof ms, p->ndim, p->shape);
        if (p->file_ndim > 0) {
            fmt_shape(ms2, sizeof ms2, p->file_ndim, p->file_shape);
            snprintf(why, len, "tensor '%s' has shape %s in the file, the model expects %s or %s", full, fs, ms, ms2);
        } else snprintf(why, len, "tensor '%s' has shape %s in the file, the model expects %s", full, fs, ms);
    }
    (void)f;
}

static int has_prefix(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

kt_status kt_model_load_from(const kt_st_file *f, const char *prefix, const kt_param_ref *params, int n,
                             kt_load_mode mode, kt_load_report *rep, kt_err *err) {
    kt_load_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->file_classes = -1;
    if (!prefix) prefix = "";
    size_t pl = strlen(prefix);
    const kt_st_tensor **src = calloc((size_t)n + 1, sizeof *src);
    char *used = calloc((size_t)f->n_tensors + 1, 1);
    char *full = malloc(4096);
    if (!src || !used || !full) {
        free(src);
        free(used);
        free(full);
        return kt_err_set(err, KT_ERR_NOMEM, "loading %s: no memory", f->path);
    }
    char first[1024] = "", why[1024], missing[512] = "";
    int n_missing = 0, n_bad = 0;
    for (int i = 0; i < n; i++) {
        const kt_param_ref *p = &params[i];
        snprintf(full, 4096, "%s%s", prefix, p->name);
        const kt_st_tensor *t = kt_st_find(f, full);
        if (t) used[t - f->tensors] = 1;
        if (!strcmp(p->name, "head.fc.weight") && t && t->ndim >= 1) rep->file_classes = t->shape[0];
        param_problem(f, p, t, full, why, sizeof why);
        int dtype_bad = t && why[0] && t->dtype != KT_ST_F32 && t->dtype != KT_ST_F16 && t->dtype != KT_ST_BF16;
        if (why[0] && mode == KT_LOAD_FINETUNE && p->is_head && !dtype_bad) {
            rep->n_kept++; /* a new head: keep the model's fresh values */
            continue;
        }
        if (why[0]) {
            if (!first[0]) snprintf(first, sizeof first, "%s", why);
            if (!t) {
                if (n_missing < 4) appendf(missing, sizeof missing, "%s'%s'", n_missing ? ", " : "", p->name);
                n_missing++;
            }
            n_bad++;
            continue;
        }
        src[i] = t;
    }
    char unexpected[512] = "";
    int n_unexp = 0;
    for (int i = 0; i < f->n_tensors; i++)
        if (!used[i] && has_prefix(f->tensors[i].name, prefix)) {
            if (n_unexp < 4) appendf(unexpected, sizeof unexpected, "%s'%s'", n_unexp ? ", " : "", f->tensors[i].name + pl);
            n_unexp++;
        }
    kt_status st = KT_OK;
    int n_problems = n_bad + (mode == KT_LOAD_STRICT ? n_unexp : 0);
    if (n_problems > 0) {
        if (!first[0]) {
            for (int i = 0; i < f->n_tensors && !first[0]; i++)
                if (!used[i] && has_prefix(f->tensors[i].name, prefix))
                    snprintf(first, sizeof first, "unexpected tensor '%s' (the model has no such parameter)",
                             f->tensors[i].name);
        }
        char tail[1200] = "";
        if (n_problems > 1) {
            appendf(tail, sizeof tail, "; in all:");
            if (n_missing)
                appendf(tail, sizeof tail, " %d missing (%s%s)", n_missing, missing, n_missing > 4 ? ", ..." : "");
            if (n_bad > n_missing) appendf(tail, sizeof tail, " %d of a wrong shape or dtype", n_bad - n_missing);
            if (n_unexp)
                appendf(tail, sizeof tail, " %d unexpected (%s%s)", n_unexp, unexpected, n_unexp > 4 ? ", ..." : "");
        }
        st = kt_err_set(err, n_bad ? (n_missing == n_bad ? KT_ERR_NOTFOUND : KT_ERR_SHAPE) : KT_ERR_FORMAT,
                        "%s: %s%s [%s load of %d parameters%s%s]", f->path, first, tail,
                        mode == KT_LOAD_STRICT ? "strict" : "fine-tuning", n, pl ? " under prefix " : "", prefix);
    } else {
        kt_st_dtype dts[3] = {KT_ST_F32, KT_ST_F16, KT_ST_BF16};
        int count[3] = {0, 0, 0};
        for (int i = 0; i < n; i++) {
            if (!src[i]) continue;
            kt_st_to_f32(src[i]->dtype, src[i]->data, params[i].data, kt_param_numel(&params[i]));
            rep->n_loaded++;
            for (int k = 0; k < 3; k++) count[k] += src[i]->dtype == dts[k];
        }
        rep->n_ignored = n_unexp;
        rep->head_replaced = rep->n_kept > 0;
        appendf(rep->text, sizeof rep->text, "loaded %d of %d parameters from %s (", rep->n_loaded, n, f->path);
        int k0 = 1;
        for (int k = 0; k < 3; k++)
            if (count[k]) {
                appendf(rep->text, sizeof rep->text, "%s%d %s%s", k0 ? "" : ", ", count[k], kt_st_dtype_name(dts[k]),
                        dts[k] == KT_ST_F32 ? "" : " converted to f32");
                k0 = 0;
            }
        appendf(rep->text, sizeof rep->text, ")\n");
        if (rep->head_replaced) {
            appendf(rep->text, sizeof rep->text, "new classifier head: ");
            if (rep->file_classes >= 0) appendf(rep->text, sizeof rep->text, "the file's head has %lld classes, ",
                                                (long long)rep->file_classes);
            else appendf(rep->text, sizeof rep->text, "the file has no head, ");
            appendf(rep->text, sizeof rep->text, "so %d head parameter%s keep%s the model's fresh initialisation (",
                    rep->n_kept, rep->n_kept > 1 ? "s" : "", rep->n_kept > 1 ? "" : "s");
            int k1 = 1;
            for (int i = 0; i < n; i++)
                if (params[i].is_head && !src[i]) {
                    appendf(rep->text, sizeof rep->text, "%s%s", k1 ? "" : ", ", params[i].name);
                    k1 = 0;
                }
            appendf(rep->text, sizeof rep->text, ")\n");
        }
        if (n_unexp)
            appendf(rep->text, sizeof rep->text, "ignored %d tensor%s the model does not have (%s%s)\n", n_unexp,
                    n_unexp > 1 ? "s" : "", unexpected, n_unexp > 4 ? ", ..." : "");
    }
    free(src);
    free(used);
    free(full);
    return st;
}

kt_status kt_model_load(const char *path, const char *prefix, const kt_param_ref *params, int n, kt_load_mode mode,
                        kt_load_report *rep, kt_err *err) {
    kt_st_file f;
    kt_status st = kt_st_open(&f, path, err);
    if (st != KT_OK) return st;
    st = kt_model_load_from(&f, prefix, params, n, mode, rep, err);
    kt_st_close(&f);
    return st;
}

kt_status kt_model_add_to_writer(kt_st_writer *w, const char *prefix, const kt_param_ref *params, int n,
                                 kt_st_dtype dtype, kt_err *err) {
    if (dtype != KT_ST_F32 && dtype != KT_ST_F16 && dtype != KT_ST_BF16)
        return kt_err_set(err, KT_ERR_ARG, "parameters are saved as F32, F16 or BF16, not %s", kt_st_dtype_name(dtype));
    if (!prefix) prefix = "";
    char name[4096];
    for (int i = 0; i < n; i++) {
        const kt_param_ref *p = &params[i];
        if (!p->name || !p->data || p->ndim < 0 || p->ndim > KT_PARAM_MAX_DIMS || p->file_ndim < 0 ||
            p->file_ndim > KT_PARAM_MAX_DIMS)
            return kt_err_set(err, KT_ERR_ARG, "parameter %d (%s): no name, no data or a bad rank", i,
                              p->name ? p->name : "unnamed");
        int nd = p->file_ndim > 0 ? p->file_ndim : p->ndim;
        const int64_t *shape = p->file_ndim > 0 ? p->file_shape : p->shape;
        int64_t fnum = 1;
        for (int d = 0; d < nd; d++) fnum *= shape[d];
        if (fnum != kt_param_numel(p))
            return kt_err_set(err, KT_ERR_SHAPE, "parameter '%s': file_shape and shape hold different element counts",
                              p->name);
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        kt_status st = kt_st_writer_add(w, name, dtype, nd, shape, KT_ST_F32, p->data, err);
        if (st != KT_OK) return st;
    }
    return KT_OK;
}

kt_status kt_model_save(const char *path, const kt_param_ref *params, int n, kt_st_dtype dtype, const kt_ckpt_meta *meta,
                        kt_err *err) {
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_status st = kt_model_add_to_writer(&w, NULL, params, n, dtype, err);
    if (st == KT_OK && meta) st = kt_ckpt_meta_to_writer(meta, &w, err);
    if (st == KT_OK) st = kt_st_writer_save(&w, path, err);
    else kt_err_prefix(err, "saving %s: ", path);
    kt_st_writer_free(&w);
    return st;
}

/* 64-bit mixing (splitmix64 finaliser) over 8-byte words: fast enough for 350 MB of weights. */
static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

uint64_t kt_params_hash(const kt_param_ref *params, int n) {
    uint64_t h = 0x4b54u;
    for (int i = 0; i < n; i++) {
        const kt_param_ref *p = &params[i];
        for (const char *c = p->name; *c; c++) h = mix(h, (uint8_t)*c);
        for (int d = 0; d < p->ndim; d++) h = mix(h, (uint64_t)p->shape[d]);
        int64_t ne = kt_param_numel(p);
        const uint8_t *b = (const uint8_t *)p->data;
        int64_t nb = ne * 4, k = 0;
        for (; k + 8 <= nb; k += 8) {
            uint64_t x;
            memcpy(&x, b + k, 8);
            h = mix(h, x);
        }
        if (k < nb) {
            uint64_t x = 0;
            memcpy(&x, b + k, (size_t)(nb - k));
            h = mix(h, x);
        }
    }
    return h;
}
