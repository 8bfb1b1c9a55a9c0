/* The predictor: checkpoints -> inference models (same forward graph as training), the training
 * evaluation preprocessing, softmax (or per-class sigmoids for a multi-label run) averaged over an
 * ensemble, a mutex for concurrent callers' forwards, optionally batched (--max-batch).
 * Decoding runs outside that mutex and in parallel: a 12-megapixel photo takes ~40 ms to decode
 * and resize on one core, several times convnext_atto's forward on the CPU and ~10x a GPU's, so a
 * decode under the lock (or one image after another) left the other cores and the GPU waiting. */
#include "serve/predict.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/timer.h"
#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/safetensors.h"
#include "datasets/augment.h"
#include "engine/backend_cuda.h"
#include "engine/device_spec.h"
#include "nets/model.h"
#include "serve/gradcam.h"
#include "train/evaluate.h"

struct kt_predictor {
    pthread_mutex_t mu;
    int n, batch, classes, size;
    int multilabel;   /* the checkpoints were trained multi-label (BCE): per-class sigmoids, not a softmax */
    int threads;      /* OpenMP threads per run (0: the caller's); set in each calling thread, below */
    kt_model *models; /* (n) */
    kt_model cam;     /* Grad-CAM graph sharing models[0]'s parameters, built on first use */
    int cam_ready;
    char arch[64], device[16];
    kt_backend *be; /* NULL: CPU; else a CUDA backend this predictor owns */
    char **class_names; /* (classes) */
    kt_aug_config eval;
    pthread_mutex_t dec_mu; /* guards the free decoders and the pixel budget below */
    kt_aug_ctx **dec_free;  /* decoders not in use, kept for the next image (their buffers stay sized) */
    int n_free, cap_free;
    pthread_cond_t dec_cv;  /* a decode finished: its pixels are back in the budget */
    int64_t px_budget;      /* source pixels decoded at once, at most (one image may exceed it alone) */
    int64_t px_inflight, px_peak;
    float *x;      /* (batch, size, size, 3) */
    float *logits; /* (batch, classes) */

    /* Request batching (kt_predictor_set_max_batch; serve --max-batch): callers that arrive while a
     * forward runs queue up, and the next forward answers up to max_batch of them at once, through
     * the smallest graph that holds them (models[] for one, then batch 2, 4, ..., max_batch). */
    int max_batch;               /* 1: off */
    int n_lv, lv_batch[8];       /* graphs beyond models[] and their batch sizes, ascending */
    kt_model *lv_models;         /* (n_lv * n), sharing models[]'s parameters */
    float *lv_x, *lv_logits, *lv_probs; /* (max_batch, size, size, 3), (max_batch, classes) x 2 */
    pthread_mutex_t q_mu;        /* the queue, the leader flag, the counts */
    pthread_cond_t q_cv;         /* a batch finished, or the lead is free */
    struct pending *q_head, *q_tail;
    int q_len, leader, held;
    long long n_forwards, n_answered;
};

/* a request waiting for a batched forward */
typedef struct pending {
    const float *x;  /* (size, size, 3) decoded input */
    float *probs;    /* (classes) answer */
    kt_status st;
    kt_err err;
    int done, batch; /* batch: requests its forward answered */
    double t_start, t_end;
    struct pending *next;
} pending;

/* Reads what a checkpoint says about itself: architecture, classes, input size, normalisation. */
static kt_status read_meta(const char *path, kt_ckpt_meta *meta, char *arch, size_t arch_len, kt_err *err) {
    kt_st_file f;
    kt_status s = kt_st_open(&f, path, err);
    if (s) return s;
    s = kt_ckpt_meta_from_file(&f, meta, err);
    if (!s) {
        kt_ckpt_summary sum;
        kt_ckpt_inspect(&f, &sum);
        if (meta->arch) snprintf(arch, arch_len, "%s", meta->arch);
        else if (sum.inferred[0]) snprintf(arch, arch_len, "%s", sum.inferred);
        else s = kt_err_set(err, KT_ERR_FORMAT, "%s: no architecture in its metadata and none recognised from its tensor names", path);
        if (!s && meta->n_classes <= 0) meta->n_classes = (int)sum.n_classes;
        if (!s && meta->n_classes <= 0) s = kt_err_set(err, KT_ERR_FORMAT, "%s: cannot tell its number of classes", path);
        if (!s && sum.prefix[0]) s = kt_err_set(err, KT_ERR_FORMAT, "%s: tensors sit under '%s', not a plain model checkpoint", path, sum.prefix);
    }
    kt_st_close(&f);
    return s;
}

