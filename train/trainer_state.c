/* The resumable state of a run: weights (resume.safetensors) and AdamW moments, position, best
 * metric, partial-epoch sums and seeds (resume.state.safetensors, checkpoints/train_state.h),
 * plus the settings that decide the results, compared on --resume. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "train/loss_scale.h"
#include "train/trainer_internal.h"

kt_status kt_run_config_json(kt_run *r, kt_err *err) {
    const kt_train_config *c = r->c;
    cJSON *j = cJSON_CreateObject();
    if (!j) return kt_err_set(err, KT_ERR_NOMEM, "no memory for the run's settings");
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    cJSON_AddStringToObject(j, "model", c->arch);
    cJSON_AddStringToObject(j, "data", c->data);
    cJSON_AddNumberToObject(j, "folds", c->folds);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "eval_batch", r->eval_batch);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(j, "label_smoothing", c->label_smoothing);
    cJSON_AddNumberToObject(j, "img_size", c->img_size);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddBoolToObject(j, "holdout_valid", c->holdout_valid);
    cJSON_AddStringToObject(j, "init", c->init ? c->init : "");
    cJSON_AddNumberToObject(j, "drop_path", c->drop_path);
    cJSON_AddNumberToObject(j, "head_drop", c->head_drop);
    cJSON_AddNumberToObject(j, "clip_grad", c->clip_grad);
    cJSON_AddBoolToObject(j, "no_decay_norms", c->no_decay_norms);
    cJSON_AddBoolToObject(j, "no_cycle_momentum", c->no_cycle_momentum);
    cJSON_AddBoolToObject(j, "strict", c->strict);
    cJSON_AddStringToObject(j, "task", r->multilabel ? "multi_label" : "single_label");
    cJSON_AddNumberToObject(j, "classes", r->C);
    cJSON_AddNumberToObject(j, "items", (double)r->ds.n_items);
    /* informational: not compared (a resume may change them) */
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddNumberToObject(j, "workers", c->workers);
    cJSON_AddStringToObject(j, "device", c->device ? c->device : "cpu");
    r->config_json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return r->config_json ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory for the run's settings");
}

static int informational(const char *key) {
    return !strcmp(key, "threads") || !strcmp(key, "workers") || !strcmp(key, "device");
}

/* Every result-deciding setting of the saved run must equal this one's. */
static kt_status compare_config(kt_run *r, const char *saved, kt_err *err) {
    cJSON *a = cJSON_Parse(saved), *b = cJSON_Parse(r->config_json);
    kt_status s = KT_OK;
    if (!a || !b) s = kt_err_set(err, KT_ERR_FORMAT, "%s: the saved settings are not JSON", r->resume_s);
    for (cJSON *it = b ? b->child : NULL; it && !s; it = it->next) {
        if (informational(it->string)) continue;
        cJSON *o = cJSON_GetObjectItemCaseSensitive(a, it->string);
        if (o && cJSON_Compare(o, it, 1)) continue;
        char *was = o ? cJSON_PrintUnformatted(o) : NULL, *now = cJSON_PrintUnformatted(it);
        s = kt_err_set(err, KT_ERR_ARG, "cannot resume %s: setting '%s' was %s in the saved run and is %s now; rerun with the "
                       "saved settings, or start a new run with another --out", r->c->out, it->string, was ? was : "(absent)",
                       now ? now : "?");
        free(was);
        free(now);
    }
    if (!s && r->c->log) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "threads");
        if (t && cJSON_IsNumber(t) && (int)t->valuedouble != r->c->threads)
            fprintf(r->c->log, "note: the run began with %d threads, now %d\n", (int)t->valuedouble, r->c->threads);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return s;
}

/* Per-parameter pointers into a flat (n_param_elems) moment buffer, in trainable order. */
static float **moment_ptrs(const kt_run *r, float *flat) {
    float **p = malloc((size_t)(r->n_trainable + 1) * sizeof *p);
    if (!p) return NULL;
    int k = 0;
    for (int i = 0; i < r->train.g.n_params; i++)
        if (!(r->train.g.params[i].node->flags & KT_NODE_BUFFER)) p[k++] = flat + r->train.g.params[i].offset;
    return p;
}

