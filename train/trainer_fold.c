/* One fold: fresh (or --init, or resumed) weights, AdamW + OneCycleLR per batch, validation after
 * every epoch, the best checkpoint by validation accuracy, the resumable state after every epoch
 * and on a stop request. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/timer.h"
#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/safetensors.h"
#include "datasets/loader.h"
#include "train/evaluate.h"
#include "train/loss_scale.h"
#include "train/schedule.h"
#include "train/trainer_internal.h"

/* Partial-epoch sums kept in the resumable state (doubles bit-cast into int64). */
enum { ACC_LOSS, ACC_N, ACC_CORRECT, ACC_TP, ACC_FP, ACC_FN, ACC_SECONDS, ACC_COUNT };

typedef struct fold_ctx {
    kt_run *r;
    int f;
    kt_adamw opt;
    kt_loss_scaler scaler;    /* used when c->loss_scaling (fp16) */
    kt_onecycle sched;
    int64_t sched_step;
    kt_loader *train_ld, *val_ld;
    int64_t n_tr, n_va, nb;
    int64_t *tr, *va;         /* (n_tr), (n_va) item indices */
    int32_t *va_labels;       /* (n_va) */
    float *va_targets;        /* (n_va, C) */
    float *logits;            /* (batch, C) */
    float *va_logits;         /* (n_va, C) */
    double best;              /* best validation score so far (-1: none) */
    int best_epoch;
    double loss_sum, seconds; /* this epoch so far */
    double wait0;             /* the training loader's wait count when this epoch started */
    kt_hits hits;
} fold_ctx;

static int64_t dbits(double x) {
    int64_t i;
    memcpy(&i, &x, sizeof i);
    return i;
}

static double bitsd(int64_t i) {
    double x;
    memcpy(&x, &i, sizeof x);
    return x;
}

static kt_status save_state(fold_ctx *x, int fold, int epoch, int64_t batch, kt_err *err) {
    int64_t acc[ACC_COUNT] = {[ACC_LOSS] = dbits(x->loss_sum), [ACC_N] = x->hits.n, [ACC_CORRECT] = x->hits.correct,
                              [ACC_TP] = x->hits.tp, [ACC_FP] = x->hits.fp, [ACC_FN] = x->hits.fn,
                              [ACC_SECONDS] = dbits(x->seconds)};
    /* a state pointing at the start of another fold carries no position inside it */
    int next = fold != x->f;
    kt_run_pos pos = {.fold = fold, .epoch = epoch, .batch = batch, .sched_step = next ? 0 : x->sched_step,
                      .sched_total = x->sched.total_steps, .best = next ? -1 : x->best, .best_epoch = next ? 0 : x->best_epoch};
    return kt_run_state_save(x->r, &x->opt, x->r->c->loss_scaling ? &x->scaler : NULL, &pos, acc, ACC_COUNT, err);
}

/* --init: a checkpoint of this architecture (a new head when the class count differs). */
static kt_status load_init(fold_ctx *x, kt_err *err) {
    kt_run *r = x->r;
    const char *path = r->c->init;
    kt_st_file f;
    kt_ckpt_meta md;
    kt_ckpt_summary sum;
    kt_status s = kt_st_open(&f, path, err);
    if (s) return kt_err_prefix(err, "--init: ");
    s = kt_ckpt_meta_from_file(&f, &md, err);
    if (s) {
        kt_st_close(&f);
        return kt_err_prefix(err, "--init: ");
    }
    kt_ckpt_inspect(&f, &sum);
    kt_st_close(&f);
    const char *arch = md.arch ? md.arch : (sum.inferred[0] ? sum.inferred : NULL);
    if (arch && strcmp(arch, r->train.arch))
        s = kt_err_set(err, KT_ERR_ARG, "--init %s holds a %s model, not %s: pass a %s checkpoint or --model %s", path, arch,
                       r->train.arch, r->train.arch, arch);
    kt_ckpt_meta_free(&md);
    if (s) return s;
    kt_load_report rep;
    memset(&rep, 0, sizeof rep);
    s = kt_model_load_weights(&r->train, path, 1, &rep, err);
    if (s) return kt_err_prefix(err, "--init: ");
    if (x->f == 0 && r->c->log)
        fprintf(r->c->log, "init from %s: %d tensors loaded%s\n", path, rep.n_loaded,
                rep.head_replaced ? ", new classifier head (the class count differs)" : "");
    return KT_OK;
}