static void free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void kt_predictor_free(kt_predictor *p) {
    if (!p) return;
    if (p->cam_ready) kt_model_free(&p->cam);
    for (int i = 0; i < p->n_lv * p->n; i++) kt_model_free(&p->lv_models[i]);
    free(p->lv_models);
    free(p->lv_x), free(p->lv_logits), free(p->lv_probs);
    pthread_cond_destroy(&p->q_cv);
    pthread_mutex_destroy(&p->q_mu);
    for (int i = 0; i < p->n; i++) kt_model_free(&p->models[i]);
    free(p->models);
    free_names(p->class_names, p->classes);
    for (int i = 0; i < p->n_free; i++) {
        kt_aug_ctx_free(p->dec_free[i]);
        free(p->dec_free[i]);
    }
    free(p->dec_free);
    pthread_cond_destroy(&p->dec_cv);
    pthread_mutex_destroy(&p->dec_mu);
    if (p->be && p->be->destroy) p->be->destroy(p->be);
    free(p->x);
    free(p->logits);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* "cpu", "cuda", "cuda:N", or "auto" (cuda when this build has it and a GPU is present). */
static kt_backend *pick_backend(const char *device, char *name, size_t len, kt_err *err, kt_status *st) {
    kt_device_spec d;
    if (!device) device = "cpu";
    if ((*st = kt_device_spec_parse(device, 1, &d, err))) return NULL; /* its message begins "device '...'" */
    int cuda = d.device == KT_CUDA && (!d.is_auto || kt_backend_cuda_available());
    kt_device_spec ran = cuda ? (kt_device_spec){KT_CUDA, d.index, 0} : (kt_device_spec){KT_CPU, 0, 0};
    kt_device_spec_name(&ran, name, len);
    if (!cuda) return NULL;
    kt_backend *be = NULL;
    *st = kt_backend_cuda_create(&be, d.index, err);
    if (*st && d.is_auto) /* the default: say how to run without the GPU */
        kt_err_prefix(err, "device auto: a GPU is present but could not be used (--device cpu runs on the CPU): ");
    else if (*st)
        kt_err_prefix(err, "device %s: ", device);
    return be;
}

int kt_predictor_device_error(const kt_err *err) { return err && err->code != KT_OK && !strncmp(err->msg, "device ", 7); }

kt_status kt_predictor_open_batched(kt_predictor **out, const char *const *paths, int n, const char *device, int threads,
                                    int batch, kt_err *err) {
    *out = NULL;
    if (n < 1) return kt_err_set(err, KT_ERR_ARG, "no checkpoint given");
    if (batch < 1) return kt_err_set(err, KT_ERR_ARG, "batch %d must be at least 1", batch);
    kt_predictor *p = calloc(1, sizeof *p);
    if (!p) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a predictor");
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->dec_mu, NULL);
    pthread_cond_init(&p->dec_cv, NULL);
    pthread_mutex_init(&p->q_mu, NULL);
    pthread_cond_init(&p->q_cv, NULL);
    p->max_batch = 1;
    p->px_budget = KT_IMAGE_MAX_PIXELS_DEFAULT;
    p->models = calloc((size_t)n, sizeof *p->models);
    kt_status s = p->models ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory for models");
    if (s) {
        pthread_cond_destroy(&p->q_cv);
        pthread_mutex_destroy(&p->q_mu);
        pthread_cond_destroy(&p->dec_cv);
        pthread_mutex_destroy(&p->dec_mu);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return s;
    }
    if (threads > 0) omp_set_num_threads(threads);
    p->threads = threads;
    kt_backend *be = pick_backend(device, p->device, sizeof p->device, err, &s);
    p->be = be;
    p->batch = batch;
    for (int i = 0; i < n && !s; i++) {
        kt_ckpt_meta meta;
        char arch[64] = "";
        kt_ckpt_meta_init(&meta);
        s = read_meta(paths[i], &meta, arch, sizeof arch, err);
        int size = meta.img_h > 0 ? meta.img_h : 224;
        /* what `keratrack train` recorded; a checkpoint without it (timm's) is single-label */
        const char *task = kt_ckpt_meta_get_extra(&meta, KT_META_TASK);
        int ml = task && !strcmp(task, "multi_label");
        if (!s && meta.img_w > 0 && meta.img_w != size)
            s = kt_err_set(err, KT_ERR_UNSUPPORTED, "%s: non-square input %dx%d is not supported for prediction", paths[i], meta.img_h, meta.img_w);
        if (!s && i == 0) {
            p->classes = meta.n_classes;
            p->size = size;
            p->multilabel = ml;
            snprintf(p->arch, sizeof p->arch, "%s", arch);
            kt_aug_default_eval(&p->eval, size);
            if (meta.has_norm) {
                memcpy(p->eval.mean, meta.mean, sizeof meta.mean);
                memcpy(p->eval.std, meta.std, sizeof meta.std);
            }
            p->class_names = calloc((size_t)p->classes, sizeof(char *));
            for (int c = 0; p->class_names && c < p->classes && !s; c++) {
                char buf[32];
                snprintf(buf, sizeof buf, "class_%d", c);
                p->class_names[c] = strdup(meta.class_names ? meta.class_names[c] : buf);
                if (!p->class_names[c]) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for class names");
            }
        } else if (!s) {
            if (meta.n_classes != p->classes || size != p->size)
                s = kt_err_set(err, KT_ERR_ARG, "%s: %d classes at %d px, but %s has %d classes at %d px: an ensemble needs one task",
                               paths[i], meta.n_classes, size, paths[0], p->classes, p->size);
            if (!s && ml != p->multilabel)
                s = kt_err_set(err, KT_ERR_ARG, "%s is a %s model but %s is %s: an ensemble needs one task", paths[i],
                               ml ? "multi-label" : "single-label", paths[0], ml ? "single-label" : "multi-label");
            for (int c = 0; !s && meta.class_names && c < p->classes; c++)
                if (strcmp(meta.class_names[c], p->class_names[c]))
                    s = kt_err_set(err, KT_ERR_ARG, "%s: class %d is '%s' but '%s' in %s", paths[i], c, meta.class_names[c],
                                   p->class_names[c], paths[0]);
        }
        if (!s) {
            kt_model_opts o = {.arch = arch, .num_classes = p->classes, .batch = batch, .img_h = size, .img_w = size, .backend = be};
            s = kt_model_create(&p->models[i], &o, NULL, err);
            if (!s) {
                p->n = i + 1;
                s = kt_model_load_weights(&p->models[i], paths[i], 0, NULL, err);
            }
        }
        kt_ckpt_meta_free(&meta);
    }
    if (!s) {
        p->x = calloc((size_t)batch * (size_t)p->size * (size_t)p->size * 3, sizeof(float));
        p->logits = calloc((size_t)batch * (size_t)p->classes, sizeof(float));
        if (!p->x || !p->logits || !p->class_names) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for prediction buffers");
    }
    if (s) {
        kt_predictor_free(p);
        return s;
    }
    *out = p;
    return KT_OK;
}