kt_status kt_run_state_save(kt_run *r, const kt_adamw *opt, const kt_loss_scaler *ls, const kt_run_pos *pos,
                            const int64_t *acc, int n_acc, kt_err *err) {
    int64_t n = r->train.g.n_param_elems;
    /* Two files, each written atomically, but not together: the weights the state on disk belongs
     * to move aside first (resume.prev), so that a failure or kill anywhere in between leaves a state
     * that matches either the weights or the previous ones (kt_run_state_load takes whichever), and
     * the run can always be resumed. The previous weights go once the new state is in place. */
    kt_status s = kt_model_download_params(&r->train, err);
    if (!s && kt_file_exists(r->resume_s) && kt_file_exists(r->resume_w) && rename(r->resume_w, r->resume_p) != 0)
        s = kt_err_set(err, KT_ERR_IO, "cannot rename %s to %s: %s", r->resume_w, r->resume_p, strerror(errno));
    if (!s) s = kt_model_save_weights(&r->train, r->resume_w, NULL, err);
    if (s) return kt_err_prefix(err, "saving the resumable state: ");
    /* on the CPU the moments are host memory already; a device backend copies them out */
    int on_host = opt->be->device == KT_CPU;
    float *m = on_host ? opt->m : malloc((size_t)(n + 1) * sizeof *m);
    float *v = on_host ? opt->v : malloc((size_t)(n + 1) * sizeof *v);
    float **mp = NULL, **vp = NULL;
    if (!m || !v) s = kt_err_set(err, KT_ERR_NOMEM, "no memory to save the AdamW moments");
    if (!s && !on_host) s = kt_adamw_get_moments(opt, m, v, err);
    if (!s) {
        mp = moment_ptrs(r, m);
        vp = moment_ptrs(r, v);
        if (!mp || !vp) s = kt_err_set(err, KT_ERR_NOMEM, "no memory to save the AdamW moments");
    }
    kt_train_state st;
    kt_train_state_init(&st);
    st.step = opt->step;
    st.epoch = pos->epoch;
    st.batch = pos->batch;
    st.fold = pos->fold;
    st.sched_step = pos->sched_step;
    st.sched_total = pos->sched_total;
    st.loss_scale = ls ? ls->scale : 1;
    st.loss_scale_good_steps = ls ? ls->good : 0;
    st.best_metric = pos->best;
    int64_t be = pos->best_epoch;
    int64_t seeds[3] = {(int64_t)kt_run_seed(r, pos->fold, KT_SEED_INIT), (int64_t)kt_run_seed(r, pos->fold, KT_SEED_DATA),
                        (int64_t)kt_run_seed(r, pos->fold, KT_SEED_DROP)};
    if (!s) s = kt_train_state_set_array(&st, "epoch_acc", acc, n_acc, err);
    if (!s) s = kt_train_state_set_array(&st, "best_epoch", &be, 1, err);
    if (!s && ls) s = kt_train_state_set_array(&st, "loss_scale_skipped", &ls->skipped, 1, err);
    if (!s) s = kt_train_state_set_array(&st, "seeds", seeds, 3, err);
    if (!s) s = kt_train_state_set_config(&st, r->config_json, err);
    if (!s) s = kt_train_state_save(r->resume_s, r->trainable, r->n_trainable, mp, vp, &st, err);
    if (!s) unlink(r->resume_p);
    kt_train_state_free(&st);
    free(mp);
    free(vp);
    if (!on_host) {
        free(m);
        free(v);
    }
    return s ? kt_err_prefix(err, "saving the resumable state: ") : KT_OK;
}