static kt_status open_loaders(fold_ctx *x, kt_err *err) {
    kt_run *r = x->r;
    const kt_train_config *c = r->c;
    int64_t N = r->ds.n_items;
    int C = r->C;
    x->tr = malloc((size_t)N * sizeof *x->tr);
    x->va = malloc((size_t)N * sizeof *x->va);
    if (!x->tr || !x->va) return kt_err_set(err, KT_ERR_NOMEM, "no memory for fold items");
    x->n_tr = kt_folds_train_items(&r->folds, x->f, x->tr);
    x->n_va = kt_folds_val_items(&r->folds, x->f, x->va);
    x->va_labels = malloc((size_t)(x->n_va + 1) * sizeof *x->va_labels);
    x->va_targets = malloc((size_t)(x->n_va + 1) * C * sizeof *x->va_targets);
    x->va_logits = malloc((size_t)(x->n_va + 1) * C * sizeof *x->va_logits);
    x->logits = malloc((size_t)c->batch * C * sizeof *x->logits);
    if (!x->va_labels || !x->va_targets || !x->va_logits || !x->logits) return kt_err_set(err, KT_ERR_NOMEM, "no memory for fold buffers");
    for (int64_t i = 0; i < x->n_va; i++) {
        x->va_labels[i] = r->ds.items[x->va[i]].label;
        memcpy(x->va_targets + i * C, kt_dataset_target(&r->ds, x->va[i]), (size_t)C * sizeof(float));
    }
    kt_loader_config lc;
    kt_loader_config_default(&lc, c->img_size);
    lc.batch_size = c->batch;
    lc.workers = c->workers;
    lc.shuffle = 1;
    lc.drop_last = 1; /* fixed-size training graph; the order changes every epoch, so every image is seen */
    lc.strict = c->strict;
    lc.seed = kt_run_seed(r, x->f, KT_SEED_DATA);
    memcpy(lc.aug.mean, kt_train_mean, sizeof lc.aug.mean);
    memcpy(lc.aug.std, kt_train_std, sizeof lc.aug.std);
    kt_loader_pin_for(&lc, c->backend); /* uploaded every step */
    kt_status s = kt_loader_open(&x->train_ld, &r->ds, x->tr, x->n_tr, &lc, err);
    if (!s) s = kt_eval_loader_open(&x->val_ld, &r->ds, x->va, x->n_va, c->img_size, kt_train_mean, kt_train_std,
                                    r->eval_batch, c->workers, c->backend, err);
    if (!s) x->nb = kt_loader_num_batches(x->train_ld);
    if (!s && x->nb < 1)
        s = kt_err_set(err, KT_ERR_ARG, "--batch %d is larger than the %lld training images of fold %d", c->batch,
                       (long long)x->n_tr, x->f + 1);
    return s;
}

static void fold_free(fold_ctx *x) {
    if (x->train_ld) kt_loader_close(x->train_ld);
    if (x->val_ld) kt_loader_close(x->val_ld);
    kt_adamw_free(&x->opt);
    free(x->tr);
    free(x->va);
    free(x->va_labels);
    free(x->va_targets);
    free(x->logits);
    free(x->va_logits);
}

