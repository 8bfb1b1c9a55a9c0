/* Checkpoint metadata: our fields <-> the string map of a safetensors header. */
#include "checkpoints/ckpt_meta.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const own_keys[] = {"format", "architecture", "num_classes", "class_names", "image_size",
                                       "mean",   "std",          "epoch",       "metrics"};
enum { N_OWN_KEYS = (int)(sizeof own_keys / sizeof own_keys[0]) };

static int is_own_key(const char *k) {
    for (int i = 0; i < N_OWN_KEYS; i++)
        if (!strcmp(k, own_keys[i])) return 1;
    return 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void kt_ckpt_meta_init(kt_ckpt_meta *m) {
    memset(m, 0, sizeof *m);
    m->epoch = -1;
}

static void free_classes(kt_ckpt_meta *m) {
    if (m->class_names)
        for (int i = 0; i < m->n_classes; i++) free(m->class_names[i]);
    free(m->class_names);
    m->class_names = NULL;
}

void kt_ckpt_meta_free(kt_ckpt_meta *m) {
    if (!m) return;
    free(m->arch);
    free_classes(m);
    free(m->metrics_json);
    for (int i = 0; i < m->n_extra; i++) {
        free(m->extra_keys[i]);
        free(m->extra_vals[i]);
    }
    free(m->extra_keys);
    free(m->extra_vals);
    kt_ckpt_meta_init(m);
}

kt_status kt_ckpt_meta_set_arch(kt_ckpt_meta *m, const char *arch, kt_err *err) {
    char *a = dup_str(arch);
    if (!a) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    free(m->arch);
    m->arch = a;
    return KT_OK;
}

kt_status kt_ckpt_meta_set_classes(kt_ckpt_meta *m, const char *const *names, int n, kt_err *err) {
    if (n <= 0) return kt_err_set(err, KT_ERR_ARG, "checkpoint metadata: %d classes", n);
    char **c = calloc((size_t)n, sizeof(char *));
    if (!c) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    for (int i = 0; i < n; i++)
        if (!names[i] || !(c[i] = dup_str(names[i]))) {
            for (int j = 0; j < i; j++) free(c[j]);
            free(c);
            return kt_err_set(err, names[i] ? KT_ERR_NOMEM : KT_ERR_ARG, "checkpoint metadata: class %d has no name", i);
        }
    free_classes(m);
    m->class_names = c;
    m->n_classes = n;
    return KT_OK;
}

kt_status kt_ckpt_meta_set_metrics(kt_ckpt_meta *m, const char *metrics_json, kt_err *err) {
    cJSON *j = cJSON_Parse(metrics_json);
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok) return kt_err_set(err, KT_ERR_ARG, "checkpoint metadata: metrics are not a JSON object: %.80s", metrics_json);
    char *s = dup_str(metrics_json);
    if (!s) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    free(m->metrics_json);
    m->metrics_json = s;
    return KT_OK;
}

kt_status kt_ckpt_meta_set_extra(kt_ckpt_meta *m, const char *key, const char *value, kt_err *err) {
    if (!key || !*key || !value) return kt_err_set(err, KT_ERR_ARG, "checkpoint metadata: empty key or value");
    if (is_own_key(key))
        return kt_err_set(err, KT_ERR_ARG, "checkpoint metadata: \"%s\" is set through its own field", key);
    char *v = dup_str(value);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    for (int i = 0; i < m->n_extra; i++)
        if (!strcmp(m->extra_keys[i], key)) {
            free(m->extra_vals[i]);
            m->extra_vals[i] = v;
            return KT_OK;
        }
    char **k = realloc(m->extra_keys, (size_t)(m->n_extra + 1) * sizeof *k);
    if (k) m->extra_keys = k;
    char **vv = k ? realloc(m->extra_vals, (size_t)(m->n_extra + 1) * sizeof *vv) : NULL;
    if (vv) m->extra_vals = vv;
    char *kk = vv ? dup_str(key) : NULL;
    if (!kk) {
        free(v);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    }
    m->extra_keys[m->n_extra] = kk;
    m->extra_vals[m->n_extra] = v;
    m->n_extra++;
    return KT_OK;
}

