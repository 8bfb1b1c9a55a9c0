/* Batched evaluation forward passes, host-side losses/scores, checkpoint ensembles. */
#include "train/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/safetensors.h"
#include "datasets/augment.h"

void kt_eval_config_default(kt_eval_config *c) {
    memset(c, 0, sizeof *c);
    c->batch = 32;
    c->workers = 2;
}

static int pin_batches(void *be, void *p, size_t bytes) {
    kt_backend *b = be;
    kt_err e = {0};
    return b->pin_host(b, p, bytes, &e) == KT_OK ? 0 : 1; /* refused: the batches stay pageable, uploads slower */
}

static void unpin_batches(void *be, void *p) {
    kt_backend *b = be;
    b->unpin_host(b, p);
}

void kt_loader_pin_for(kt_loader_config *lc, kt_backend *be) {
    int can = be && be->pin_host && be->unpin_host;
    lc->pin = can ? pin_batches : NULL;
    lc->unpin = can ? unpin_batches : NULL;
    lc->pin_ctx = can ? be : NULL;
}

kt_status kt_eval_loader_open(kt_loader **ld, const kt_dataset *ds, const int64_t *items, int64_t n, int img,
                              const float mean[3], const float std[3], int batch, int workers, kt_backend *be, kt_err *err) {
    kt_loader_config lc;
    kt_loader_config_default(&lc, img);
    kt_aug_default_eval(&lc.aug, img);
    memcpy(lc.aug.mean, mean, sizeof lc.aug.mean);
    memcpy(lc.aug.std, std, sizeof lc.aug.std);
    lc.batch_size = batch;
    lc.workers = workers;
    lc.shuffle = 0;
    lc.drop_last = 0;
    lc.strict = 1; /* an evaluation image that cannot be read is an error, not silently replaced */
    kt_loader_pin_for(&lc, be);
    return kt_loader_open(ld, ds, items, n, &lc, err);
}

kt_status kt_eval_logits(kt_model *m, kt_loader *ld, int64_t n, float *logits, FILE *progress, const char *label,
                         kt_err *err) {
    int c = m->o.num_classes, B = m->o.batch;
    float *buf = malloc((size_t)B * (size_t)c * sizeof *buf);
    if (!buf) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %d x %d logits", B, c);
    m->g.training = 0;
    kt_status s = kt_loader_start(ld, 0, 0, err);
    kt_progress pr;
    kt_progress_begin(&pr, progress, label ? label : "eval", n, "img");
    int64_t done = 0;
    while (!s) {
        const kt_batch *b = NULL;
        s = kt_loader_next(ld, &b, err);
        if (s || !b) break;
        if (b->n > B || done + b->n > n) {
            s = kt_err_set(err, KT_ERR_STATE, "evaluation loader gave %d images past %lld of %lld (model batch %d)", b->n,
                           (long long)done, (long long)n, B);
            break;
        }
        s = kt_model_set_input(m, b->images, err);
        if (!s) s = kt_graph_forward(&m->g, err);
        if (!s) s = kt_model_get_logits(m, buf, err);
        if (s) break;
        memcpy(logits + done * c, buf, (size_t)b->n * (size_t)c * sizeof *buf);
        done += b->n;
        kt_progress_update(&pr, done, NULL);
    }
    kt_progress_end(&pr);
    free(buf);
    if (!s && done != n) s = kt_err_set(err, KT_ERR_STATE, "evaluation saw %lld of %lld images", (long long)done, (long long)n);
    return s;
}

void kt_logits_to_probs(const float *logits, int64_t n, int c, int multilabel, float *probs) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        float *p = probs + i * c;
        if (multilabel) {
            for (int j = 0; j < c; j++) p[j] = (float)(1.0 / (1.0 + exp(-(double)z[j])));
            continue;
        }
        double mx = z[0], sum = 0;
        for (int j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c; j++) sum += exp((double)z[j] - mx);
        for (int j = 0; j < c; j++) p[j] = (float)(exp((double)z[j] - mx) / sum);
    }
}

double kt_logits_loss(const float *logits, const int32_t *labels, const float *targets, int64_t n, int c, int multilabel,
                      float smoothing) {
    if (n <= 0) return NAN;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        if (multilabel) {
            for (int j = 0; j < c; j++) { /* max(z, 0) - z t + log(1 + exp(-|z|)), the stable form */
                double x = z[j], t = targets[i * c + j];
                total += (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
            }
            continue;
        }
        double mx = z[0], sum = 0, mean_lp = 0;
        for (int j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c; j++) sum += exp((double)z[j] - mx);
        double lse = mx + log(sum);
        for (int j = 0; j < c; j++) mean_lp += (double)z[j] - lse;
        mean_lp /= c;
        total += -(1.0 - smoothing) * ((double)z[labels[i]] - lse) - smoothing * mean_lp;
    }
    return total / (double)(multilabel ? n * c : n);
}

void kt_hits_add(kt_hits *h, const float *logits, const int32_t *labels, const float *targets, int64_t n, int c,
                 int multilabel) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        h->n++;
        if (multilabel) {
            for (int j = 0; j < c; j++) {
                int pred = z[j] >= 0, t = targets[i * c + j] > 0.5f;
                h->tp += pred && t;
                h->fp += pred && !t;
                h->fn += !pred && t;
            }
            continue;
        }
        int best = 0;
        for (int j = 1; j < c; j++)
            if (z[j] > z[best]) best = j;
        h->correct += best == labels[i];
    }
}

double kt_hits_score(const kt_hits *h, int multilabel) {
    if (multilabel) {
        int64_t d = 2 * h->tp + h->fp + h->fn;
        return d ? 2.0 * (double)h->tp / (double)d : 0.0;
    }
    return h->n ? (double)h->correct / (double)h->n : NAN;
}