kt_status kt_predictor_open(kt_predictor **out, const char *const *paths, int n, const char *device, int threads, kt_err *err) {
    return kt_predictor_open_batched(out, paths, n, device, threads, 1, err);
}

int kt_predictor_num_classes(const kt_predictor *p) { return p->classes; }
const char *kt_predictor_class_name(const kt_predictor *p, int i) { return i >= 0 && i < p->classes ? p->class_names[i] : ""; }
const char *kt_predictor_arch(const kt_predictor *p) { return p->arch; }
const char *kt_predictor_device(const kt_predictor *p) { return p->device; }
int kt_predictor_image_size(const kt_predictor *p) { return p->size; }
int kt_predictor_multilabel(const kt_predictor *p) { return p->multilabel; }
void kt_predictor_set_fast_decode(kt_predictor *p, int on) { p->eval.fast_decode = on != 0; }

/* Runs the n models of set (one graph per checkpoint, all of one batch size) on x and writes the
 * ensemble's mean probabilities of the first k rows to probs (k, C): softmax, or per-class sigmoids
 * for a multi-label model; logits is scratch of the set's batch. */
static kt_status forward_set(kt_predictor *p, kt_model *set, const float *x, float *logits, int k, float *probs, kt_err *err) {
    int C = p->classes;
    memset(probs, 0, sizeof(float) * (size_t)k * (size_t)C);
    float *one = malloc(sizeof(float) * (size_t)C);
    if (!one) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %d probabilities", C);
    for (int i = 0; i < p->n; i++) {
        kt_model *m = &set[i];
        kt_status s = kt_model_set_input(m, x, err);
        if (!s) s = kt_graph_forward(&m->g, err);
        if (!s) s = kt_model_get_logits(m, logits, err);
        if (s) {
            free(one);
            return s;
        }
        for (int r = 0; r < k; r++) {
            kt_logits_to_probs(logits + (size_t)r * C, 1, C, p->multilabel, one);
            for (int c = 0; c < C; c++) probs[(size_t)r * C + c] += one[c] / (float)p->n;
        }
    }
    free(one);
    return KT_OK;
}

