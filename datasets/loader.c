/* The prefetching loader. Work is handed out one image at a time: image job j of an epoch is
 * position j of the epoch's order, goes to batch j / B, slot (j / B) % R of the ring. What a job
 * writes depends only on (seed, epoch, j), never on which worker ran it or when, so any worker
 * count gives the same batches; a slot is refilled only after the consumer has moved past it. */
#include "datasets/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/timer.h"

typedef struct slot {
    kt_batch b;           /* views into the ring storage */
    int64_t batch;        /* the batch index this slot is filling / holds */
    int want, done;       /* images the batch needs / has */
    kt_status st;         /* first error (strict mode) */
    char msg[KT_ERR_MSG_MAX];
} slot;

typedef struct worker {
    struct kt_loader *ld;
    pthread_t thread;
    int started;
    kt_aug_ctx ctx;
    char path[8192];
} worker;

struct kt_loader {
    const kt_dataset *ds;
    kt_loader_config cfg;
    int64_t n;             /* items in the loader */
    int64_t *items;        /* (n) dataset item indices */
    int32_t *perm;         /* (n) the epoch's order: positions into items */
    uint8_t *bad;          /* (n) 1 = items[p] is known not to decode (atomic access) */
    int B, R;              /* batch size, ring size */
    size_t img_floats;     /* H * W * 3 */
    slot *slots;           /* (R) */
    float *images;         /* (R, B, H, W, 3) */
    int pinned;            /* cfg.pin accepted images: cfg.unpin before freeing it */
    int32_t *labels;       /* (R, B) */
    float *targets;        /* (R, B, C) */
    int64_t *bitems;       /* (R, B) */
    worker *workers;       /* (cfg.workers) */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int quit, started, holding, busy;
    uint64_t gen;          /* bumped by every start: jobs of an older generation are dropped */
    int64_t epoch, nb;     /* current epoch, batches per epoch */
    int64_t next_job, end_job;
    int64_t cur;           /* next batch to hand out */
    int64_t free_from;     /* first batch whose slot the consumer has not released */
    int64_t n_bad;
    double wait_s;         /* seconds kt_loader_next waited for batches not yet decoded */
    char last_err[KT_ERR_MSG_MAX];
};

void kt_loader_config_default(kt_loader_config *c, int size) {
    memset(c, 0, sizeof *c);
    c->batch_size = 16;
    c->workers = 2;
    c->shuffle = 1;
    c->seed = 42;
    kt_aug_default_train(&c->aug, size);
}

static int batch_want(const kt_loader *ld, int64_t b) {
    int64_t left = ld->end_job - b * ld->B;
    return (int)(left < ld->B ? (left < 0 ? 0 : left) : ld->B);
}

static void slot_reset(kt_loader *ld, int64_t batch) {
    slot *s = &ld->slots[batch % ld->R];
    s->batch = batch;
    s->want = batch < ld->nb ? batch_want(ld, batch) : 0;
    s->done = 0;
    s->st = KT_OK;
    s->msg[0] = '\0';
    s->b.n_replaced = 0;
}

/* Decodes items[p] into the batch position; 1 on success, 0 (err set) on failure. */
static int fill_one(worker *w, int64_t p, int64_t epoch, float *dst, kt_err *err) {
    kt_loader *ld = w->ld;
    int64_t item = ld->items[p];
    if (kt_dataset_item_path(ld->ds, item, w->path, sizeof w->path, err) != KT_OK) return 0;
    uint64_t key = kt_aug_key(ld->cfg.seed, epoch, item);
    return kt_aug_run_file(&w->ctx, &ld->cfg.aug, key, w->path, dst, err) == KT_OK;
}

static void note_bad(kt_loader *ld, int64_t p, const kt_err *err) {
    pthread_mutex_lock(&ld->mu);
    if (!ld->bad[p]) {
        __atomic_store_n(&ld->bad[p], 1, __ATOMIC_RELAXED);
        ld->n_bad++;
    }
    memcpy(ld->last_err, err->msg, sizeof ld->last_err);
    pthread_mutex_unlock(&ld->mu);
}