kt_status kt_run_state_load(kt_run *r, kt_err *err) {
    r->have_state = 0;
    if (!kt_file_exists(r->resume_s)) {
        if (r->c->log) fprintf(r->c->log, "note: no saved state in %s: starting the run from the beginning\n", r->dir);
        return KT_OK;
    }
    int64_t n = r->train.g.n_param_elems;
    r->st_m = malloc((size_t)(n + 1) * sizeof *r->st_m);
    r->st_v = malloc((size_t)(n + 1) * sizeof *r->st_v);
    float **mp = r->st_m ? moment_ptrs(r, r->st_m) : NULL, **vp = r->st_v ? moment_ptrs(r, r->st_v) : NULL;
    kt_status s = (!mp || !vp) ? kt_err_set(err, KT_ERR_NOMEM, "no memory for the saved AdamW moments") : KT_OK;
    kt_train_state_free(&r->st);
    if (!s) s = kt_train_state_load(r->resume_s, r->trainable, r->n_trainable, mp, vp, 0, &r->st, err);
    free(mp);
    free(vp);
    if (s) return kt_err_prefix(err, "--resume: ");
    if (!r->st.config_json) return kt_err_set(err, KT_ERR_FORMAT, "--resume: %s holds no run settings", r->resume_s);
    s = compare_config(r, r->st.config_json, err);
    if (s) return s;
    const kt_ts_array *sd = kt_train_state_get_array(&r->st, "seeds");
    int f = (int)r->st.fold;
    if (f < 0 || f > r->folds.k || r->st.epoch < 0 || r->st.batch < 0)
        return kt_err_set(err, KT_ERR_FORMAT, "--resume: %s: position fold %d, epoch %lld, batch %lld is outside the run",
                          r->resume_s, f + 1, (long long)r->st.epoch, (long long)r->st.batch);
    if (!sd || sd->n != 3 || (uint64_t)sd->data[0] != kt_run_seed(r, f, KT_SEED_INIT) ||
        (uint64_t)sd->data[1] != kt_run_seed(r, f, KT_SEED_DATA) || (uint64_t)sd->data[2] != kt_run_seed(r, f, KT_SEED_DROP))
        return kt_err_set(err, KT_ERR_FORMAT, "--resume: %s: the saved seeds do not match this run's", r->resume_s);
    if (f < r->folds.k && (r->st.epoch > 0 || r->st.batch > 0)) {
        int match = kt_file_exists(r->resume_w) && kt_model_load_weights(&r->train, r->resume_w, 0, NULL, err) == KT_OK &&
                    kt_params_hash(r->trainable, r->n_trainable) == r->st.params_hash;
        /* stopped between the two writes of a save: the state is the previous one, and so are its
         * weights, which become resume.safetensors again (a save moves that one aside next time) */
        if (!match && kt_file_exists(r->resume_p)) {
            match = kt_model_load_weights(&r->train, r->resume_p, 0, NULL, err) == KT_OK &&
                    kt_params_hash(r->trainable, r->n_trainable) == r->st.params_hash;
            if (match && rename(r->resume_p, r->resume_w) != 0)
                return kt_err_set(err, KT_ERR_IO, "--resume: cannot rename %s to %s: %s", r->resume_p, r->resume_w,
                                  strerror(errno));
        }
        if (!match)
            return kt_err_set(err, KT_ERR_FORMAT, "--resume: neither %s nor %s holds the weights %s belongs to: the run "
                              "cannot continue exactly; start a new run", r->resume_w, r->resume_p, r->resume_s);
    }
    r->have_state = 1;
    return KT_OK;
}

#define COMPLETE_FILE "run_complete.json"

kt_status kt_run_mark_complete(kt_run *r, const kt_train_result *res, kt_err *err) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", r->dir, COMPLETE_FILE);
    cJSON *j = cJSON_CreateObject(), *cfg = cJSON_Parse(r->config_json);
    if (!j || !cfg) {
        cJSON_Delete(j);
        cJSON_Delete(cfg);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for %s", path);
    }
    cJSON_AddItemToObject(j, "config", cfg);
    cJSON_AddNumberToObject(j, "folds_done", res->folds_done);
    /* NaN (no TEST split) is left out: JSON has no NaN */
    if (!isnan(res->oof_score)) cJSON_AddNumberToObject(j, "oof_score", res->oof_score);
    if (!isnan(res->test_score)) cJSON_AddNumberToObject(j, "test_score", res->test_score);
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, res->final_params_hash);
    cJSON_AddStringToObject(j, "final_params_hash", hash);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %s", path);
    kt_status s = kt_file_write_atomic(path, text, strlen(text), err);
    free(text);
    if (!s) {
        unlink(r->resume_s);
        unlink(r->resume_w);
        unlink(r->resume_p);
    }
    return s;
}

void kt_run_forget_complete(kt_run *r) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", r->dir, COMPLETE_FILE);
    unlink(path);
}

int kt_run_find_complete(kt_run *r, kt_train_result *res) {
    char path[4300], *text = NULL;
    size_t n = 0;
    kt_err e = {0};
    snprintf(path, sizeof path, "%s/%s", r->dir, COMPLETE_FILE);
    if (!kt_file_exists(path) || kt_file_read(path, &text, &n, &e)) return 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *cfg = j ? cJSON_GetObjectItemCaseSensitive(j, "config") : NULL;
    char *cfg_text = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    int same = cfg_text && compare_config(r, cfg_text, &e) == KT_OK;
    if (same) {
        cJSON *x;
        res->folds_done = (x = cJSON_GetObjectItem(j, "folds_done")) ? x->valueint : 0;
        res->oof_score = (x = cJSON_GetObjectItem(j, "oof_score")) ? x->valuedouble : NAN;
        res->test_score = (x = cJSON_GetObjectItem(j, "test_score")) ? x->valuedouble : NAN;
        x = cJSON_GetObjectItem(j, "final_params_hash");
        res->final_params_hash = x && cJSON_IsString(x) ? strtoull(x->valuestring, NULL, 16) : 0;
    }
    free(cfg_text);
    cJSON_Delete(j);
    return same;
}