/* every model on p->x (the predictor's own batch) */
static kt_status forward_all(kt_predictor *p, int k, float *probs, kt_err *err) {
    return forward_set(p, p->models, p->x, p->logits, k, probs, err);
}

/* A decoder for one image at a time: a kept one when free, else a new one (kept when given back). */
static kt_status decoder_take(kt_predictor *p, kt_aug_ctx **out, kt_err *err) {
    kt_aug_ctx *c = NULL;
    pthread_mutex_lock(&p->dec_mu);
    if (p->n_free > 0) c = p->dec_free[--p->n_free];
    pthread_mutex_unlock(&p->dec_mu);
    if (!c) {
        c = malloc(sizeof *c);
        if (!c) return kt_err_set(err, KT_ERR_NOMEM, "no memory for an image decoder");
        kt_status s = kt_aug_ctx_init(c, err);
        if (s) {
            free(c);
            return s;
        }
    }
    *out = c;
    return KT_OK;
}

static void decoder_give(kt_predictor *p, kt_aug_ctx *c) {
    pthread_mutex_lock(&p->dec_mu);
    if (p->n_free == p->cap_free) {
        int cap = p->cap_free ? 2 * p->cap_free : 8;
        kt_aug_ctx **a = realloc(p->dec_free, sizeof *a * (size_t)cap);
        if (a) p->dec_free = a, p->cap_free = cap;
    }
    int kept = p->n_free < p->cap_free;
    if (kept) p->dec_free[p->n_free++] = c;
    pthread_mutex_unlock(&p->dec_mu);
    if (!kept) { /* no memory to keep it: let it go */
        kt_aug_ctx_free(c);
        free(c);
    }
}

/* Decodes run side by side only while their source images add up to the pixel budget: a full
 * decode holds 3 bytes a pixel (300 MB at the 100-megapixel limit), and one decode at a time had
 * bounded that; now 4 concurrent uploads at the limit wait their turn instead of taking 1.2 GB. */
static void budget_take(kt_predictor *p, int64_t px) {
    pthread_mutex_lock(&p->dec_mu);
    while (p->px_inflight > 0 && p->px_inflight + px > p->px_budget) pthread_cond_wait(&p->dec_cv, &p->dec_mu);
    p->px_inflight += px;
    if (p->px_inflight > p->px_peak) p->px_peak = p->px_inflight;
    pthread_mutex_unlock(&p->dec_mu);
}

static void budget_give(kt_predictor *p, int64_t px) {
    pthread_mutex_lock(&p->dec_mu);
    p->px_inflight -= px;
    pthread_cond_broadcast(&p->dec_cv);
    pthread_mutex_unlock(&p->dec_mu);
}