static void run_job(worker *w, int64_t j, int64_t epoch) {
    kt_loader *ld = w->ld;
    int64_t b = j / ld->B;
    int pos = (int)(j % ld->B);
    slot *s = &ld->slots[b % ld->R];
    float *dst = s->b.images + (size_t)pos * ld->img_floats;
    kt_err err = {0};
    int64_t p = ld->perm[j];
    int ok = fill_one(w, p, epoch, dst, &err);
    if (!ok) {
        note_bad(ld, p, &err);
        if (ld->cfg.strict) {
            memset(dst, 0, ld->img_floats * sizeof *dst);
            pthread_mutex_lock(&ld->mu);
            if (s->st == KT_OK) {
                s->st = err.code ? err.code : KT_ERR_FORMAT;
                memcpy(s->msg, err.msg, sizeof s->msg);
            }
            pthread_mutex_unlock(&ld->mu);
        } else {
            /* Replace by the next image of the epoch order that decodes: a choice that depends on
             * the files only, so it is the same for any worker count. */
            for (int64_t t = 1; t < ld->n && !ok; t++) {
                int64_t q = ld->perm[(j + t) % ld->n];
                if (__atomic_load_n(&ld->bad[q], __ATOMIC_RELAXED)) continue;
                ok = fill_one(w, q, epoch, dst, &err);
                if (ok) p = q;
                else note_bad(ld, q, &err);
            }
            pthread_mutex_lock(&ld->mu);
            s->b.n_replaced++;
            if (!ok && s->st == KT_OK) {
                s->st = KT_ERR_FORMAT;
                snprintf(s->msg, sizeof s->msg, "none of the %lld images could be decoded (last: %.900s)",
                         (long long)ld->n, err.msg);
            }
            pthread_mutex_unlock(&ld->mu);
        }
    }
    int64_t item = ld->items[p];
    s->b.items[pos] = item;
    s->b.labels[pos] = ld->ds->kind == KT_LABELS_SINGLE ? ld->ds->items[item].label : -1;
    memcpy(s->b.targets + (size_t)pos * ld->ds->n_classes, kt_dataset_target(ld->ds, item),
           (size_t)ld->ds->n_classes * sizeof(float));
}

static void *worker_main(void *arg) {
    worker *w = arg;
    kt_loader *ld = w->ld;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->quit &&
               !(ld->started && ld->next_job < ld->end_job && ld->next_job / ld->B < ld->free_from + ld->R))
            pthread_cond_wait(&ld->cv_work, &ld->mu);
        if (ld->quit) break;
        int64_t j = ld->next_job++, epoch = ld->epoch;
        uint64_t gen = ld->gen;
        ld->busy++;
        pthread_mutex_unlock(&ld->mu);
        run_job(w, j, epoch);
        pthread_mutex_lock(&ld->mu);
        ld->busy--;
        if (gen == ld->gen) {
            slot *s = &ld->slots[(j / ld->B) % ld->R];
            if (++s->done == s->want) pthread_cond_broadcast(&ld->cv_done);
        }
        if (ld->busy == 0) pthread_cond_broadcast(&ld->cv_done);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* Batches in the ring when cfg->prefetch is 0: two images of look-ahead per worker beyond the
 * batch the consumer holds and the next (2 + 2 * workers / B, rounded up), at least 4, at most
 * workers + 2 (the rule before, which is what 1-2 workers still get). Work goes out an image at a
 * time, so with 15 workers feeding a GPU at batch 64 four batches keep them all busy, where
 * workers + 2 = 17 page-locked 650 MB at 224 px. */
static int auto_ring(int workers, int B) {
    int need = 2 + (2 * workers + B - 1) / B, r = need > 4 ? need : 4;
    return r < workers + 2 ? r : workers + 2;
}

int kt_loader_ring_batches(const kt_loader *ld) { return ld->R; }

