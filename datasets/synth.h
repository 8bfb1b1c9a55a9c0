/* A synthetic Roboflow-format dataset of procedurally drawn images whose class is the kind of
 * shape drawn: learnable, not trivial (random position, scale, rotation, colours, background, noise). */
#ifndef KT_SYNTH_H
#define KT_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

#define KT_SYNTH_MAX_CLASSES 12

typedef struct kt_synth_opts {
    const char *out;  /* dataset folder to create (train/ valid/ test/ with _classes.csv) */
    int classes;      /* 2..KT_SYNTH_MAX_CLASSES (default 4) */
    int per_class;    /* training images per class (default 60); valid and test get max(2, per_class/4) */
    int size;         /* square image side in pixels, 16..1024 (default 96) */
    uint64_t seed;    /* default 1 */
    int multilabel;   /* 1: each image shows zero or more of the shapes; its row marks each one */
    int quality;      /* JPEG quality 1..100 (default 90) */
    int overwrite;    /* 1: replace an existing non-empty out folder; 0: refuse */
} kt_synth_opts;

void kt_synth_opts_default(kt_synth_opts *o);

/* The class names in order (a mix of plain, spaced and dashed names, as real exports have). */
const char *kt_synth_class_name(int c);

/* Writes the dataset into a temporary sibling folder, flushes it to disk and renames it to out, so
 * out is either absent, the old dataset, or the complete new one, never half-written. progress (may
 * be NULL) gets a progress line. */
kt_status kt_synth_write(const kt_synth_opts *o, FILE *progress, kt_err *err);

/* Draws one image (size, size, 3) of the given classes (mask bit c = class c present); for tests. */
void kt_synth_draw(uint8_t *rgb, int size, uint32_t mask, uint64_t key);

#endif
