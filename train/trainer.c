/* The run: options, dataset and fold checks, the models, the fold loop, then the reports. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "base/timer.h"
#include "train/trainer_internal.h"

const float kt_train_mean[3] = {0.485f, 0.456f, 0.406f}, kt_train_std[3] = {0.229f, 0.224f, 0.225f};

void kt_train_config_default(kt_train_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = "convnext_base";
    c->folds = 5;
    c->epochs = 8;
    c->batch = 16;
    c->lr = 3e-4;
    c->weight_decay = 1e-4;
    c->label_smoothing = 0.1f;
    c->img_size = 224;
    c->seed = 42;
    c->workers = 2;
    c->device = "cpu";
}

kt_status kt_train_config_validate(const kt_train_config *c, kt_err *err) {
    if (!c->data || !*c->data) return kt_err_set(err, KT_ERR_ARG, "no dataset folder given (--data DIR)");
    if (!c->out || !*c->out) return kt_err_set(err, KT_ERR_ARG, "no output folder given (--out DIR)");
    if (!c->arch || !kt_model_arch_known(c->arch)) {
        char names[512];
        kt_model_arch_names(names, sizeof names);
        return kt_err_set(err, KT_ERR_ARG, "unknown model '%s' (known: %s)", c->arch ? c->arch : "", names);
    }
    if (c->folds < 2)
        return kt_err_set(err, KT_ERR_ARG, "--folds %d: K-fold training needs at least 2 folds (each fold validates on 1/K "
                          "of the data and trains on the rest)", c->folds);
    if (c->epochs < 1) return kt_err_set(err, KT_ERR_ARG, "--epochs %d must be at least 1", c->epochs);
    if (c->batch < 1) return kt_err_set(err, KT_ERR_ARG, "--batch %d must be at least 1", c->batch);
    if (c->eval_batch < 0) return kt_err_set(err, KT_ERR_ARG, "--eval-batch %d must be at least 1", c->eval_batch);
    if (!(c->lr > 0) || !isfinite(c->lr)) return kt_err_set(err, KT_ERR_ARG, "--lr %g must be > 0", c->lr);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return kt_err_set(err, KT_ERR_ARG, "--weight-decay %g must be >= 0", c->weight_decay);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return kt_err_set(err, KT_ERR_ARG, "--label-smoothing %g must be in [0, 1)", c->label_smoothing);
    if (!(c->drop_path >= 0 && c->drop_path < 1)) return kt_err_set(err, KT_ERR_ARG, "--drop-path %g must be in [0, 1)", c->drop_path);
    if (!(c->head_drop >= 0 && c->head_drop < 1)) return kt_err_set(err, KT_ERR_ARG, "head dropout %g must be in [0, 1)", c->head_drop);
    if (!(c->clip_grad >= 0) || !isfinite(c->clip_grad)) return kt_err_set(err, KT_ERR_ARG, "--clip-grad %g must be >= 0", c->clip_grad);
    if (c->workers < 1 || c->workers > 64) return kt_err_set(err, KT_ERR_ARG, "--workers %d must be 1..64", c->workers);
    int mult = kt_model_size_multiple(c->arch);
    if (c->img_size < mult || c->img_size % mult || c->img_size > 4096)
        return kt_err_set(err, KT_ERR_ARG, "--img-size %d: %s needs a multiple of %d (e.g. %d)", c->img_size, c->arch, mult,
                          c->img_size < mult ? mult : c->img_size / mult * mult);
    return KT_OK;
}

uint64_t kt_run_seed(const kt_run *r, int f, uint64_t purpose) {
    return kt_hash_u64(r->c->seed ^ purpose, (uint64_t)f + 1);
}

int kt_run_should_stop(const kt_run *r) {
    if (r->c->stop && *r->c->stop) return 1;
    return r->c->stop_after_steps > 0 && r->steps >= r->c->stop_after_steps;
}

void kt_run_best_path(const kt_run *r, int f, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s_fold%d_best.safetensors", r->c->out, r->train.arch, f + 1);
}

kt_status kt_run_log_epoch(kt_run *r, const kt_epoch_record *rec, kt_err *err) {
    if (r->n_recs == r->cap_recs) {
        int cap = r->cap_recs ? 2 * r->cap_recs : 64;
        kt_epoch_record *p = realloc(r->recs, (size_t)cap * sizeof *p);
        if (!p) return kt_err_set(err, KT_ERR_NOMEM, "no memory for the epoch log");
        r->recs = p;
        r->cap_recs = cap;
    }
    r->recs[r->n_recs++] = *rec;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, KT_EPOCH_LOG_FILE);
    return kt_epoch_log_write(path, r->recs, r->n_recs, err);
}

/* Builds the folds; writes out/folds.csv, or checks it against a resumed run's. */
static kt_status setup_folds(kt_run *r, kt_err *err) {
    const kt_train_config *c = r->c;
    kt_folds_opts fo;
    kt_folds_opts_default(&fo);
    fo.k = c->folds;
    fo.seed = c->seed;
    fo.holdout_valid = c->holdout_valid;
    kt_status s = kt_folds_build(&r->folds, &r->ds, &fo, err);
    if (s) return s;
    char path[4200];
    snprintf(path, sizeof path, "%s/folds.csv", c->out);
    if (c->resume && kt_file_exists(path)) {
        kt_folds old;
        kt_err e2 = {0};
        int same = kt_folds_read_csv(&old, &r->ds, path, &e2) == KT_OK && old.k == r->folds.k &&
                   old.seed == r->folds.seed && old.holdout_valid == r->folds.holdout_valid &&
                   !memcmp(old.fold, r->folds.fold, (size_t)r->ds.n_items * sizeof *old.fold);
        if (!e2.code) kt_folds_free(&old);
        if (!same)
            return kt_err_set(err, KT_ERR_ARG, "%s no longer matches the dataset %s (%s): the data changed since the run "
                              "began, so it cannot be resumed; start a new run with another --out",
                              path, c->data, e2.code ? e2.msg : "other folds");
        return KT_OK;
    }
    return kt_folds_write_csv(&r->folds, &r->ds, path, err);
}

