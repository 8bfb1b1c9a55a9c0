/* K-fold assignment of a dataset's items: stratified by class (single-label) or by iterative
 * stratification over labels (multi-label, Sechidis et al. 2011), seeded, saved to and read from CSV. */
#ifndef KT_FOLDS_H
#define KT_FOLDS_H

#include <stdint.h>

#include "base/status.h"
#include "datasets/roboflow.h"

#define KT_FOLD_HOLDOUT (-1) /* a VALID item kept out of the folds (holdout_valid) */
#define KT_FOLD_TEST (-2)    /* a TEST item: never in a fold, never trained on */

typedef struct kt_folds_opts {
    int k;             /* number of folds, >= 2 (default 5) */
    uint64_t seed;     /* shuffles within classes and breaks ties */
    int holdout_valid; /* 1: only TRAIN is folded and VALID is a separate holdout; 0: TRAIN+VALID */
} kt_folds_opts;

void kt_folds_opts_default(kt_folds_opts *o);

typedef struct kt_folds {
    int k;
    uint64_t seed;
    int holdout_valid;
    int64_t n_items;  /* the dataset's item count */
    int32_t *fold;    /* (n_items) 0..k-1, KT_FOLD_HOLDOUT or KT_FOLD_TEST */
} kt_folds;

/* Assigns every TRAIN (+VALID) item to one of k folds so that each class is spread evenly:
 * single-label, each fold holds floor or ceil of n_c / k images of every class c; multi-label,
 * label counts per fold follow Sechidis' iterative stratification. */
kt_status kt_folds_build(kt_folds *f, const kt_dataset *ds, const kt_folds_opts *o, kt_err *err);
void kt_folds_free(kt_folds *f);

/* Item indices (ascending) used to train fold `fold` (pooled items outside it) and to validate it
 * (the items in it). out must hold n_items entries; returns how many were written. */
int64_t kt_folds_train_items(const kt_folds *f, int fold, int64_t *out);
int64_t kt_folds_val_items(const kt_folds *f, int fold, int64_t *out);
/* Items whose assignment equals value (a fold, KT_FOLD_HOLDOUT or KT_FOLD_TEST). */
int64_t kt_folds_items_where(const kt_folds *f, int32_t value, int64_t *out);

/* CSV: a "# keratrack folds k=5 seed=42 holdout_valid=0" line, a "path,fold" header, then one line
 * per item (fold number, "holdout" or "test"). Written atomically. */
kt_status kt_folds_write_csv(const kt_folds *f, const kt_dataset *ds, const char *path, kt_err *err);
/* Reads a file written by kt_folds_write_csv for the same dataset: every item must appear once and
 * every path must belong to the dataset; errors name the line. */
kt_status kt_folds_read_csv(kt_folds *f, const kt_dataset *ds, const char *path, kt_err *err);

#endif
