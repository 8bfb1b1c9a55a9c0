/* A labelled image dataset on disk: a Roboflow export (train/ valid/ test/ each with _classes.csv,
 * single- or multi-label) or a folder-per-class tree (train/<class>/<image>), read into one item list. */
#ifndef KT_ROBOFLOW_H
#define KT_ROBOFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum { KT_SPLIT_TRAIN = 0, KT_SPLIT_VALID = 1, KT_SPLIT_TEST = 2 } kt_split;
#define KT_SPLIT_COUNT 3
/* "train", "valid", "test" */
const char *kt_split_name(int split);

typedef enum {
    KT_LABELS_AUTO = 0, /* (option only) single-label when every row has exactly one 1 */
    KT_LABELS_SINGLE,   /* one class per image: labels are class indices */
    KT_LABELS_MULTI     /* zero or more classes per image: labels are multi-hot vectors */
} kt_label_kind;

typedef enum {
    KT_LAYOUT_ROBOFLOW_CSV = 0, /* <split>/_classes.csv: filename, A, B, ... (0/1 per class) */
    KT_LAYOUT_FOLDERS           /* <split>/<class name>/<image> */
} kt_layout;

/* How much of each listed image kt_dataset_open checks. */
typedef enum {
    KT_VERIFY_NONE = 0, /* trust the listing */
    KT_VERIFY_EXISTS,   /* the file exists */
    KT_VERIFY_HEADER,   /* + JPEG/PNG magic, readable header, size under max_pixels, not truncated (default) */
    KT_VERIFY_DECODE    /* + the pixels decode (reads and decodes everything: slow) */
} kt_verify;

typedef struct kt_dataset_opts {
    int strict;           /* 1: the first bad row or image is an error; 0: skip it and count it */
    kt_verify verify;     /* default KT_VERIFY_HEADER */
    kt_label_kind labels; /* KT_LABELS_AUTO (default), or force single/multi */
    int64_t max_pixels;   /* decompression-bomb guard for verification; 0 = KT_IMAGE_MAX_PIXELS_DEFAULT */
    int max_messages;     /* problem messages kept (the counts are always exact); 0 = 100 */
} kt_dataset_opts;

void kt_dataset_opts_default(kt_dataset_opts *o);

typedef struct kt_ds_item {
    char *path;    /* relative to the dataset root, e.g. "train/x.jpg" */
    int32_t label; /* single-label: class index; multi-label: -1 (see kt_dataset.targets) */
    int32_t split; /* kt_split */
    int32_t line;  /* 1-based line in the split's _classes.csv; 0 for the folder layout */
} kt_ds_item;

typedef struct kt_dataset {
    char *root;                /* the folder given to kt_dataset_open */
    kt_layout layout;
    kt_label_kind kind;        /* KT_LABELS_SINGLE or KT_LABELS_MULTI */
    int n_classes;
    char **class_names;        /* (n_classes) as written in the header / folder names */
    int64_t n_items;
    kt_ds_item *items;         /* (n_items) grouped by split (train, valid, test), file order within */
    float *targets;            /* (n_items, n_classes) 0/1: one-hot for single-label, multi-hot otherwise */
    int has_split[KT_SPLIT_COUNT];      /* 1 when the split exists on disk */
    int64_t split_first[KT_SPLIT_COUNT]; /* index of the split's first item */
    int64_t split_count[KT_SPLIT_COUNT]; /* items in the split (after skipping bad ones) */
    int64_t n_bad_rows;        /* CSV rows skipped: wrong column count, bad value, duplicate, ... */
    int64_t n_bad_images;      /* listed images skipped: missing, empty, truncated, not an image */
    char **messages;           /* (n_messages) "valid/_classes.csv:17: ..." for the first problems */
    int n_messages;
} kt_dataset;

/* Opens the dataset at root: detects the layout (a CSV in train/ wins over class folders), reads
 * train (required), valid and test (each optional; "val" is accepted for valid), checks images as
 * opts->verify says. Bad rows/images are skipped and counted with file:line messages, or with
 * opts->strict the first one is the error. Header faults (no filename column, a class column the
 * train split lacks, a missing class column, duplicate class names) are always errors.
 * opts may be NULL (defaults). On error ds is left empty. */
kt_status kt_dataset_open(kt_dataset *ds, const char *root, const kt_dataset_opts *opts, kt_err *err);
void kt_dataset_close(kt_dataset *ds);

/* The (n_classes) 0/1 target row of item i. */
static inline const float *kt_dataset_target(const kt_dataset *ds, int64_t i) {
    return ds->targets + i * ds->n_classes;
}
/* Class index of a name, -1 if unknown. */
int kt_dataset_class_index(const kt_dataset *ds, const char *name);
/* Full path of item i: root + "/" + path. Error if it does not fit in n bytes. */
kt_status kt_dataset_item_path(const kt_dataset *ds, int64_t i, char *buf, size_t n, kt_err *err);
/* Item index of a relative path ("valid/x.jpg"), -1 if absent (linear scan). */
int64_t kt_dataset_find(const kt_dataset *ds, const char *path);
/* One line for logs: "ROOT: Roboflow CSV, single-label, 4 classes, train 979 / valid 123 / test -,
 * 2 bad rows, 1 bad image" ('-' = split absent). */
void kt_dataset_summary(const kt_dataset *ds, char *buf, size_t n);
/* Number of items of split whose target for class c is 1 (split < 0: all splits). */
int64_t kt_dataset_class_count(const kt_dataset *ds, int split, int c);

#endif