/* Every fold must train on every class (and, single-label, validate on it too), and hold a batch. */
static kt_status check_folds(kt_run *r, kt_err *err) {
    const kt_dataset *ds = &r->ds;
    int64_t *items = malloc((size_t)ds->n_items * sizeof *items);
    int64_t *cnt = calloc((size_t)r->C, sizeof *cnt);
    kt_status s = (!items || !cnt) ? kt_err_set(err, KT_ERR_NOMEM, "no memory for fold checks") : KT_OK;
    for (int f = 0; f < r->folds.k && !s; f++) {
        for (int part = 0; part < 2 && !s; part++) {
            int64_t n = part == 0 ? kt_folds_train_items(&r->folds, f, items) : kt_folds_val_items(&r->folds, f, items);
            if (part == 0 && n < r->c->batch) {
                s = kt_err_set(err, KT_ERR_ARG, "--batch %d is larger than the %lld training images of fold %d (%s): lower "
                               "--batch or --folds", r->c->batch, (long long)n, f + 1, ds->root);
                break;
            }
            memset(cnt, 0, (size_t)r->C * sizeof *cnt);
            for (int64_t i = 0; i < n; i++)
                for (int k = 0; k < r->C; k++) cnt[k] += kt_dataset_target(ds, items[i])[k] > 0.5f;
            for (int k = 0; k < r->C && !s; k++) {
                if (cnt[k]) continue;
                int64_t total = kt_dataset_class_count(ds, KT_SPLIT_TRAIN, k) +
                                (r->c->holdout_valid ? 0 : kt_dataset_class_count(ds, KT_SPLIT_VALID, k));
                if (part == 0 || !r->multilabel)
                    s = kt_err_set(err, KT_ERR_ARG, "class '%s' is missing from the %s images of fold %d: it has %lld image%s "
                                   "in the folded splits, fewer than the %d folds need; lower --folds or add images of it",
                                   ds->class_names[k], part == 0 ? "training" : "validation", f + 1, (long long)total,
                                   total == 1 ? "" : "s", r->folds.k);
                else if (r->c->log)
                    fprintf(r->c->log, "note: label '%s' has no positive in fold %d's validation images\n", ds->class_names[k], f + 1);
            }
        }
    }
    free(items);
    free(cnt);
    return s;
}

static kt_status setup_models(kt_run *r, kt_err *err) {
    const kt_train_config *c = r->c;
    kt_model_opts o = {.arch = c->arch, .num_classes = r->C, .batch = c->batch, .img_h = c->img_size, .img_w = c->img_size,
                       .train = 1, .multilabel = r->multilabel, .label_smoothing = r->multilabel ? 0 : c->label_smoothing,
                       .drop_path_rate = c->drop_path, .head_drop_rate = c->head_drop, .recompute = c->recompute,
                       .backend = c->backend};
    kt_status s = kt_model_create(&r->train, &o, NULL, err);
    kt_model_opts e = o;
    e.train = 0;
    e.batch = r->eval_batch;
    if (!s) s = kt_model_create(&r->eval, &e, &r->train, err);
    /* a GPU too small for the step: say which knobs lower what the plan needs */
    if (s == KT_ERR_NOMEM && c->backend && strcmp(c->backend->name, "cpu"))
        kt_err_prefix(err, "%s at batch %d, %d px does not fit in the GPU's memory (a smaller --batch%s needs less): ", c->arch, c->batch,
                      c->img_size, c->recompute ? "" : " or --recompute");
    if (s) return s;
    r->trainable = malloc((size_t)(r->train.n_refs + 1) * sizeof *r->trainable);
    if (!r->trainable) return kt_err_set(err, KT_ERR_NOMEM, "no memory for parameter references");
    for (int i = 0; i < r->train.n_refs; i++)
        if (!(r->train.g.params[i].node->flags & KT_NODE_BUFFER)) r->trainable[r->n_trainable++] = r->train.refs[i];
    return KT_OK;
}