/* One image, from bytes (path NULL) or a file, decoded and preprocessed into x (size, size, 3). */
static kt_status decode_one(kt_predictor *p, const char *path, const void *bytes, size_t len, float *x, kt_err *err) {
    kt_aug_ctx *dec = NULL;
    kt_status s = decoder_take(p, &dec, err);
    if (s) return s;
    const uint8_t *data = bytes;
    if (path) s = kt_decoder_read_file(&dec->dec, path, &data, &len, err);
    if (!s) {
        /* the header says how many pixels the decode will hold; a header that does not parse costs
         * nothing here, and the decode reports why */
        kt_decode_opts o = {.max_pixels = p->eval.max_pixels};
        kt_image_header h;
        int64_t px = kt_image_probe(&dec->dec, data, len, &o, &h, NULL) == KT_OK ? (int64_t)h.w * h.h : 0;
        budget_take(p, px);
        s = kt_aug_run(dec, &p->eval, 0, data, len, x, err);
        budget_give(p, px);
        if (s && path) kt_err_prefix(err, "%s: ", path);
    }
    kt_aug_ctx_trim(dec);
    decoder_give(p, dec);
    return s;
}

void kt_predictor_set_decode_budget(kt_predictor *p, int64_t pixels) {
    pthread_mutex_lock(&p->dec_mu);
    p->px_budget = pixels > 0 ? pixels : KT_IMAGE_MAX_PIXELS_DEFAULT;
    pthread_cond_broadcast(&p->dec_cv);
    pthread_mutex_unlock(&p->dec_mu);
}

int64_t kt_predictor_decode_peak(kt_predictor *p) {
    pthread_mutex_lock(&p->dec_mu);
    int64_t v = p->px_peak;
    pthread_mutex_unlock(&p->dec_mu);
    return v;
}

/* k files into x (k, size, size, 3) on the calling thread's OpenMP threads; the error reported is
 * that of the first file in the list that failed, whatever the order they finished in. */
static kt_status decode_files(kt_predictor *p, const char *const *paths, int k, float *x, kt_err *err) {
    size_t img = (size_t)p->size * p->size * 3;
    kt_err *errs = malloc(sizeof *errs * (size_t)k);
    kt_status *st = malloc(sizeof *st * (size_t)k);
    if (!errs || !st) {
        free(errs), free(st);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory to decode %d images", k);
    }
#pragma omp parallel for schedule(dynamic, 1) if (k > 1)
    for (int j = 0; j < k; j++) st[j] = decode_one(p, paths[j], NULL, 0, x + img * (size_t)j, &errs[j]);
    kt_status s = KT_OK;
    for (int j = 0; j < k && !s; j++)
        if ((s = st[j]) && err) *err = errs[j];
    free(errs), free(st);
    return s;
}

/* omp_set_num_threads sets the calling thread's own team size, and runs come from the server's
 * worker threads, not the thread that opened the predictor: set it in each (--model-threads was
 * otherwise ignored, and every worker started a team of all cores). */
static void use_threads(const kt_predictor *p) {
    if (p->threads > 0 && omp_get_max_threads() != p->threads) omp_set_num_threads(p->threads);
}

