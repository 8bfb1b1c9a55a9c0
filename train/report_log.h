/* The per-epoch metrics log of a training run (metrics.jsonl): one JSON object per line with
 * epoch, fold, train_loss, val_loss, train_acc, val_acc, lr, seconds; rewritten atomically. */
#ifndef KT_REPORT_LOG_H
#define KT_REPORT_LOG_H

#include "base/status.h"

typedef struct kt_epoch_record {
    int epoch;          /* 1-based epoch within the fold */
    int fold;           /* 1-based fold (0: a run without folds, e.g. --holdout-valid) */
    double train_loss;  /* mean training loss over the epoch (nats per sample) */
    double val_loss;    /* mean validation loss (nats per sample); NaN if not measured */
    double train_acc;   /* training accuracy in [0, 1]; NaN if not measured */
    double val_acc;     /* validation accuracy in [0, 1]; NaN if not measured */
    double lr;          /* learning rate at the end of the epoch */
    double seconds;     /* wall time of the epoch */
} kt_epoch_record;

/* Writes all n records to path as JSON lines (NaN as null), replacing the file atomically: the
 * trainer keeps its records in memory and calls this after every epoch, so a crash leaves the
 * previous complete log. */
kt_status kt_epoch_log_write(const char *path, const kt_epoch_record *recs, int n, kt_err *err);

/* Reads a log written by kt_epoch_log_write (e.g. on --resume, or to plot it again). *recs is
 * malloc'd (free it); a malformed line gives KT_ERR_FORMAT naming path:line and the field. */
kt_status kt_epoch_log_read(const char *path, kt_epoch_record **recs, int *n, kt_err *err);

/* The files kt_training_log_write puts in a run folder. */
#define KT_EPOCH_LOG_FILE "metrics.jsonl"
#define KT_CURVES_PNG "learning_curves.png"

/* Writes dir/metrics.jsonl and, when plots is non-zero, dir/learning_curves.png (loss and
 * accuracy per epoch, one colour per fold) titled with model (may be NULL). */
kt_status kt_training_log_write(const char *dir, const char *model, const kt_epoch_record *recs,
                                int n, int plots, kt_err *err);

#endif
