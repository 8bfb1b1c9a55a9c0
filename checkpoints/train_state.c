/* Training state for exact resume: AdamW moments, counters, RNG streams, arrays; validated on load. */
#include "checkpoints/train_state.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND "keratrack-train-state"

void kt_train_state_init(kt_train_state *s) {
    memset(s, 0, sizeof *s);
    s->fold = -1;
    s->loss_scale = 1.0;
}

void kt_train_state_free(kt_train_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n_arrays; i++) free(s->arrays[i].data);
    free(s->config_json);
    kt_train_state_init(s);
}

static int name_ok(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n < KT_TS_NAME_MAX;
}

kt_status kt_train_state_set_rng(kt_train_state *s, const char *name, const kt_rng *r, kt_err *err) {
    if (!name_ok(name)) return kt_err_set(err, KT_ERR_ARG, "training state: bad RNG stream name");
    int i = 0;
    while (i < s->n_rng && strcmp(s->rng_names[i], name)) i++;
    if (i == s->n_rng) {
        if (s->n_rng == KT_TS_MAX_RNG)
            return kt_err_set(err, KT_ERR_ARG, "training state: more than %d RNG streams", KT_TS_MAX_RNG);
        snprintf(s->rng_names[i], KT_TS_NAME_MAX, "%s", name);
        s->n_rng++;
    }
    s->rng[i] = *r;
    return KT_OK;
}

const kt_rng *kt_train_state_get_rng(const kt_train_state *s, const char *name) {
    for (int i = 0; i < s->n_rng; i++)
        if (!strcmp(s->rng_names[i], name)) return &s->rng[i];
    return NULL;
}

kt_status kt_train_state_set_array(kt_train_state *s, const char *name, const int64_t *data, int64_t n, kt_err *err) {
    if (!name_ok(name) || n < 0 || (n > 0 && !data)) return kt_err_set(err, KT_ERR_ARG, "training state: bad array");
    int i = 0;
    while (i < s->n_arrays && strcmp(s->arrays[i].name, name)) i++;
    if (i == s->n_arrays && s->n_arrays == KT_TS_MAX_ARRAYS)
        return kt_err_set(err, KT_ERR_ARG, "training state: more than %d arrays", KT_TS_MAX_ARRAYS);
    int64_t *copy = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!copy) return kt_err_set(err, KT_ERR_NOMEM, "training state: no memory for array %s", name);
    if (n > 0) memcpy(copy, data, (size_t)n * sizeof(int64_t));
    if (i == s->n_arrays) {
        snprintf(s->arrays[i].name, KT_TS_NAME_MAX, "%s", name);
        s->n_arrays++;
    } else free(s->arrays[i].data);
    s->arrays[i].data = copy;
    s->arrays[i].n = n;
    return KT_OK;
}

const kt_ts_array *kt_train_state_get_array(const kt_train_state *s, const char *name) {
    for (int i = 0; i < s->n_arrays; i++)
        if (!strcmp(s->arrays[i].name, name)) return &s->arrays[i];
    return NULL;
}

kt_status kt_train_state_set_config(kt_train_state *s, const char *json, kt_err *err) {
    cJSON *j = cJSON_Parse(json);
    int ok = j != NULL;
    cJSON_Delete(j);
    if (!ok) return kt_err_set(err, KT_ERR_ARG, "training state: config is not valid JSON");
    size_t n = strlen(json) + 1;
    char *c = malloc(n);
    if (!c) return kt_err_set(err, KT_ERR_NOMEM, "training state: no memory");
    memcpy(c, json, n);
    free(s->config_json);
    s->config_json = c;
    return KT_OK;
}

kt_status kt_train_state_path(const char *weights_path, char *out, size_t len, kt_err *err) {
    const char *ext = ".safetensors";
    size_t n = strlen(weights_path), el = strlen(ext);
    size_t stem = (n > el && !strcmp(weights_path + n - el, ext)) ? n - el : n;
    if (stem + strlen(".state.safetensors") + 1 > len)
        return kt_err_set(err, KT_ERR_ARG, "path too long: %s", weights_path);
    snprintf(out, len, "%.*s.state.safetensors", (int)stem, weights_path);
    return KT_OK;
}

