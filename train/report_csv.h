/* Probability and fold tables of a training run in the seed script's format, for ensembling:
 * oof_probs_{model}.csv, test_probs_{model}.csv and meta_{model}.csv, written atomically.
 *
 * Layout (RFC 4180: fields with a comma, quote, line break or edge space are quoted):
 *   {kind}_probs_{model}.csv   filename,label,<class 1>,...,<class C>
 *                              label: the class index 0..C-1 (empty when labels is NULL);
 *                              probabilities with 9 significant digits (exact for float)
 *   multi-label variant        filename,labels,<label 1>,...  labels: true label indices
 *                              separated by spaces (empty for none)
 *   meta_{model}.csv           fold,filename,label   (fold as the caller numbers it; the trainer
 *                              uses 1..K, as the checkpoint names) */
#ifndef KT_REPORT_CSV_H
#define KT_REPORT_CSV_H

#include <stdint.h>

#include "base/status.h"

/* kind: "oof" or "test" (any [a-z0-9_] word). model: used in the file name, so it must be a
 * plain name (no '/', not "." or ".."). filenames (n), labels (n) in [0, c) or NULL,
 * probs (n, c) row-major. */
kt_status kt_probs_csv_write(const char *dir, const char *kind, const char *model,
                             const char *const *class_names, int c, const char *const *filenames,
                             const int32_t *labels, const float *probs, int n, kt_err *err);

/* targets: (n, c) 0/1 or NULL. */
kt_status kt_probs_csv_write_multilabel(const char *dir, const char *kind, const char *model,
                                        const char *const *label_names, int c,
                                        const char *const *filenames, const uint8_t *targets,
                                        const float *probs, int n, kt_err *err);

/* folds (n), filenames (n), labels (n). */
kt_status kt_meta_csv_write(const char *dir, const char *model, const int32_t *folds,
                            const char *const *filenames, const int32_t *labels, int n,
                            kt_err *err);

#endif