kt_status kt_loader_open(kt_loader **out, const kt_dataset *ds, const int64_t *items, int64_t n_items,
                         const kt_loader_config *cfg, kt_err *err) {
    *out = NULL;
    kt_status st = kt_aug_validate(&cfg->aug, err);
    if (st != KT_OK) return st;
    if (cfg->batch_size < 1 || cfg->batch_size > 65536)
        return kt_err_set(err, KT_ERR_ARG, "loader: batch size %d must be 1..65536", cfg->batch_size);
    if (cfg->workers < 1 || cfg->workers > 256)
        return kt_err_set(err, KT_ERR_ARG, "loader: %d workers, need 1..256", cfg->workers);
    if (cfg->prefetch < 0 || cfg->prefetch == 1 || cfg->prefetch > 1024)
        return kt_err_set(err, KT_ERR_ARG, "loader: prefetch %d must be 0 (auto) or 2..1024", cfg->prefetch);
    if (n_items < 1 || n_items > INT32_MAX)
        return kt_err_set(err, KT_ERR_ARG, "loader: %lld items, need 1..%d", (long long)n_items, INT32_MAX);
    if (cfg->drop_last && n_items < cfg->batch_size)
        return kt_err_set(err, KT_ERR_ARG, "loader: %lld images cannot fill one batch of %d with drop_last",
                          (long long)n_items, cfg->batch_size);
    for (int64_t i = 0; i < n_items; i++)
        if (items[i] < 0 || items[i] >= ds->n_items)
            return kt_err_set(err, KT_ERR_ARG, "loader: item %lld is outside the dataset (%lld items)",
                              (long long)items[i], (long long)ds->n_items);
    kt_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a loader");
    ld->ds = ds;
    ld->cfg = *cfg;
    ld->n = n_items;
    ld->B = cfg->batch_size;
    ld->R = cfg->prefetch ? cfg->prefetch : auto_ring(cfg->workers, cfg->batch_size);
    ld->img_floats = (size_t)cfg->aug.out_w * cfg->aug.out_h * 3;
    ld->nb = cfg->drop_last ? n_items / ld->B : (n_items + ld->B - 1) / ld->B;
    ld->end_job = cfg->drop_last ? ld->nb * ld->B : n_items;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_work, NULL);
    pthread_cond_init(&ld->cv_done, NULL);
    size_t RB = (size_t)ld->R * ld->B, C = (size_t)ds->n_classes;
    ld->items = malloc((size_t)n_items * sizeof *ld->items);
    ld->perm = malloc((size_t)n_items * sizeof *ld->perm);
    ld->bad = calloc((size_t)n_items, 1);
    ld->slots = calloc((size_t)ld->R, sizeof *ld->slots);
    ld->images = malloc(RB * ld->img_floats * sizeof(float));
    ld->labels = malloc(RB * sizeof *ld->labels);
    ld->targets = malloc(RB * C * sizeof(float));
    ld->bitems = malloc(RB * sizeof *ld->bitems);
    ld->workers = calloc((size_t)cfg->workers, sizeof *ld->workers);
    if (!ld->items || !ld->perm || !ld->bad || !ld->slots || !ld->images || !ld->labels || !ld->targets ||
        !ld->bitems || !ld->workers) {
        kt_loader_close(ld);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a loader ring of %d batches of %d images of %dx%d",
                          ld->R, ld->B, cfg->aug.out_w, cfg->aug.out_h);
    }
    memcpy(ld->items, items, (size_t)n_items * sizeof *items);
    /* Touch the ring now: first-touch page faults are slow here and must not land in a step. */
    memset(ld->images, 0, RB * ld->img_floats * sizeof(float));
    memset(ld->labels, 0, RB * sizeof *ld->labels);
    memset(ld->targets, 0, RB * C * sizeof(float));
    memset(ld->bitems, 0, RB * sizeof *ld->bitems);
    if (cfg->pin && cfg->unpin) ld->pinned = cfg->pin(cfg->pin_ctx, ld->images, RB * ld->img_floats * sizeof(float)) == 0;
    for (int r = 0; r < ld->R; r++) {
        kt_batch *b = &ld->slots[r].b;
        b->images = ld->images + (size_t)r * ld->B * ld->img_floats;
        b->labels = ld->labels + (size_t)r * ld->B;
        b->targets = ld->targets + (size_t)r * ld->B * C;
        b->items = ld->bitems + (size_t)r * ld->B;
        ld->slots[r].batch = -1;
    }
    for (int i = 0; i < cfg->workers; i++) {
        worker *w = &ld->workers[i];
        w->ld = ld;
        if ((st = kt_aug_ctx_init(&w->ctx, err)) != KT_OK) {
            kt_loader_close(ld);
            return st;
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            kt_loader_close(ld);
            return kt_err_set(err, KT_ERR_NOMEM, "loader: cannot start worker thread %d of %d", i + 1, cfg->workers);
        }
        w->started = 1;
    }
    *out = ld;
    return KT_OK;
}

void kt_loader_close(kt_loader *ld) {
    if (!ld) return;
    if (ld->workers) {
        pthread_mutex_lock(&ld->mu);
        ld->quit = 1;
        pthread_cond_broadcast(&ld->cv_work);
        pthread_mutex_unlock(&ld->mu);
        for (int i = 0; i < ld->cfg.workers; i++) {
            if (ld->workers[i].started) pthread_join(ld->workers[i].thread, NULL);
            kt_aug_ctx_free(&ld->workers[i].ctx);
        }
    }
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv_work);
    pthread_cond_destroy(&ld->cv_done);
    free(ld->workers);
    free(ld->items);
    free(ld->perm);
    free(ld->bad);
    free(ld->slots);
    if (ld->pinned) ld->cfg.unpin(ld->cfg.pin_ctx, ld->images);
    free(ld->images);
    free(ld->labels);
    free(ld->targets);
    free(ld->bitems);
    free(ld);
}