/* Keeps the epoch records that precede the resumed position (a crash may have logged one more). */
static kt_status restore_log(kt_run *r, kt_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, KT_EPOCH_LOG_FILE);
    if (!kt_file_exists(path)) return KT_OK;
    kt_epoch_record *recs = NULL;
    int n = 0;
    kt_status s = kt_epoch_log_read(path, &recs, &n, err);
    if (s) return s;
    for (int i = 0; i < n && !s; i++) {
        int f0 = recs[i].fold - 1;
        if (f0 < r->st.fold || (f0 == r->st.fold && recs[i].epoch <= r->st.epoch)) s = kt_run_log_epoch(r, &recs[i], err);
    }
    free(recs);
    return s;
}

static void run_free(kt_run *r) {
    if (r->eval.g.nodes) kt_model_free(&r->eval);
    if (r->train.g.nodes) kt_model_free(&r->train);
    if (r->folds.fold) kt_folds_free(&r->folds);
    kt_dataset_close(&r->ds);
    kt_train_state_free(&r->st);
    free(r->st_m);
    free(r->st_v);
    free(r->trainable);
    free(r->recs);
    free(r->config_json);
}

static kt_status run_setup(kt_run *r, kt_err *err) {
    const kt_train_config *c = r->c;
    kt_dataset_opts dopts;
    kt_dataset_opts_default(&dopts);
    dopts.strict = c->strict;
    kt_status s = kt_dataset_open(&r->ds, c->data, &dopts, err);
    if (s) return s;
    r->C = r->ds.n_classes;
    r->multilabel = r->ds.kind == KT_LABELS_MULTI;
    if (!r->multilabel && r->C < 2)
        return kt_err_set(err, KT_ERR_ARG, "%s has %d class: a classifier needs at least 2", c->data, r->C);
    if (c->log && (r->ds.n_bad_rows || r->ds.n_bad_images)) {
        fprintf(c->log, "note: %s: skipped %lld bad CSV rows and %lld bad images (--strict makes them errors)\n", c->data,
                (long long)r->ds.n_bad_rows, (long long)r->ds.n_bad_images);
        for (int i = 0; i < r->ds.n_messages && i < 5; i++) fprintf(c->log, "  %s\n", r->ds.messages[i]);
    }
    snprintf(r->dir, sizeof r->dir, "%s/%s", c->out, c->arch);
    if (strlen(c->out) + strlen(c->arch) + 40 >= sizeof r->dir) return kt_err_set(err, KT_ERR_ARG, "--out path too long: %s", c->out);
    s = kt_mkdirs(r->dir, err);
    if (s) return kt_err_prefix(err, "cannot create the run folder: ");
    snprintf(r->resume_w, sizeof r->resume_w, "%s/resume.safetensors", r->dir);
    snprintf(r->resume_s, sizeof r->resume_s, "%s/resume.state.safetensors", r->dir);
    snprintf(r->resume_p, sizeof r->resume_p, "%s/resume.prev.safetensors", r->dir);
    if (!c->resume && kt_file_exists(r->resume_s))
        return kt_err_set(err, KT_ERR_ARG, "%s holds an unfinished run of %s (%s): continue it with --resume, or choose "
                          "another --out", c->out, c->arch, r->resume_s);
    int stale = kt_remove_stale_temps(c->out) + kt_remove_stale_temps(r->dir);
    if (stale && c->log) fprintf(c->log, "note: removed %d temporary files of an interrupted earlier run in %s\n", stale, c->out);
    /* A new run over a finished one: the old completion record goes first, or a crash of this run
     * would leave its checkpoints beside the old reports under a folder that --resume calls done. */
    if (!c->resume) kt_run_forget_complete(r);
    s = kt_run_config_json(r, err);
    if (s) return s;
    /* --resume of a model whose run finished (e.g. the first of --models A B): nothing to do */
    if (c->resume && !kt_file_exists(r->resume_s) && kt_run_find_complete(r, &r->done)) {
        r->complete = 1;
        return KT_OK;
    }
    s = setup_folds(r, err);
    if (!s) s = check_folds(r, err);
    if (!s) s = setup_models(r, err);
    if (!s && c->resume) s = kt_run_state_load(r, err);
    if (!s && r->have_state) s = restore_log(r, err);
    return s;
}

