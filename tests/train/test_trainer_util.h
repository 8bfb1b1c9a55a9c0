/* Helpers of the trainer tests: synthetic datasets, a small fast recipe, file checks. */
#ifndef KT_TEST_TRAINER_UTIL_H
#define KT_TEST_TRAINER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "train/trainer.h"

/* Writes a `keratrack synth` dataset into <tmpdir>/<name>; returns its path (static buffer per call
 * site is not needed: the result is malloc'd) or NULL after a test failure. */
char *kt_tt_synth(const char *name, int classes, int per_class, int size, uint64_t seed, int multilabel);
/* A small fast single-thread recipe: smallcnn at 32 px, 2 folds, 2 epochs, batch 8, lr 3e-3, no
 * plots, quiet. out is <tmpdir>/<out_name> (malloc'd into *out_path). */
void kt_tt_config(kt_train_config *c, const char *data, const char *out_name, char **out_path);
/* 1 when path exists (file or folder). */
int kt_tt_exists(const char *dir, const char *file);
/* 1 when the two files have identical bytes. */
int kt_tt_same_file(const char *a, const char *b);
/* Text of a whole file (malloc'd) or NULL. */
char *kt_tt_read(const char *dir, const char *file);

#endif