/* ---------------------------------------------------------------- save */

kt_status kt_train_state_save(const char *path, const kt_param_ref *params, int n, float *const *m, float *const *v,
                              const kt_train_state *s, kt_err *err) {
    kt_st_writer w;
    kt_st_writer_init(&w);
    char name[4096], buf[64];
    kt_status st = KT_OK;
    for (int i = 0; i < n && st == KT_OK; i++) {
        const kt_param_ref *p = &params[i];
        if (!m[i] || !v[i]) {
            st = kt_err_set(err, KT_ERR_ARG, "saving %s: no moments for parameter '%s'", path, p->name);
            break;
        }
        snprintf(name, sizeof name, "adam_m.%s", p->name);
        st = kt_st_writer_add(&w, name, KT_ST_F32, p->ndim, p->shape, KT_ST_F32, m[i], err);
        snprintf(name, sizeof name, "adam_v.%s", p->name);
        if (st == KT_OK) st = kt_st_writer_add(&w, name, KT_ST_F32, p->ndim, p->shape, KT_ST_F32, v[i], err);
    }
    /* Scalars are borrowed by the writer until save: keep them in this frame. */
    const struct {
        const char *name;
        const int64_t *val;
    } ints[] = {{"state.step", &s->step},           {"state.epoch", &s->epoch},
                {"state.batch", &s->batch},         {"state.fold", &s->fold},
                {"state.sched_step", &s->sched_step}, {"state.sched_total", &s->sched_total},
                {"state.loss_scale_good_steps", &s->loss_scale_good_steps}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && st == KT_OK; i++)
        st = kt_st_writer_add(&w, ints[i].name, KT_ST_I64, 0, NULL, KT_ST_I64, ints[i].val, err);
    if (st == KT_OK) st = kt_st_writer_add(&w, "state.loss_scale", KT_ST_F64, 0, NULL, KT_ST_F64, &s->loss_scale, err);
    if (st == KT_OK) st = kt_st_writer_add(&w, "state.best_metric", KT_ST_F64, 0, NULL, KT_ST_F64, &s->best_metric, err);
    const int64_t four = 4;
    for (int i = 0; i < s->n_rng && st == KT_OK; i++) {
        snprintf(name, sizeof name, "rng.%s", s->rng_names[i]);
        st = kt_st_writer_add(&w, name, KT_ST_I64, 1, &four, KT_ST_I64, s->rng[i].s, err);
    }
    for (int i = 0; i < s->n_arrays && st == KT_OK; i++) {
        snprintf(name, sizeof name, "array.%s", s->arrays[i].name);
        st = kt_st_writer_add(&w, name, KT_ST_I64, 1, &s->arrays[i].n, KT_ST_I64, s->arrays[i].data, err);
    }
    if (st == KT_OK) st = kt_st_writer_meta(&w, "kind", KIND, err);
    if (st == KT_OK) st = kt_st_writer_meta(&w, "version", "1", err);
    snprintf(buf, sizeof buf, "%016" PRIx64, kt_params_hash(params, n));
    if (st == KT_OK) st = kt_st_writer_meta(&w, "params_hash", buf, err);
    snprintf(buf, sizeof buf, "%d", n);
    if (st == KT_OK) st = kt_st_writer_meta(&w, "n_params", buf, err);
    if (st == KT_OK && s->config_json) st = kt_st_writer_meta(&w, "config", s->config_json, err);
    if (st == KT_OK) st = kt_st_writer_save(&w, path, err);
    kt_st_writer_free(&w);
    return st;
}

/* ---------------------------------------------------------------- load */

static kt_status get_scalar_i64(const kt_st_file *f, const char *name, int64_t *out, kt_err *err) {
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) return kt_err_set(err, KT_ERR_FORMAT, "%s: training state lacks '%s'", f->path, name);
    if (t->dtype != KT_ST_I64 || t->numel != 1)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: '%s' must be one I64 value (is %s, %lld elements)", f->path, name,
                          kt_st_dtype_name(t->dtype), (long long)t->numel);
    memcpy(out, t->data, 8);
    return KT_OK;
}