/* Weights, optimizer and position: fresh, or from the loaded state. Returns the first epoch/batch. */
static kt_status start_fold(fold_ctx *x, int *e0, int64_t *b0, kt_err *err) {
    kt_run *r = x->r;
    const kt_train_config *c = r->c;
    kt_adamw_config ac;
    kt_adamw_config_default(&ac);
    ac.lr = (float)c->lr;
    ac.weight_decay = (float)c->weight_decay;
    ac.no_decay = c->no_decay_norms;
    ac.clip_grad_norm = c->clip_grad;
    kt_status s = kt_adamw_init_graph(&x->opt, &r->train.g, &ac, err);
    if (s) return s;
    kt_onecycle_default(&x->sched, c->lr, (int64_t)c->epochs * x->nb);
    x->sched.cycle_momentum = !c->no_cycle_momentum;
    x->sched.fixed_beta1 = ac.beta1;
    s = kt_onecycle_validate(&x->sched, err);
    if (s) return s;
    x->best = -1;
    kt_loss_scaler_init(&x->scaler);
    *e0 = 0;
    *b0 = 0;
    int resumed = r->have_state && r->st.fold == x->f && (r->st.epoch > 0 || r->st.batch > 0);
    r->have_state = 0; /* the state is consumed by this fold */
    if (!resumed) {
        s = kt_model_init_weights(&r->train, kt_run_seed(r, x->f, KT_SEED_INIT), err);
        if (!s && c->init) s = load_init(x, err);
        return s;
    }
    const kt_ts_array *acc = kt_train_state_get_array(&r->st, "epoch_acc");
    const kt_ts_array *be = kt_train_state_get_array(&r->st, "best_epoch");
    if (r->st.sched_total != x->sched.total_steps || !acc || acc->n != ACC_COUNT || !be || be->n != 1 || r->st.epoch >= c->epochs ||
        r->st.batch > x->nb)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: the saved position (epoch %lld, batch %lld of %lld steps) does not fit this run "
                          "(%d epochs of %lld batches)", r->resume_s, (long long)r->st.epoch, (long long)r->st.batch,
                          (long long)r->st.sched_total, c->epochs, (long long)x->nb);
    s = kt_adamw_set_moments(&x->opt, r->st_m, r->st_v, r->st.step, err);
    if (s) return s;
    x->sched_step = r->st.sched_step;
    const kt_ts_array *sk = kt_train_state_get_array(&r->st, "loss_scale_skipped");
    if (c->loss_scaling && sk && sk->n == 1) { /* a state saved without loss scaling leaves the fresh scaler */
        if (!(r->st.loss_scale > 0) || r->st.loss_scale_good_steps < 0)
            return kt_err_set(err, KT_ERR_FORMAT, "%s: loss scale %g (%lld good steps) is not a valid saved scale", r->resume_s,
                              r->st.loss_scale, (long long)r->st.loss_scale_good_steps);
        x->scaler.scale = r->st.loss_scale;
        x->scaler.good = r->st.loss_scale_good_steps;
        x->scaler.skipped = sk->data[0];
    }
    x->best = r->st.best_metric;
    x->best_epoch = (int)be->data[0];
    x->loss_sum = bitsd(acc->data[ACC_LOSS]);
    x->seconds = bitsd(acc->data[ACC_SECONDS]);
    x->hits = (kt_hits){.n = acc->data[ACC_N], .correct = acc->data[ACC_CORRECT], .tp = acc->data[ACC_TP],
                        .fp = acc->data[ACC_FP], .fn = acc->data[ACC_FN]};
    *e0 = (int)r->st.epoch;
    *b0 = r->st.batch;
    return KT_OK;
}

static kt_status train_step(fold_ctx *x, const kt_batch *b, int epoch, int64_t bi, kt_err *err) {
    kt_run *r = x->r;
    kt_model *m = &r->train;
    kt_status s = kt_model_set_input(m, b->images, err);
    if (!s) s = r->multilabel ? kt_model_set_targets(m, b->targets, err) : kt_model_set_labels(m, b->labels, err);
    if (s) return s;
    m->g.training = 1;
    m->g.seed = kt_run_seed(r, x->f, KT_SEED_DROP);
    m->g.step = (uint64_t)x->opt.step; /* drop-path masks keyed by the optimizer step: resumable */
    if (r->c->loss_scaling) s = kt_loss_scaler_seed(&x->scaler, &m->g, err);
    if (!s) s = kt_graph_run(&m->g, err);
    float loss = 0;
    if (!s) s = kt_model_get_loss(m, &loss, err);
    if (!s) s = kt_model_get_logits(m, x->logits, err);
    if (s) return s;
    if (!isfinite(loss))
        return kt_err_set(err, KT_ERR_ARG, "the training loss became %s at fold %d, epoch %d, batch %lld (step %lld): lower --lr "
                          "or set --clip-grad", isnan(loss) ? "NaN" : "infinite", x->f + 1, epoch + 1, (long long)bi + 1,
                          (long long)x->opt.step + 1);
    x->loss_sum += (double)loss * b->n;
    kt_hits_add(&x->hits, x->logits, b->labels, b->targets, b->n, r->C, r->multilabel);
    double lr = kt_onecycle_lr(&x->sched, x->sched_step), beta1 = kt_onecycle_beta1(&x->sched, x->sched_step);
    int take = 1; /* with loss scaling, a step whose gradients overflowed is skipped (the schedule moves on) */
    if (r->c->loss_scaling) s = kt_loss_scaler_unscale(&x->scaler, m->g.backend, m->g.grad_buf, m->g.n_param_elems, &take, err);
    if (!s && take) s = kt_adamw_step(&x->opt, m->g.param_buf, m->g.grad_buf, lr, beta1, err);
    if (s) return kt_err_prefix(err, "fold %d, epoch %d, batch %lld: ", x->f + 1, epoch + 1, (long long)bi + 1);
    x->sched_step++;
    r->steps++;
    return KT_OK;
}