kt_status kt_predictor_set_max_batch(kt_predictor *p, int max_batch, kt_err *err) {
    if (max_batch < 1 || max_batch > KT_PREDICT_MAX_BATCH)
        return kt_err_set(err, KT_ERR_ARG, "max batch %d must be 1..%d", max_batch, KT_PREDICT_MAX_BATCH);
    if (p->n_lv || p->max_batch > 1) return kt_err_set(err, KT_ERR_STATE, "request batching is already set up");
    if (max_batch == 1) return KT_OK;
    if (p->batch != 1) return kt_err_set(err, KT_ERR_ARG, "request batching needs a predictor of batch 1, not %d", p->batch);
    int sizes[8], n_lv = 0;
    for (int b = 2; b < max_batch; b *= 2) sizes[n_lv++] = b;
    sizes[n_lv++] = max_batch;
    size_t img = (size_t)p->size * p->size * 3, C = (size_t)p->classes;
    p->lv_models = calloc((size_t)(n_lv * p->n), sizeof *p->lv_models);
    p->lv_x = calloc((size_t)max_batch * img, sizeof(float));
    p->lv_logits = malloc(sizeof(float) * (size_t)max_batch * C);
    p->lv_probs = malloc(sizeof(float) * (size_t)max_batch * C);
    kt_status s = p->lv_models && p->lv_x && p->lv_logits && p->lv_probs ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory for batching");
    for (int l = 0; l < n_lv && !s; l++)
        for (int i = 0; i < p->n && !s; i++) {
            kt_model_opts o = p->models[i].o;
            o.batch = sizes[l];
            s = kt_model_create(&p->lv_models[p->n_lv * p->n + i], &o, &p->models[i], err);
            if (!s && i == p->n - 1) p->lv_batch[p->n_lv++] = sizes[l]; /* a level counts once all its graphs exist */
            else if (s) {
                for (int j = 0; j < i; j++) kt_model_free(&p->lv_models[p->n_lv * p->n + j]);
                kt_err_prefix(err, "graphs of batch %d for request batching: ", sizes[l]);
            }
        }
    if (!s) p->max_batch = max_batch;
    return s;
}

void kt_predictor_hold_batches(kt_predictor *p, int hold) {
    pthread_mutex_lock(&p->q_mu);
    p->held = hold != 0;
    pthread_cond_broadcast(&p->q_cv);
    pthread_mutex_unlock(&p->q_mu);
}

void kt_predictor_batch_stats(kt_predictor *p, long long *forwards, long long *answered, int *queued) {
    pthread_mutex_lock(&p->q_mu);
    if (forwards) *forwards = p->n_forwards;
    if (answered) *answered = p->n_answered;
    if (queued) *queued = p->q_len;
    pthread_mutex_unlock(&p->q_mu);
}

/* Requests the next forward takes from a queue of q: the largest graph size that q fills (1, 2, 4,
 * ..., max_batch), so no forward computes padding rows (3 waiting: 2 now, 1 next). */
static int batch_take(const kt_predictor *p, int q) {
    int k = 1;
    for (int l = 0; l < p->n_lv; l++)
        if (p->lv_batch[l] <= q) k = p->lv_batch[l];
    return k;
}

/* One forward for the k requests b[] (under the model lock), k a graph size (batch_take); each
 * gets its answer, or the forward's error. */
static void forward_batch(kt_predictor *p, pending **b, int k) {
    size_t img = (size_t)p->size * p->size * 3, C = (size_t)p->classes;
    pthread_mutex_lock(&p->mu);
    use_threads(p);
    double t0 = kt_now();
    kt_model *set = p->models;
    for (int l = 0; k > 1 && l < p->n_lv; l++)
        if (p->lv_batch[l] == k) set = p->lv_models + (size_t)l * p->n;
    for (int i = 0; i < k; i++) memcpy(p->lv_x + img * (size_t)i, b[i]->x, sizeof(float) * img);
    kt_err e = {0};
    kt_status s = forward_set(p, set, p->lv_x, p->lv_logits, k, p->lv_probs, &e);
    double t1 = kt_now();
    for (int i = 0; i < k; i++) {
        if (!s) memcpy(b[i]->probs, p->lv_probs + C * (size_t)i, sizeof(float) * C);
        b[i]->st = s, b[i]->err = e, b[i]->batch = k, b[i]->t_start = t0, b[i]->t_end = t1;
    }
    pthread_mutex_unlock(&p->mu);
}

/* The batched path of run_bytes: queue the decoded input; the caller that finds nobody leading
 * takes the lead and runs batches off the front of the queue until its own request is answered,
 * then hands the lead on. */