int64_t kt_loader_num_batches(const kt_loader *ld) { return ld->nb; }

kt_status kt_loader_start(kt_loader *ld, int64_t epoch, int64_t first_batch, kt_err *err) {
    if (epoch < 0) return kt_err_set(err, KT_ERR_ARG, "loader: epoch %lld is negative", (long long)epoch);
    if (first_batch < 0 || first_batch > ld->nb)
        return kt_err_set(err, KT_ERR_ARG, "loader: batch %lld is outside the epoch (%lld batches)",
                          (long long)first_batch, (long long)ld->nb);
    pthread_mutex_lock(&ld->mu);
    ld->gen++;
    ld->started = 0;
    while (ld->busy > 0) pthread_cond_wait(&ld->cv_done, &ld->mu);
    ld->epoch = epoch;
    for (int64_t i = 0; i < ld->n; i++) ld->perm[i] = (int32_t)i;
    if (ld->cfg.shuffle) {
        kt_rng rng;
        kt_rng_seed(&rng, kt_hash_u64(ld->cfg.seed ^ 0x73687566666c65ull /* "shuffle" */, (uint64_t)epoch));
        kt_rng_shuffle_i32(&rng, ld->perm, ld->n);
    }
    ld->cur = ld->free_from = first_batch;
    ld->next_job = first_batch * ld->B;
    ld->holding = 0;
    for (int r = 0; r < ld->R; r++) slot_reset(ld, first_batch + r);
    ld->started = 1;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    return KT_OK;
}

kt_status kt_loader_next(kt_loader *ld, const kt_batch **batch, kt_err *err) {
    *batch = NULL;
    pthread_mutex_lock(&ld->mu);
    if (!ld->started) {
        pthread_mutex_unlock(&ld->mu);
        return kt_err_set(err, KT_ERR_STATE, "loader: call kt_loader_start before kt_loader_next");
    }
    if (ld->holding) {
        /* The consumer is done with batch cur-1: its slot can take batch cur-1+R. */
        slot_reset(ld, ld->cur - 1 + ld->R);
        ld->free_from = ld->cur;
        ld->holding = 0;
        pthread_cond_broadcast(&ld->cv_work);
    }
    if (ld->cur >= ld->nb) {
        pthread_mutex_unlock(&ld->mu);
        return KT_OK;
    }
    slot *s = &ld->slots[ld->cur % ld->R];
    if (s->done < s->want) { /* the consumer is ahead of the decoding: time it, so a caller can say so */
        double t0 = kt_now();
        while (s->done < s->want) pthread_cond_wait(&ld->cv_done, &ld->mu);
        ld->wait_s += kt_now() - t0;
    }
    s->b.n = s->want;
    s->b.epoch = ld->epoch;
    s->b.index = ld->cur;
    ld->cur++;
    ld->holding = 1;
    kt_status st = s->st;
    if (st != KT_OK)
        kt_err_set(err, st, "loader: epoch %lld batch %lld: %s", (long long)ld->epoch, (long long)s->b.index, s->msg);
    pthread_mutex_unlock(&ld->mu);
    if (st == KT_OK) *batch = &s->b;
    return st;
}

double kt_loader_wait_seconds(const kt_loader *ld) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&ld->mu;
    pthread_mutex_lock(mu);
    double w = ld->wait_s;
    pthread_mutex_unlock(mu);
    return w;
}

int kt_loader_auto_workers(int feeds_gpu, int cpus) {
    if (!feeds_gpu) return 2;
    int w = cpus - 1;
    return w < 2 ? 2 : w > 16 ? 16 : w;
}

int64_t kt_loader_bad_images(const kt_loader *ld) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&ld->mu;
    pthread_mutex_lock(mu);
    int64_t n = ld->n_bad;
    pthread_mutex_unlock(mu);
    return n;
}

void kt_loader_last_error(const kt_loader *ld, char *buf, int n) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&ld->mu;
    pthread_mutex_lock(mu);
    snprintf(buf, (size_t)n, "%s", ld->last_err);
    pthread_mutex_unlock(mu);
}