static kt_status save_best(fold_ctx *x, int epoch, double val_loss, double val_score, kt_err *err) {
    kt_run *r = x->r;
    kt_ckpt_meta md;
    kt_ckpt_meta_init(&md);
    char metrics[256], path[4200];
    snprintf(metrics, sizeof metrics, "{\"fold\": %d, \"val_%s\": %.6f, \"val_loss\": %.6f}", x->f + 1,
             r->multilabel ? "micro_f1" : "acc", val_score, val_loss);
    kt_status s = kt_ckpt_meta_set_classes(&md, (const char *const *)r->ds.class_names, r->C, err);
    if (!s) s = kt_ckpt_meta_set_metrics(&md, metrics, err);
    if (!s) s = kt_ckpt_meta_set_extra(&md, KT_META_TASK, r->multilabel ? "multi_label" : "single_label", err);
    md.img_h = md.img_w = r->c->img_size;
    md.has_norm = 1;
    memcpy(md.mean, kt_train_mean, sizeof md.mean);
    memcpy(md.std, kt_train_std, sizeof md.std);
    md.epoch = epoch + 1;
    kt_run_best_path(r, x->f, path, sizeof path);
    if (!s) s = kt_model_download_params(&r->train, err);
    if (!s) s = kt_model_save_weights(&r->train, path, &md, err);
    kt_ckpt_meta_free(&md);
    return s;
}

static kt_status end_epoch(fold_ctx *x, int e, double t_start, kt_err *err) {
    kt_run *r = x->r;
    const kt_train_config *c = r->c;
    kt_status s = kt_eval_logits(&r->eval, x->val_ld, x->n_va, x->va_logits, NULL, NULL, err);
    if (s) return kt_err_prefix(err, "validating fold %d: ", x->f + 1);
    double val_loss = kt_logits_loss(x->va_logits, x->va_labels, x->va_targets, x->n_va, r->C, r->multilabel,
                                     r->multilabel ? 0 : c->label_smoothing);
    kt_hits vh = {0};
    kt_hits_add(&vh, x->va_logits, x->va_labels, x->va_targets, x->n_va, r->C, r->multilabel);
    double val_score = kt_hits_score(&vh, r->multilabel);
    double secs = x->seconds + (kt_now() - t_start);
    kt_epoch_record rec = {.epoch = e + 1, .fold = x->f + 1, .train_loss = x->loss_sum / (double)(x->hits.n ? x->hits.n : 1),
                           .val_loss = val_loss, .train_acc = kt_hits_score(&x->hits, r->multilabel), .val_acc = val_score,
                           .lr = kt_onecycle_lr(&x->sched, x->sched_step), .seconds = secs};
    int better = val_score > x->best;
    if (better) {
        x->best = val_score;
        x->best_epoch = e + 1;
        s = save_best(x, e, val_loss, val_score, err);
        if (s) return s;
    }
    s = kt_run_log_epoch(r, &rec, err);
    if (s) return s;
    if (c->log) {
        const char *metric = r->multilabel ? "micro-F1" : "acc";
        /* the share of the epoch the model sat waiting for the loader to decode images */
        double wait = kt_loader_wait_seconds(x->train_ld) - x->wait0, share = secs > 0 ? wait / secs : 0;
        char wait_txt[32] = "";
        if (share >= 0.05) snprintf(wait_txt, sizeof wait_txt, "  data wait %.0f%%", 100 * share);
        fprintf(c->log, "fold %d/%d epoch %2d/%d  train loss %.4f %s %.4f  val loss %.4f %s %.4f  lr %.2e  %.1fs  %.0f img/s%s%s\n",
                x->f + 1, r->folds.k, e + 1, c->epochs, rec.train_loss, metric, rec.train_acc, val_loss, metric, val_score,
                rec.lr, secs, (double)x->hits.n / (secs > 0 ? secs : 1), wait_txt, better ? "  * best, saved" : "");
        if (share >= 0.2 && !r->wait_hinted) {
            r->wait_hinted = 1;
            fprintf(c->log, "  the model waited for decoded images %.0f%% of this epoch: more --workers (now %d) decode on more "
                    "cores%s\n", 100 * share, c->workers, c->backend ? "" : ", which on the CPU the model's threads also use");
        }
        if (c->loss_scaling)
            fprintf(c->log, "  fp16 loss scale %g; %lld steps of this fold skipped for inf/NaN gradients\n", x->scaler.scale,
                    (long long)x->scaler.skipped);
        fflush(c->log);
    }
    x->loss_sum = 0;
    x->seconds = 0;
    memset(&x->hits, 0, sizeof x->hits);
    /* after the last epoch the state points at the next fold */
    return e + 1 < c->epochs ? save_state(x, x->f, e + 1, 0, err) : save_state(x, x->f + 1, 0, 0, err);
}

