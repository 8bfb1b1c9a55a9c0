/* The end of a run: every fold's best checkpoint predicts its own validation items (the out-of-fold
 * set) and the TEST (and held-out VALID) items, which are averaged over the folds; then the seed
 * script's CSVs, the evaluation reports per split and the learning curves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/evaluate.h"
#include "train/report.h"
#include "train/report_csv.h"
#include "train/trainer_internal.h"

typedef struct split_set {
    const char *name;  /* "oof", "test", "valid" */
    int64_t n;
    int64_t *items;    /* (n) dataset item indices */
    double *sum;       /* (n, C) summed probabilities */
    int32_t *fold;     /* (n) 1-based fold of an OOF item */
} split_set;

static kt_status predict_into(kt_run *r, const int64_t *items, int64_t n, float *logits, float *probs, const char *label,
                              kt_err *err) {
    kt_loader *ld = NULL;
    kt_status s = kt_eval_loader_open(&ld, &r->ds, items, n, r->c->img_size, kt_train_mean, kt_train_std, r->eval_batch,
                                      r->c->workers, r->c->backend, err);
    if (!s) s = kt_eval_logits(&r->eval, ld, n, logits, r->c->log, label, err);
    if (ld) kt_loader_close(ld);
    if (!s) kt_logits_to_probs(logits, n, r->C, r->multilabel, probs);
    return s;
}

/* accuracy (argmax) or micro-F1 at 0.5 of probabilities against the dataset's labels */
static double score_probs(const kt_run *r, const split_set *ss, const float *probs) {
    int C = r->C;
    float *z = malloc((size_t)(ss->n * C + 1) * sizeof *z);
    int32_t *lab = malloc((size_t)(ss->n + 1) * sizeof *lab);
    float *tg = malloc((size_t)(ss->n * C + 1) * sizeof *tg);
    if (!z || !lab || !tg) {
        free(z), free(lab), free(tg);
        return NAN;
    }
    for (int64_t i = 0; i < ss->n; i++) {
        lab[i] = r->ds.items[ss->items[i]].label;
        memcpy(tg + i * C, kt_dataset_target(&r->ds, ss->items[i]), (size_t)C * sizeof *tg);
        for (int k = 0; k < C; k++) z[i * C + k] = probs[i * C + k] - 0.5f; /* >= 0 exactly when p >= 0.5; argmax kept */
    }
    kt_hits h = {0};
    kt_hits_add(&h, z, lab, tg, ss->n, C, r->multilabel);
    free(z), free(lab), free(tg);
    return kt_hits_score(&h, r->multilabel);
}

static kt_status write_split(kt_run *r, const split_set *ss, const float *probs, int write_csv, kt_err *err) {
    const kt_train_config *c = r->c;
    int C = r->C;
    int64_t n = ss->n;
    const char **names = malloc((size_t)(n + 1) * sizeof *names);
    int32_t *labels = malloc((size_t)(n + 1) * sizeof *labels);
    uint8_t *targets = malloc((size_t)(n * C + 1));
    kt_status s = (!names || !labels || !targets) ? kt_err_set(err, KT_ERR_NOMEM, "no memory for the %s report", ss->name) : KT_OK;
    for (int64_t i = 0; i < n && !s; i++) {
        names[i] = r->ds.items[ss->items[i]].path;
        labels[i] = r->ds.items[ss->items[i]].label;
        for (int k = 0; k < C; k++) targets[i * C + k] = kt_dataset_target(&r->ds, ss->items[i])[k] > 0.5f;
    }
    const char *const *cn = (const char *const *)r->ds.class_names;
    if (!s && write_csv)
        s = r->multilabel ? kt_probs_csv_write_multilabel(c->out, ss->name, r->train.arch, cn, C, names, targets, probs, (int)n, err)
                          : kt_probs_csv_write(c->out, ss->name, r->train.arch, cn, C, names, labels, probs, (int)n, err);
    if (!s && ss->fold) s = kt_meta_csv_write(c->out, r->train.arch, ss->fold, names, labels, (int)n, err);
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/%s", r->dir, ss->name);
    kt_report_opts ro = {.split = ss->name, .no_plots = c->no_plots};
    if (!s)
        s = r->multilabel ? kt_eval_report_write_multilabel(dir, r->train.arch, cn, C, probs, targets, (int)n, &ro, err)
                          : kt_eval_report_write(dir, r->train.arch, cn, C, probs, labels, (int)n, &ro, err);
    free(names);
    free(labels);
    free(targets);
    return s;
}

