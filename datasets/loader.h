/* A batch loader: worker threads decode and transform images into a preallocated ring of NHWC
 * float batches while the model computes. Deterministic for a (seed, epoch) whatever the worker count,
 * restartable at any (epoch, batch), no allocation per batch once running. */
#ifndef KT_LOADER_H
#define KT_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "datasets/augment.h"
#include "datasets/roboflow.h"

/* Typical use (a K-fold training run; errors elided):
 *
 *   kt_dataset ds;  kt_dataset_open(&ds, "data/nail-disease", NULL, &err);
 *   kt_folds f;     kt_folds_build(&f, &ds, NULL, &err);           // k=5, TRAIN+VALID, seed 42
 *   int64_t *tr = malloc(ds.n_items * sizeof *tr), *va = malloc(ds.n_items * sizeof *va);
 *   int64_t ntr = kt_folds_train_items(&f, fold, tr), nva = kt_folds_val_items(&f, fold, va);
 *
 *   kt_loader_config tc;  kt_loader_config_default(&tc, 224);    // shuffled, augmented
 *   kt_loader_config vc = tc;  vc.shuffle = 0;  kt_aug_default_eval(&vc.aug, 224);
 *   kt_loader *train, *val;
 *   kt_loader_open(&train, &ds, tr, ntr, &tc, &err);  kt_loader_open(&val, &ds, va, nva, &vc, &err);
 *
 *   for (epoch = 0; epoch < epochs; epoch++) {
 *       kt_loader_start(train, epoch, 0, &err);      // resume: (saved epoch, saved batch index)
 *       const kt_batch *b;
 *       while (kt_loader_next(train, &b, &err) == KT_OK && b)
 *           step(b->images, b->n, ds.kind == KT_LABELS_SINGLE ? b->labels : NULL, b->targets);
 *   }
 *   kt_loader_close(train); kt_loader_close(val); kt_folds_free(&f); kt_dataset_close(&ds);
 */

typedef struct kt_loader_config {
    int batch_size;     /* images per batch (B), >= 1 */
    int workers;        /* decoding threads, >= 1 */
    int prefetch;       /* batches in the ring (being filled or waiting); 0 = enough for the workers
                         * (kt_loader_ring_batches: 3 for 1 worker, 4 for 2, up to workers + 2) */
    int shuffle;        /* 1: a fresh seeded order every epoch (training); 0: item order (evaluation) */
    int drop_last;      /* 1: leave out the last, partial batch */
    int strict;         /* 1: a bad image fails kt_loader_next; 0: it is replaced by the next good
                         * image of the epoch order, and counted */
    uint64_t seed;      /* shuffling and augmentation */
    kt_aug_config aug;  /* transform and output size (train or eval) */
    /* Optional (NULL: none): called once on the ring's image storage, one block holding every
     * batch's images, after it is allocated and touched, e.g. to page-lock it so that GPU uploads
     * run at full DMA speed; 0 pinned, else ignored (the ring stays pageable). unpin is then called
     * with the same pointer before the storage is freed. */
    int (*pin)(void *pin_ctx, void *p, size_t bytes);
    void (*unpin)(void *pin_ctx, void *p);
    void *pin_ctx;
} kt_loader_config;

/* Defaults: batch 16, 2 workers, shuffle on, drop_last off, not strict, seed 42, the training
 * augmentation at size. For evaluation: set shuffle = 0 and kt_aug_default_eval(&cfg.aug, size). */
void kt_loader_config_default(kt_loader_config *c, int size);

typedef struct kt_batch {
    int n;             /* images in this batch: batch_size, or fewer for the last one */
    int64_t epoch;     /* the epoch and the batch's position in it */
    int64_t index;
    float *images;     /* (B, H, W, 3) normalised, NHWC; only the first n are filled */
    int32_t *labels;   /* (B) class index per image (single-label datasets; -1 for multi-label) */
    float *targets;    /* (B, C) 0/1 targets per image: one-hot or multi-hot */
    int64_t *items;    /* (B) dataset item index per image (after any replacement) */
    int n_replaced;    /* images of this batch that failed and were replaced */
} kt_batch;

typedef struct kt_loader kt_loader;

/* Creates the loader over items[0..n_items) of ds (copied; ds must outlive the loader), allocates
 * and touches the whole ring, and starts the workers (idle until kt_loader_start). */
kt_status kt_loader_open(kt_loader **out, const kt_dataset *ds, const int64_t *items, int64_t n_items,
                         const kt_loader_config *cfg, kt_err *err);
/* Stops the workers and frees everything (batches returned earlier become invalid). */
void kt_loader_close(kt_loader *ld);

/* Batches the ring holds (cfg.prefetch, or the automatic size). */
int kt_loader_ring_batches(const kt_loader *ld);
/* Batches in an epoch (drop_last taken into account). */
int64_t kt_loader_num_batches(const kt_loader *ld);
/* Begins (or restarts) epoch `epoch` at batch first_batch (0 for a fresh epoch; a resumed run
 * passes the batch it stopped at and gets exactly the batches it would have got). Any batches still
 * in flight from before are dropped. */
kt_status kt_loader_start(kt_loader *ld, int64_t epoch, int64_t first_batch, kt_err *err);
/* Waits for the next batch of the epoch. *batch = NULL (and KT_OK) when the epoch is over. The batch
 * stays valid until the next call of kt_loader_next / kt_loader_start / kt_loader_close. */
kt_status kt_loader_next(kt_loader *ld, const kt_batch **batch, kt_err *err);

/* Seconds kt_loader_next has spent waiting for a batch still being decoded, since the loader was
 * opened: the consumer's time lost to decoding (more workers shorten it, if there are cores). */
double kt_loader_wait_seconds(const kt_loader *ld);

/* Workers for a loader when the user gave none, on a machine of `cpus` online CPUs. On the CPU, 2:
 * the model's threads need the cores, and 1-2 workers keep a CPU training step fed (bench/README
 * section 3). Feeding a GPU (feeds_gpu), all cores but one (for the thread driving the GPU), at least
 * 2 and at most 16: a GPU trains convnext_base at ~1800 images/s, about 4 workers' worth of 640 px
 * JPEGs, and tiny or atto 2-10x that. */
int kt_loader_auto_workers(int feeds_gpu, int cpus);

/* Distinct items that failed to decode so far, and the message of the latest failure ("" if none). */
int64_t kt_loader_bad_images(const kt_loader *ld);
void kt_loader_last_error(const kt_loader *ld, char *buf, int n);

#endif