kt_status kt_run_fold(kt_run *r, int f, kt_err *err) {
    const kt_train_config *c = r->c;
    fold_ctx x;
    memset(&x, 0, sizeof x);
    x.r = r;
    x.f = f;
    int e0 = 0;
    int64_t b0 = 0;
    kt_status s = open_loaders(&x, err);
    if (!s) s = start_fold(&x, &e0, &b0, err);
    for (int e = e0; e < c->epochs && !s; e++) {
        s = kt_loader_start(x.train_ld, e, b0, err);
        x.wait0 = kt_loader_wait_seconds(x.train_ld);
        char label[64];
        snprintf(label, sizeof label, "fold %d/%d epoch %d/%d", f + 1, r->folds.k, e + 1, c->epochs);
        kt_progress pr;
        kt_progress_begin(&pr, c->log, label, x.nb, "batch");
        double t_start = kt_now();
        int64_t seen0 = x.hits.n;
        for (int64_t b = b0; b < x.nb && !s; b++) {
            if (kt_run_should_stop(r)) {
                x.seconds += kt_now() - t_start;
                kt_progress_end(&pr);
                s = save_state(&x, f, e, b, err);
                if (!s)
                    s = kt_err_set(err, KT_ERR_INTERRUPTED, "stopped in fold %d, epoch %d after %lld of %lld batches (step %lld); "
                                   "the state is saved in %s: continue with the same command plus --resume", f + 1, e + 1,
                                   (long long)b, (long long)x.nb, (long long)x.opt.step, r->resume_s);
                break;
            }
            const kt_batch *bt = NULL;
            s = kt_loader_next(x.train_ld, &bt, err);
            if (!s && !bt) s = kt_err_set(err, KT_ERR_STATE, "the loader ended epoch %d after %lld of %lld batches", e + 1, (long long)b,
                                          (long long)x.nb);
            if (!s) s = train_step(&x, bt, e, b, err);
            if (!s) {
                double el = kt_now() - t_start;
                char extra[128];
                snprintf(extra, sizeof extra, "%.1f img/s  loss %.4f  lr %.2e", el > 0 ? (double)(x.hits.n - seen0) / el : 0.0,
                         x.loss_sum / (double)(x.hits.n ? x.hits.n : 1), kt_onecycle_lr(&x.sched, x.sched_step));
                kt_progress_update(&pr, b + 1, extra);
            }
        }
        kt_progress_end(&pr);
        if (!s) s = end_epoch(&x, e, t_start, err);
        b0 = 0;
    }
    if (!s && c->log)
        fprintf(c->log, "fold %d/%d done: best val %s %.4f at epoch %d\n", f + 1, r->folds.k,
                r->multilabel ? "micro-F1" : "acc", x.best, x.best_epoch);
    fold_free(&x);
    return s;
}