const char *kt_ckpt_meta_get_extra(const kt_ckpt_meta *m, const char *key) {
    for (int i = 0; i < m->n_extra; i++)
        if (!strcmp(m->extra_keys[i], key)) return m->extra_vals[i];
    return NULL;
}

/* Shortest decimal that reads back as the same float ("0.485", not "0.48500001"). */
static void fmt_float(char *buf, size_t len, float x) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if (strtof(buf, NULL) == x) return;
    }
}

static void fmt_vec3(char *buf, size_t len, const float v[3]) {
    char a[32], b[32], c[32];
    fmt_float(a, sizeof a, v[0]);
    fmt_float(b, sizeof b, v[1]);
    fmt_float(c, sizeof c, v[2]);
    snprintf(buf, len, "[%s, %s, %s]", a, b, c);
}

kt_status kt_ckpt_meta_to_writer(const kt_ckpt_meta *m, kt_st_writer *w, kt_err *err) {
    char buf[256];
    kt_status st = kt_st_writer_meta(w, "format", "pt", err);
    if (st == KT_OK && m->arch) st = kt_st_writer_meta(w, "architecture", m->arch, err);
    if (st == KT_OK && m->n_classes > 0) {
        snprintf(buf, sizeof buf, "%d", m->n_classes);
        st = kt_st_writer_meta(w, "num_classes", buf, err);
    }
    if (st == KT_OK && m->class_names) {
        cJSON *arr = cJSON_CreateArray();
        int ok = arr != NULL;
        for (int i = 0; ok && i < m->n_classes; i++) ok = cJSON_AddItemToArray(arr, cJSON_CreateString(m->class_names[i]));
        char *s = ok ? cJSON_PrintUnformatted(arr) : NULL;
        cJSON_Delete(arr);
        if (!s) return kt_err_set(err, KT_ERR_NOMEM, "no memory for class names");
        st = kt_st_writer_meta(w, "class_names", s, err);
        free(s);
    }
    if (st == KT_OK && m->img_h > 0 && m->img_w > 0) {
        snprintf(buf, sizeof buf, "[%d, %d]", m->img_h, m->img_w);
        st = kt_st_writer_meta(w, "image_size", buf, err);
    }
    if (st == KT_OK && m->has_norm) {
        fmt_vec3(buf, sizeof buf, m->mean);
        st = kt_st_writer_meta(w, "mean", buf, err);
        fmt_vec3(buf, sizeof buf, m->std);
        if (st == KT_OK) st = kt_st_writer_meta(w, "std", buf, err);
    }
    if (st == KT_OK && m->epoch >= 0) {
        snprintf(buf, sizeof buf, "%d", m->epoch);
        st = kt_st_writer_meta(w, "epoch", buf, err);
    }
    if (st == KT_OK && m->metrics_json) st = kt_st_writer_meta(w, "metrics", m->metrics_json, err);
    for (int i = 0; st == KT_OK && i < m->n_extra; i++) st = kt_st_writer_meta(w, m->extra_keys[i], m->extra_vals[i], err);
    return st;
}

/* A decimal integer in [lo, hi] and nothing else. */
static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_vec3(const char *s, float out[3], int positive) {
    cJSON *j = cJSON_Parse(s);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) == 3;
    for (int i = 0; ok && i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        ok = cJSON_IsNumber(e) && (!positive || e->valuedouble > 0);
        if (ok) out[i] = (float)e->valuedouble;
    }
    cJSON_Delete(j);
    return ok;
}

static int parse_image_size(const char *s, int *h, int *w) {
    long v;
    if (parse_int(s, 1, 1 << 20, &v)) {
        *h = *w = (int)v;
        return 1;
    }
    cJSON *j = cJSON_Parse(s);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2;
    double d[2] = {0, 0};
    for (int i = 0; ok && i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        ok = cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= (1 << 20) &&
             e->valuedouble == (double)(int)e->valuedouble;
        if (ok) d[i] = e->valuedouble;
    }
    cJSON_Delete(j);
    if (ok) {
        *h = (int)d[0];
        *w = (int)d[1];
    }
    return ok;
}

