/* Evaluation forward passes: a model over dataset items in batches (evaluation transform, no
 * shuffling), host-side losses and accuracies from logits, and checkpoint / fold-ensemble
 * probabilities, shared by the trainer's per-epoch validation, its final reports and `keratrack eval`. */
#ifndef KT_EVALUATE_H
#define KT_EVALUATE_H

#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "datasets/loader.h"
#include "datasets/roboflow.h"
#include "engine/backend.h"
#include "nets/model.h"

/* The checkpoint metadata key recording the task ("single_label" or "multi_label"). */
#define KT_META_TASK "task"

typedef struct kt_eval_config {
    int batch;           /* images per forward pass (>= 1) */
    int workers;         /* decoding threads (>= 1) */
    kt_backend *backend; /* NULL: CPU */
    FILE *progress;      /* live progress line while predicting; NULL: none */
    const char *label;   /* progress label, e.g. "test" */
} kt_eval_config;

void kt_eval_config_default(kt_eval_config *c);

/* Makes a loader page-lock its batches through be when be can (the CUDA backend: uploads at DMA
 * speed; a refusal leaves them pageable), and undo it before they are freed. be NULL or without
 * pin_host: nothing. be must outlive the loader. */
void kt_loader_pin_for(kt_loader_config *lc, kt_backend *be);

/* An evaluation loader over items (n >= 1) of ds: input size img x img, normalisation mean/std,
 * batches of `batch`, no shuffling, nothing dropped; batches pinned for be (kt_loader_pin_for; NULL:
 * none). */
kt_status kt_eval_loader_open(kt_loader **ld, const kt_dataset *ds, const int64_t *items, int64_t n, int img,
                              const float mean[3], const float std[3], int batch, int workers, kt_backend *be, kt_err *err);

/* Runs the forward pass of m (m->g.training is set to 0 here) over every batch of ld from its
 * first, writing logits (n, C) in the loader's item order; n must be the loader's item count and
 * the loader's batch size m's batch. progress may be NULL. */
kt_status kt_eval_logits(kt_model *m, kt_loader *ld, int64_t n, float *logits, FILE *progress, const char *label,
                         kt_err *err);

/* Softmax (single-label) or sigmoid (multi-label) of logits (n, c) into probs (n, c). */
void kt_logits_to_probs(const float *logits, int64_t n, int c, int multilabel, float *probs);

/* Mean training criterion over n rows: cross-entropy with label smoothing (PyTorch's
 * F.cross_entropy(label_smoothing=s)) on labels (n), or BCE with logits (mean over n*c) on
 * targets (n, c) 0/1 when multilabel. */
double kt_logits_loss(const float *logits, const int32_t *labels, const float *targets, int64_t n, int c, int multilabel,
                      float smoothing);
/* Counts for the model-selection metric: single-label, correct = argmax == label (of n);
 * multi-label at logit >= 0 (p >= 0.5): true positives, false positives, false negatives over all
 * cells (micro-F1 = 2tp / (2tp + fp + fn)). */
typedef struct kt_hits {
    int64_t n, correct;     /* single-label */
    int64_t tp, fp, fn;     /* multi-label */
} kt_hits;
void kt_hits_add(kt_hits *h, const float *logits, const int32_t *labels, const float *targets, int64_t n, int c,
                 int multilabel);
/* accuracy (single-label) or micro-F1 (multi-label; 0 when there is nothing to score). */
double kt_hits_score(const kt_hits *h, int multilabel);

/* Probabilities (n, C) of the fold ensemble of n_paths checkpoints over ds's items: each
 * checkpoint's model (architecture, image size, mean/std from its metadata) runs the items and the
 * softmax (sigmoid for a multi-label checkpoint) rows are averaged. Every checkpoint must have ds's
 * classes: by name when it stores names (columns are mapped, so another order is fine), else by
 * count. *multilabel gets the task (from the metadata, else the dataset's kind). */
kt_status kt_eval_ensemble(const char *const *paths, int n_paths, const kt_dataset *ds, const int64_t *items, int64_t n,
                           const kt_eval_config *c, float *probs, int *multilabel, kt_err *err);

#endif