/* Column map from a checkpoint's classes to the dataset's: map[k] = dataset column of checkpoint class k. */
static kt_status class_map(const kt_ckpt_meta *md, int64_t file_classes, const kt_dataset *ds, const char *path, int *map,
                           kt_err *err) {
    int C = ds->n_classes;
    if (md->class_names && md->n_classes > 0) {
        if (md->n_classes != C)
            return kt_err_set(err, KT_ERR_ARG, "%s has %d classes, the dataset %s has %d", path, md->n_classes, ds->root, C);
        for (int k = 0; k < C; k++) {
            map[k] = kt_dataset_class_index(ds, md->class_names[k]);
            if (map[k] < 0)
                return kt_err_set(err, KT_ERR_ARG, "%s: class '%s' is not a class of the dataset %s", path, md->class_names[k],
                                  ds->root);
        }
        return KT_OK;
    }
    if (file_classes != C)
        return kt_err_set(err, KT_ERR_ARG, "%s has %lld classes (and no class names), the dataset %s has %d", path,
                          (long long)file_classes, ds->root, C);
    for (int k = 0; k < C; k++) map[k] = k;
    return KT_OK;
}

/* Runs one checkpoint over the items and adds its probabilities (dataset column order) into acc. */
static kt_status run_one(const char *path, const kt_dataset *ds, const int64_t *items, int64_t n, const kt_eval_config *c,
                         double *acc, int *multilabel, kt_err *err) {
    kt_st_file f;
    kt_ckpt_meta md;
    kt_ckpt_summary sum;
    kt_status s = kt_st_open(&f, path, err);
    if (s) return s;
    s = kt_ckpt_meta_from_file(&f, &md, err);
    if (s) {
        kt_st_close(&f);
        return s;
    }
    kt_ckpt_inspect(&f, &sum);
    kt_st_close(&f);
    const char *arch = md.arch ? md.arch : (sum.inferred[0] ? sum.inferred : NULL);
    int C = ds->n_classes, img = md.img_h > 0 ? md.img_h : 224;
    int *map = calloc((size_t)C, sizeof *map);
    float *logits = malloc((size_t)n * (size_t)C * sizeof *logits), *probs = malloc((size_t)n * (size_t)C * sizeof *probs);
    kt_model m;
    memset(&m, 0, sizeof m);
    kt_loader *ld = NULL;
    if (!map || !logits || !probs) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for %lld x %d probabilities", (long long)n, C);
    else if (!arch) s = kt_err_set(err, KT_ERR_FORMAT, "%s: no architecture in its metadata and none inferable from its names", path);
    else if (md.img_h > 0 && md.img_w > 0 && md.img_h != md.img_w)
        s = kt_err_set(err, KT_ERR_UNSUPPORTED, "%s: non-square image size %dx%d", path, md.img_h, md.img_w);
    if (!s) s = class_map(&md, md.n_classes > 0 ? md.n_classes : sum.n_classes, ds, path, map, err);
    const char *task = kt_ckpt_meta_get_extra(&md, KT_META_TASK);
    int ml = task ? !strcmp(task, "multi_label") : ds->kind == KT_LABELS_MULTI;
    if (!s && *multilabel >= 0 && ml != *multilabel)
        s = kt_err_set(err, KT_ERR_ARG, "%s is a %s model; the ensemble's others are %s", path,
                       ml ? "multi-label" : "single-label", ml ? "single-label" : "multi-label");
    if (!s) {
        kt_model_opts o = {.arch = arch, .num_classes = C, .batch = c->batch, .img_h = img, .img_w = img, .train = 0,
                           .multilabel = ml, .backend = c->backend};
        s = kt_model_create(&m, &o, NULL, err);
    }
    if (!s) s = kt_model_load_weights(&m, path, 0, NULL, err);
    static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};
    if (!s) s = kt_eval_loader_open(&ld, ds, items, n, img, md.has_norm ? md.mean : in_mean, md.has_norm ? md.std : in_std,
                                    c->batch, c->workers, c->backend, err);
    if (!s) s = kt_eval_logits(&m, ld, n, logits, c->progress, c->label, err);
    if (!s) {
        kt_logits_to_probs(logits, n, C, ml, probs);
        for (int64_t i = 0; i < n; i++)
            for (int k = 0; k < C; k++) acc[i * C + map[k]] += probs[i * C + k];
        *multilabel = ml;
    }
    if (ld) kt_loader_close(ld);
    if (m.g.nodes) kt_model_free(&m);
    kt_ckpt_meta_free(&md);
    free(map);
    free(logits);
    free(probs);
    return s;
}

kt_status kt_eval_ensemble(const char *const *paths, int n_paths, const kt_dataset *ds, const int64_t *items, int64_t n,
                           const kt_eval_config *c, float *probs, int *multilabel, kt_err *err) {
    if (n_paths < 1) return kt_err_set(err, KT_ERR_ARG, "no checkpoint to evaluate");
    if (n < 1) return kt_err_set(err, KT_ERR_ARG, "no images to evaluate");
    if (c->batch < 1 || c->workers < 1) return kt_err_set(err, KT_ERR_ARG, "batch %d and workers %d must be >= 1", c->batch, c->workers);
    int C = ds->n_classes;
    double *acc = calloc((size_t)n * (size_t)C, sizeof *acc);
    if (!acc) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %lld x %d probabilities", (long long)n, C);
    int ml = -1;
    kt_status s = KT_OK;
    for (int i = 0; i < n_paths && !s; i++) s = run_one(paths[i], ds, items, n, c, acc, &ml, err);
    if (!s) {
        for (int64_t i = 0; i < n * C; i++) probs[i] = (float)(acc[i] / n_paths);
        *multilabel = ml;
    }
    free(acc);
    return s;
}