static kt_status get_scalar_f64(const kt_st_file *f, const char *name, double *out, kt_err *err) {
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) return kt_err_set(err, KT_ERR_FORMAT, "%s: training state lacks '%s'", f->path, name);
    if (t->dtype != KT_ST_F64 || t->numel != 1)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: '%s' must be one F64 value (is %s, %lld elements)", f->path, name,
                          kt_st_dtype_name(t->dtype), (long long)t->numel);
    memcpy(out, t->data, 8);
    return KT_OK;
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Finds the moment tensor for p and checks dtype and shape. */
static kt_status find_moment(const kt_st_file *f, const char *kind, const kt_param_ref *p, const kt_st_tensor **out,
                             kt_err *err) {
    char name[4096];
    snprintf(name, sizeof name, "%s.%s", kind, p->name);
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) return kt_err_set(err, KT_ERR_FORMAT, "%s: training state has no '%s' for parameter '%s'", f->path, name,
                              p->name);
    int ok = t->dtype == KT_ST_F32 && t->ndim == p->ndim;
    for (int d = 0; ok && d < p->ndim; d++) ok = t->shape[d] == p->shape[d];
    if (!ok) return kt_err_set(err, KT_ERR_SHAPE, "%s: '%s' (%s, %d dims, %lld elements) does not match parameter '%s' "
                               "(F32, %d dims, %lld elements)", f->path, name, kt_st_dtype_name(t->dtype), t->ndim,
                               (long long)t->numel, p->name, p->ndim, (long long)kt_param_numel(p));
    *out = t;
    return KT_OK;
}