kt_status kt_run_reports(kt_run *r, kt_train_result *res, kt_err *err) {
    const kt_train_config *c = r->c;
    int C = r->C, K = r->folds.k;
    int64_t N = r->ds.n_items;
    split_set sets[3] = {{.name = "oof"}, {.name = "test"}, {.name = "valid"}};
    int64_t *row = malloc((size_t)N * sizeof *row), *tmp = malloc((size_t)N * sizeof *tmp);
    float *logits = malloc((size_t)N * C * sizeof *logits), *probs = malloc((size_t)N * C * sizeof *probs);
    kt_status s = (!row || !tmp || !logits || !probs) ? kt_err_set(err, KT_ERR_NOMEM, "no memory for the final predictions") : KT_OK;
    for (int k = 0; k < 3 && !s; k++) {
        sets[k].items = malloc((size_t)N * sizeof(int64_t));
        sets[k].sum = calloc((size_t)N * C, sizeof(double));
        if (!sets[k].items || !sets[k].sum) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for the final predictions");
    }
    if (!s) {
        sets[0].fold = malloc((size_t)N * sizeof(int32_t));
        if (!sets[0].fold) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for the final predictions");
        /* OOF rows in item order; row[item] = its OOF row */
        for (int64_t i = 0; i < N && !s; i++)
            if (r->folds.fold[i] >= 0) {
                row[i] = sets[0].n;
                sets[0].fold[sets[0].n] = r->folds.fold[i] + 1;
                sets[0].items[sets[0].n++] = i;
            }
        sets[1].n = kt_folds_items_where(&r->folds, KT_FOLD_TEST, sets[1].items);
        sets[2].n = kt_folds_items_where(&r->folds, KT_FOLD_HOLDOUT, sets[2].items);
    }
    for (int f = 0; f < K && !s; f++) {
        char path[4200], label[64];
        kt_run_best_path(r, f, path, sizeof path);
        s = kt_model_load_weights(&r->train, path, 0, NULL, err);
        int64_t nv = s ? 0 : kt_folds_val_items(&r->folds, f, tmp);
        snprintf(label, sizeof label, "fold %d best: oof", f + 1);
        if (!s && nv) s = predict_into(r, tmp, nv, logits, probs, label, err);
        for (int64_t i = 0; i < nv && !s; i++)
            for (int k = 0; k < C; k++) sets[0].sum[row[tmp[i]] * C + k] = probs[i * C + k];
        for (int k = 1; k < 3 && !s; k++) {
            if (!sets[k].n) continue;
            snprintf(label, sizeof label, "fold %d best: %s", f + 1, sets[k].name);
            s = predict_into(r, sets[k].items, sets[k].n, logits, probs, label, err);
            for (int64_t i = 0; i < sets[k].n * C && !s; i++) sets[k].sum[i] += probs[i] / K;
        }
    }
    for (int k = 0; k < 3 && !s; k++) {
        if (!sets[k].n) continue;
        for (int64_t i = 0; i < sets[k].n * C; i++) probs[i] = (float)sets[k].sum[i];
        s = write_split(r, &sets[k], probs, k < 2, err);
        double score = s ? NAN : score_probs(r, &sets[k], probs);
        if (k == 0) res->oof_score = score;
        if (k == 1) res->test_score = score;
        if (!s && c->log)
            fprintf(c->log, "%s %s (%lld images%s): %s %.4f  -> %s/%s/\n", r->train.arch, sets[k].name, (long long)sets[k].n,
                    k == 0 ? ", each by the fold that did not train on it" : ", averaged over the folds",
                    r->multilabel ? "micro-F1" : "accuracy", score, r->dir, sets[k].name);
    }
    if (!s) s = kt_training_log_write(r->dir, r->train.arch, r->recs, r->n_recs, !c->no_plots, err);
    if (!s && c->log)
        fprintf(c->log, "wrote %s/{%s_fold1..%d_best.safetensors, oof_probs_%s.csv, test_probs_%s.csv, meta_%s.csv, folds.csv}, "
                "%s/{%s, %s}\n", c->out, r->train.arch, K, r->train.arch, r->train.arch, r->train.arch, r->dir,
                KT_EPOCH_LOG_FILE, c->no_plots ? "(no plots)" : KT_CURVES_PNG);
    for (int k = 0; k < 3; k++) {
        free(sets[k].items);
        free(sets[k].sum);
        free(sets[k].fold);
    }
    free(row);
    free(tmp);
    free(logits);
    free(probs);
    return s;
}