static kt_status parse_classes(kt_ckpt_meta *m, const char *path, const char *s, kt_err *err) {
    cJSON *j = cJSON_Parse(s);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) == 0) {
        cJSON_Delete(j);
        return kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"class_names\" is not a non-empty JSON list of strings",
                          path);
    }
    int n = cJSON_GetArraySize(j);
    const char **names = calloc((size_t)n, sizeof(char *));
    if (!names) {
        cJSON_Delete(j);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    }
    kt_status st = KT_OK;
    for (int i = 0; i < n && st == KT_OK; i++) {
        const cJSON *e = cJSON_GetArrayItem(j, i);
        if (!cJSON_IsString(e))
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"class_names\" entry %d is not a string", path, i);
        else names[i] = e->valuestring;
    }
    if (st == KT_OK) st = kt_ckpt_meta_set_classes(m, names, n, err);
    free(names);
    cJSON_Delete(j);
    return st;
}

kt_status kt_ckpt_meta_from_file(const kt_st_file *f, kt_ckpt_meta *m, kt_err *err) {
    kt_ckpt_meta_init(m);
    const char *path = f->path;
    kt_status st = KT_OK;
    long num_classes = 0;
    for (int i = 0; i < f->n_meta && st == KT_OK; i++) {
        const char *k = f->meta_keys[i], *v = f->meta_vals[i];
        long iv;
        if (!strcmp(k, "format")) continue; /* "pt": nothing to keep */
        if (!strcmp(k, "architecture")) st = kt_ckpt_meta_set_arch(m, v, err);
        else if (!strcmp(k, "num_classes")) {
            if (!parse_int(v, 1, KT_CKPT_MAX_CLASSES, &num_classes))
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"num_classes\" = \"%.40s\" is not an integer in 1..%d",
                                path, v, KT_CKPT_MAX_CLASSES);
        } else if (!strcmp(k, "class_names")) st = parse_classes(m, path, v, err);
        else if (!strcmp(k, "image_size")) {
            if (!parse_image_size(v, &m->img_h, &m->img_w))
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"image_size\" = \"%.40s\" is not [H, W] or a size",
                                path, v);
        } else if (!strcmp(k, "mean") || !strcmp(k, "std")) {
            int is_std = k[0] == 's';
            if (!parse_vec3(v, is_std ? m->std : m->mean, is_std))
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"%s\" = \"%.40s\" is not a list of 3 numbers%s", path,
                                k, v, is_std ? " > 0" : "");
        } else if (!strcmp(k, "epoch")) {
            if (!parse_int(v, 0, 1000000000L, &iv))
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"epoch\" = \"%.40s\" is not a non-negative integer",
                                path, v);
            else m->epoch = (int)iv;
        } else if (!strcmp(k, "metrics")) {
            st = kt_ckpt_meta_set_metrics(m, v, err);
            if (st != KT_OK)
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"metrics\" is not a JSON object", path);
        } else st = kt_ckpt_meta_set_extra(m, k, v, err);
    }
    const char *ms = kt_st_meta(f, "mean"), *ss = kt_st_meta(f, "std");
    if (st == KT_OK && (ms != NULL) != (ss != NULL))
        st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata has \"%s\" without \"%s\"", path, ms ? "mean" : "std",
                        ms ? "std" : "mean");
    m->has_norm = ms && ss;
    if (st == KT_OK && num_classes > 0) {
        if (m->class_names && m->n_classes != num_classes)
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: metadata \"num_classes\" is %ld but \"class_names\" lists %d", path,
                            num_classes, m->n_classes);
        else m->n_classes = (int)num_classes;
    }
    if (st != KT_OK) kt_ckpt_meta_free(m);
    return st;
}