static kt_status load_validated(const kt_st_file *f, const kt_param_ref *params, int n, float **m, float **v,
                                int check_hash, kt_train_state *s, kt_err *err) {
    const char *kind = kt_st_meta(f, "kind");
    if (!kind || strcmp(kind, KIND))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: not a training state (metadata \"kind\" is %s%s%s)", f->path,
                          kind ? "\"" : "", kind ? kind : "missing", kind ? "\"" : "");
    const char *np = kt_st_meta(f, "n_params");
    if (!np || atoi(np) != n)
        return kt_err_set(err, KT_ERR_SHAPE, "%s: the state is for %s parameters, the model has %d", f->path,
                          np ? np : "an unknown number of", n);
    const char *hs = kt_st_meta(f, "params_hash");
    if (!hs) return kt_err_set(err, KT_ERR_FORMAT, "%s: training state lacks \"params_hash\"", f->path);
    s->params_hash = strtoull(hs, NULL, 16);
    if (check_hash && s->params_hash != kt_params_hash(params, n))
        return kt_err_set(err, KT_ERR_STATE,
                          "%s: the weights loaded are not the ones this state was saved with (another step, another "
                          "run, or weights saved in a lossy dtype); resume needs the F32 weights saved with it",
                          f->path);
    kt_status st;
    const struct {
        const char *name;
        int64_t *val;
    } ints[] = {{"state.step", &s->step},           {"state.epoch", &s->epoch},
                {"state.batch", &s->batch},         {"state.fold", &s->fold},
                {"state.sched_step", &s->sched_step}, {"state.sched_total", &s->sched_total},
                {"state.loss_scale_good_steps", &s->loss_scale_good_steps}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((st = get_scalar_i64(f, ints[i].name, ints[i].val, err)) != KT_OK) return st;
    if ((st = get_scalar_f64(f, "state.loss_scale", &s->loss_scale, err)) != KT_OK) return st;
    if ((st = get_scalar_f64(f, "state.best_metric", &s->best_metric, err)) != KT_OK) return st;
    if (s->step < 0 || s->epoch < 0 || s->batch < 0 || s->sched_step < 0)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: negative step, epoch, batch or schedule position", f->path);
    /* Every moment tensor must belong to a parameter; every other tensor must be one we know. */
    int n_moments = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const kt_st_tensor *t = &f->tensors[i];
        if (starts(t->name, "adam_m.") || starts(t->name, "adam_v.")) n_moments++;
        else if (starts(t->name, "rng.")) {
            if (t->dtype != KT_ST_I64 || t->ndim != 1 || t->shape[0] != 4)
                return kt_err_set(err, KT_ERR_FORMAT, "%s: RNG stream '%s' must be I64 [4]", f->path, t->name);
            if (!name_ok(t->name + 4)) return kt_err_set(err, KT_ERR_FORMAT, "%s: bad RNG name '%s'", f->path, t->name);
            kt_rng r;
            memcpy(r.s, t->data, sizeof r.s);
            if ((st = kt_train_state_set_rng(s, t->name + 4, &r, err)) != KT_OK) return kt_err_prefix(err, "%s: ", f->path);
        } else if (starts(t->name, "array.")) {
            if (t->dtype != KT_ST_I64 || t->ndim != 1)
                return kt_err_set(err, KT_ERR_FORMAT, "%s: array '%s' must be I64 1-D", f->path, t->name);
            if (!name_ok(t->name + 6)) return kt_err_set(err, KT_ERR_FORMAT, "%s: bad array name '%s'", f->path, t->name);
            int64_t *tmp = malloc((size_t)(t->numel > 0 ? t->numel : 1) * 8);
            if (!tmp) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", f->path);
            memcpy(tmp, t->data, (size_t)t->numel * 8);
            st = kt_train_state_set_array(s, t->name + 6, tmp, t->numel, err);
            free(tmp);
            if (st != KT_OK) return kt_err_prefix(err, "%s: ", f->path);
        } else if (!starts(t->name, "state."))
            return kt_err_set(err, KT_ERR_FORMAT, "%s: unexpected tensor '%s' in a training state", f->path, t->name);
    }
    const kt_st_tensor **tm = calloc((size_t)n + 1, sizeof *tm), **tv = calloc((size_t)n + 1, sizeof *tv);
    st = (tm && tv) ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", f->path);
    for (int i = 0; i < n && st == KT_OK; i++) {
        st = find_moment(f, "adam_m", &params[i], &tm[i], err);
        if (st == KT_OK) st = find_moment(f, "adam_v", &params[i], &tv[i], err);
    }
    if (st == KT_OK && n_moments != 2 * n) {
        /* Every parameter matched, so the extra ones name parameters the model does not have. */
        for (int i = 0; i < f->n_tensors && st == KT_OK; i++) {
            const kt_st_tensor *t = &f->tensors[i];
            if (!starts(t->name, "adam_m.") && !starts(t->name, "adam_v.")) continue;
            int found = 0;
            for (int k = 0; k < n && !found; k++) found = !strcmp(t->name + 7, params[k].name);
            if (!found)
                st = kt_err_set(err, KT_ERR_SHAPE, "%s: moment '%s' is for a parameter the model does not have",
                                f->path, t->name);
        }
    }
    /* the config is the last check: the moments are copied only once nothing can fail */
    const char *cfg = kt_st_meta(f, "config");
    if (st == KT_OK && cfg && (st = kt_train_state_set_config(s, cfg, err)) != KT_OK) kt_err_prefix(err, "%s: ", f->path);
    if (st == KT_OK)
        for (int i = 0; i < n; i++) {
            kt_st_to_f32(KT_ST_F32, tm[i]->data, m[i], tm[i]->numel);
            kt_st_to_f32(KT_ST_F32, tv[i]->data, v[i], tv[i]->numel);
        }
    free(tm);
    free(tv);
    return st;
}

kt_status kt_train_state_load(const char *path, const kt_param_ref *params, int n, float **m, float **v,
                              int check_hash, kt_train_state *s, kt_err *err) {
    kt_train_state_init(s);
    kt_st_file f;
    kt_status st = kt_st_open(&f, path, err);
    if (st != KT_OK) return st;
    st = load_validated(&f, params, n, m, v, check_hash, s, err);
    kt_st_close(&f);
    if (st != KT_OK) kt_train_state_free(s);
    return st;
}
