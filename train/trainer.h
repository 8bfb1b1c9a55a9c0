/* The seed script's training run for one backbone: stratified K-fold over TRAIN+VALID, AdamW +
 * OneCycleLR per fold, best checkpoint per fold by validation accuracy, then out-of-fold and
 * fold-ensemble TEST probabilities, reports and plots; resumable exactly after an interrupt.
 *
 * Files in cfg.out (the seed script's names at the top, our reports per model below):
 *   folds.csv                               the fold of every item (written once, reused by --resume
 *                                           and by tests/reference/train_nail_ref.py)
 *   {arch}_fold{f}_best.safetensors         f = 1..K; metadata: architecture, classes, image size,
 *                                           mean/std, epoch, metrics {val_acc, val_loss}, task
 *   oof_probs_{arch}.csv, test_probs_{arch}.csv, meta_{arch}.csv   (train/report_csv.h)
 *   {arch}/metrics.jsonl, {arch}/learning_curves.png             per-epoch log (train/report_log.h)
 *   {arch}/oof/, {arch}/test/, {arch}/valid/ (--holdout-valid)    eval_report.json,
 *                                           classification_report.txt, plots (train/report.h)
 *   {arch}/resume.safetensors + {arch}/resume.state.safetensors  the resumable state (weights,
 *                                           AdamW moments, step, fold, epoch, batch, ...) while unfinished
 *   {arch}/run_complete.json                the settings and results once finished (a --resume of a
 *                                           finished model trains nothing)
 *
 * Determinism: folds, init, data order, augmentation and drop-path/dropout masks all derive from
 * cfg.seed (per fold) and the optimizer step, so the same seed and thread count give the same run,
 * and a stopped run resumed with the same settings ends bit-identical to an uninterrupted one. */
#ifndef KT_TRAINER_H
#define KT_TRAINER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "engine/backend.h"

typedef struct kt_train_config {
    const char *data;        /* dataset folder (Roboflow export or class folders) */
    const char *arch;        /* "convnext_base" (seed), ..., "smallcnn" */
    const char *out;         /* run folder */
    int folds;               /* K >= 2 (5) */
    int epochs;              /* per fold (8) */
    int batch;               /* training batch (16); the last partial batch of an epoch is dropped */
    int eval_batch;          /* evaluation batch; 0: 2 x batch */
    double lr;               /* OneCycleLR max_lr (3e-4) */
    double weight_decay;     /* AdamW decoupled decay (1e-4) */
    float label_smoothing;   /* CE label smoothing (0.1); ignored for multi-label (BCE) */
    int img_size;            /* square model input in pixels (224) */
    uint64_t seed;           /* folds, init, data order, augmentation, drop path (42) */
    int holdout_valid;       /* 1: folds over TRAIN only; VALID is a holdout scored by the fold ensemble */
    const char *init;        /* NULL, or weights to fine-tune from (timm names; a new head when classes differ) */
    float drop_path;         /* stochastic depth rate (0) */
    float head_drop;         /* dropout before the classifier (0) */
    int workers;             /* decoding threads (2) */
    float clip_grad;         /* > 0: clip the gradient norm to this (0: off) */
    int no_decay_norms;      /* 1: exempt norms, biases and gammas from weight decay (timm's factory) */
    int no_cycle_momentum;   /* 1: beta1 fixed at 0.9 instead of cycling 0.95 -> 0.85 -> 0.95 */
    int resume;              /* 1: continue the run in out from its saved state */
    int strict;              /* 1: a bad CSV row or image in the dataset is an error (0: skipped, counted) */
    int recompute;           /* recompute GELU/LayerNorm in backward (less memory, a little slower) */
    int loss_scaling;        /* 1: dynamic loss scaling (train/loss_scale.h), for fp16 on cuda; exact (same bits) in f32 */
    int no_plots;            /* 1: reports without PNG plots */
    int threads;             /* recorded in the state (a resume with another count is not bit-identical) */
    kt_backend *backend;     /* NULL: CPU */
    const char *device;      /* name recorded in the config ("cpu") */
    FILE *log;               /* epoch lines, progress bar and summaries; NULL: silent */
    volatile sig_atomic_t *stop; /* set (e.g. by SIGINT): stop after the current step, save, return
                                    KT_ERR_INTERRUPTED; may be NULL */
    int64_t stop_after_steps; /* tests: behave as if stop were set once this many optimizer steps
                                 ran in this call (0: never) */
} kt_train_config;

/* The seed's defaults (convnext_base, 5 folds, 8 epochs, batch 16, lr 3e-4, wd 1e-4, smoothing 0.1,
 * 224 px, seed 42, 2 workers, CPU). data and out stay NULL. */
void kt_train_config_default(kt_train_config *c);
/* Every option in range, the architecture known, the image size a multiple the architecture
 * needs; errors name the option. Does not touch the disk. */
kt_status kt_train_config_validate(const kt_train_config *c, kt_err *err);

typedef struct kt_train_result {
    int folds_done;          /* folds trained (K when the run finished) */
    int multilabel;          /* the dataset's task */
    int64_t steps;           /* optimizer steps run by this call */
    double oof_score;        /* OOF accuracy (micro-F1 for multi-label); NaN when not reached */
    double test_score;       /* fold-ensemble TEST accuracy (micro-F1); NaN without a TEST split */
    double seconds;          /* wall time of this call */
    uint64_t final_params_hash; /* kt_params_hash of the trained parameters after the last fold's last
                                   step (0 when no fold finished in this call): what resume tests compare */
    char report_dir[4096];   /* out/{arch} */
} kt_train_result;

/* Trains cfg->arch on cfg->data into cfg->out (see the file list above). Returns KT_OK when every
 * fold and every report is done, KT_ERR_INTERRUPTED after a stop request once the state is saved
 * (rerun with resume = 1 to continue bit-exactly), or the error. res may be NULL. */
kt_status kt_train_run(const kt_train_config *cfg, kt_train_result *res, kt_err *err);

#endif