/* What the plan holds for the whole run: both graphs' activations and inputs, and the parameters,
 * their gradients and AdamW's two moments (over the whole parameter buffer). On a GPU this is its
 * memory, what a user sizing --batch or weighing --recompute wants before the first epoch. */
static void log_memory(const kt_run *r, FILE *log) {
    kt_plan_stats t, e;
    kt_graph_plan_stats(&r->train.g, &t);
    kt_graph_plan_stats(&r->eval.g, &e);
    const double mib = 1048576.0;
    double step = (double)(t.arena_bytes + t.inputs_bytes) / mib, eval = (double)(e.arena_bytes + e.inputs_bytes) / mib;
    double fixed = (double)(t.param_bytes + t.grad_bytes + t.state_bytes + e.param_bytes + e.state_bytes +
                            2 * (size_t)r->train.g.n_param_elems * sizeof(float)) / mib;
    fprintf(log, "memory planned on %s: %.1f MiB (training step %.1f, evaluation %.1f, parameters + gradients + AdamW moments %.1f)\n",
            r->c->device ? r->c->device : "cpu", step + eval + fixed, step, eval, fixed);
}

kt_status kt_train_run(const kt_train_config *cfg, kt_train_result *res, kt_err *err) {
    double t0 = kt_now();
    kt_train_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    res->oof_score = res->test_score = NAN;
    kt_status s = kt_train_config_validate(cfg, err);
    if (s) return s;
    kt_run r;
    memset(&r, 0, sizeof r);
    r.c = cfg;
    r.eval_batch = cfg->eval_batch ? cfg->eval_batch : 2 * cfg->batch;
    kt_train_state_init(&r.st);
    s = run_setup(&r, err);
    if (!s && r.complete) {
        *res = r.done;
        res->multilabel = r.multilabel;
        snprintf(res->report_dir, sizeof res->report_dir, "%s", r.dir);
        if (cfg->log) fprintf(cfg->log, "%s: the run in %s is already complete; nothing to resume\n", cfg->arch, cfg->out);
    } else if (!s) {
        res->multilabel = r.multilabel;
        snprintf(res->report_dir, sizeof res->report_dir, "%s", r.dir);
        int f0 = r.have_state ? (int)r.st.fold : 0;
        if (cfg->log) {
            fprintf(cfg->log, "%s %s: %d classes (%s), %lld images (train %lld, valid %lld, test %lld), %d folds%s, %d epochs, "
                    "batch %d, %dx%d, %lld parameters, %d loader workers\n",
                    r.have_state ? "resuming" : "training", r.train.arch, r.C, r.multilabel ? "multi-label, BCE" : "single-label",
                    (long long)r.ds.n_items, (long long)r.ds.split_count[0], (long long)r.ds.split_count[1],
                    (long long)r.ds.split_count[2], r.folds.k, cfg->holdout_valid ? " over TRAIN (VALID held out)" : " over TRAIN+VALID",
                    cfg->epochs, cfg->batch, cfg->img_size, cfg->img_size, (long long)kt_model_param_count(&r.train), cfg->workers);
            log_memory(&r, cfg->log);
            if (r.have_state && f0 < r.folds.k)
                fprintf(cfg->log, "resuming at fold %d, epoch %lld, batch %lld (step %lld)\n", f0 + 1, (long long)r.st.epoch + 1,
                        (long long)r.st.batch, (long long)r.st.step);
        }
        r.folds_done = f0;
        for (int f = f0; f < r.folds.k && !s; f++) {
            s = kt_run_fold(&r, f, err);
            if (!s) s = kt_model_download_params(&r.train, err);
            if (!s) {
                r.folds_done = f + 1;
                r.final_hash = kt_params_hash(r.trainable, r.n_trainable);
            }
        }
        /* resumed after the last fold (stopped in the reports): the state's weights are the final ones */
        if (r.have_state && f0 >= r.folds.k) r.final_hash = r.st.params_hash;
        res->folds_done = r.folds_done;
        res->final_params_hash = r.final_hash;
        if (!s) s = kt_run_reports(&r, res, err);
        if (!s) s = kt_run_mark_complete(&r, res, err);
    }
    res->steps = r.steps;
    res->seconds = kt_now() - t0;
    run_free(&r);
    return s;
}