static kt_status run_batched(kt_predictor *p, const float *x, float *probs, double t_ready, kt_predict_times *tm, kt_err *err) {
    pending me = {.x = x, .probs = probs};
    pthread_mutex_lock(&p->q_mu);
    if (p->q_tail) p->q_tail->next = &me;
    else p->q_head = &me;
    p->q_tail = &me;
    p->q_len++;
    while (!me.done) {
        if (p->leader || p->held) {
            pthread_cond_wait(&p->q_cv, &p->q_mu);
            continue;
        }
        p->leader = 1;
        while (!me.done && !p->held) {
            pending *b[KT_PREDICT_MAX_BATCH];
            int k = 0, take = batch_take(p, p->q_len);
            while (k < take && p->q_head) {
                b[k++] = p->q_head;
                p->q_head = p->q_head->next;
                p->q_len--;
            }
            if (!p->q_head) p->q_tail = NULL;
            pthread_mutex_unlock(&p->q_mu);
            forward_batch(p, b, k);
            pthread_mutex_lock(&p->q_mu);
            for (int i = 0; i < k; i++) b[i]->done = 1;
            p->n_forwards++;
            p->n_answered += k;
            pthread_cond_broadcast(&p->q_cv);
        }
        p->leader = 0;
        pthread_cond_broadcast(&p->q_cv);
    }
    pthread_mutex_unlock(&p->q_mu);
    tm->wait = me.t_start - t_ready;
    tm->forward = me.t_end - me.t_start;
    tm->batch = me.batch;
    if (me.st && err) *err = me.err;
    return me.st;
}

kt_status kt_predictor_run_bytes_timed(kt_predictor *p, const void *bytes, size_t len, float *probs, kt_predict_times *t,
                                       kt_err *err) {
    kt_predict_times tm = {0};
    size_t img = (size_t)p->size * p->size * 3;
    /* decoded before taking the lock, beside other callers' forwards */
    double t0 = kt_now();
    float *x = malloc(sizeof(float) * img);
    kt_status s = x ? decode_one(p, NULL, bytes, len, x, err) : kt_err_set(err, KT_ERR_NOMEM, "no memory for an input image");
    double t1 = kt_now();
    tm.decode = t1 - t0;
    if (s) {
        free(x);
        if (t) *t = tm;
        return s;
    }
    if (p->max_batch > 1) {
        s = run_batched(p, x, probs, t1, &tm, err);
        free(x);
        if (t) *t = tm;
        return s;
    }
    tm.batch = 1;
    pthread_mutex_lock(&p->mu);
    double t2 = kt_now();
    tm.wait = t2 - t1;
    use_threads(p);
    memcpy(p->x, x, sizeof(float) * img);
    if (p->batch > 1) memset(p->x + img, 0, sizeof(float) * img * (size_t)(p->batch - 1));
    float *all = p->batch > 1 ? malloc(sizeof(float) * (size_t)p->batch * (size_t)p->classes) : probs;
    s = all ? forward_all(p, p->batch, all, err) : kt_err_set(err, KT_ERR_NOMEM, "no memory");
    if (all && all != probs) {
        memcpy(probs, all, sizeof(float) * (size_t)p->classes);
        free(all);
    }
    tm.forward = kt_now() - t2;
    pthread_mutex_unlock(&p->mu);
    free(x);
    if (t) *t = tm;
    return s;
}

kt_status kt_predictor_run_bytes(kt_predictor *p, const void *bytes, size_t len, float *probs, kt_err *err) {
    return kt_predictor_run_bytes_timed(p, bytes, len, probs, NULL, err);
}

kt_status kt_predictor_run_files(kt_predictor *p, const char *const *paths, int n, float *probs, kt_err *err) {
    use_threads(p);
    size_t img = (size_t)p->size * p->size * 3;
    /* each batch decoded in parallel into x, then run under the lock */
    float *x = malloc(sizeof(float) * img * (size_t)p->batch), *tmp = malloc(sizeof(float) * (size_t)p->batch * (size_t)p->classes);
    kt_status s = x && tmp ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory for a batch of %d images", p->batch);
    for (int i0 = 0; i0 < n && !s; i0 += p->batch) {
        int k = n - i0 < p->batch ? n - i0 : p->batch;
        if ((s = decode_files(p, paths + i0, k, x, err))) break;
        pthread_mutex_lock(&p->mu);
        use_threads(p);
        memcpy(p->x, x, sizeof(float) * img * (size_t)k);
        if (k < p->batch) memset(p->x + img * (size_t)k, 0, sizeof(float) * img * (size_t)(p->batch - k));
        s = forward_all(p, p->batch, tmp, err);
        pthread_mutex_unlock(&p->mu);
        if (!s) memcpy(probs + (size_t)i0 * p->classes, tmp, sizeof(float) * (size_t)k * (size_t)p->classes);
    }
    free(x);
    free(tmp);
    return s;
}

kt_status kt_predictor_gradcam(kt_predictor *p, const char *path, int cls, const char *out_png, int *cls_out, kt_err *err) {
    pthread_mutex_lock(&p->mu);
    use_threads(p);
    kt_status s = KT_OK;
    kt_model *m0 = &p->models[0];
    if (!p->cam_ready) {
        kt_model_opts o = m0->o;
        o.batch = 1;
        o.gradcam = 1;
        s = kt_model_create(&p->cam, &o, m0, err);
        if (!s && (!p->cam.features || !p->cam.features->grad))
            s = kt_err_set(err, KT_ERR_UNSUPPORTED, "%s has no feature map for Grad-CAM", p->arch);
        if (!s) p->cam_ready = 1;
    }
    kt_model *m = &p->cam;
    size_t npx = (size_t)p->size * p->size;
    float *x = s ? NULL : malloc(sizeof(float) * npx * 3);
    float *onehot = s ? NULL : calloc((size_t)p->classes, sizeof(float));
    if (!s && (!x || !onehot)) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for Grad-CAM");
    if (!s) s = decode_one(p, path, NULL, 0, x, err);
    if (!s) s = kt_model_set_input(m, x, err);
    if (!s && cls < 0) { /* explain the predicted class */
        float *z = malloc(sizeof(float) * (size_t)p->classes);
        s = z ? kt_graph_forward(&m->g, err) : kt_err_set(err, KT_ERR_NOMEM, "no memory");
        if (!s) s = kt_model_get_logits(m, z, err);
        if (!s) {
            cls = 0;
            for (int c = 1; c < p->classes; c++)
                if (z[c] > z[cls]) cls = c;
        }
        free(z);
    }
    if (!s && cls >= p->classes) s = kt_err_set(err, KT_ERR_ARG, "class %d out of range (the model has %d)", cls, p->classes);
    if (!s) {
        onehot[cls] = 1.0f;
        s = m->g.backend->upload(m->g.backend, m->onehot->data, onehot, sizeof(float) * (size_t)p->classes, err);
    }
    if (!s) s = kt_graph_run(&m->g, err);
    if (!s) {
        kt_node *A = m->features, *dA = m->features->grad;
        int64_t h = A->shape[1], w = A->shape[2], C = A->shape[3];
        float *a = malloc(kt_node_bytes(A)), *da = malloc(kt_node_bytes(dA));
        float *cam = calloc((size_t)(h * w), sizeof(float));
        if (!a || !da || !cam) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for Grad-CAM");
        if (!s) s = m->g.backend->download(m->g.backend, a, A->data, kt_node_bytes(A), err);
        if (!s) s = m->g.backend->download(m->g.backend, da, dA->data, kt_node_bytes(dA), err);
        if (!s) {
            /* weights = spatial mean of the gradient; map = ReLU(sum_c weight_c * A_c) */
            for (int64_t c = 0; c < C; c++) {
                double wc = 0;
                for (int64_t i = 0; i < h * w; i++) wc += da[i * C + c];
                wc /= (double)(h * w);
                for (int64_t i = 0; i < h * w; i++) cam[i] += (float)(wc * a[i * C + c]);
            }
            for (int64_t i = 0; i < h * w; i++) cam[i] = cam[i] > 0 ? cam[i] : 0;
            s = kt_gradcam_write_png(path, cam, (int)h, (int)w, p->class_names[cls], out_png, err);
        }
        free(a);
        free(da);
        free(cam);
    }
    if (!s && cls_out) *cls_out = cls;
    free(x);
    free(onehot);
    pthread_mutex_unlock(&p->mu);
    return s;
}
