/* Our metadata in a checkpoint's "__metadata__" map (all values are strings there): architecture,
 * class names, image size, normalisation, epoch, metrics; other keys are carried through as is.
 *
 * Keys written (and read back):
 *   "format"        "pt" (what timm and transformers expect of a PyTorch-layout file)
 *   "architecture"  e.g. "convnext_atto"
 *   "num_classes"   decimal
 *   "class_names"   JSON list of strings, num_classes long
 *   "image_size"    JSON [H, W] (a bare "224" is read as [224, 224])
 *   "mean", "std"   JSON lists of 3 numbers (per RGB channel, on [0, 1] pixel values)
 *   "epoch"         decimal
 *   "metrics"       a JSON object, e.g. {"val_acc": 0.91, "val_loss": 0.3} */
#ifndef KT_CKPT_META_H
#define KT_CKPT_META_H

#include "base/status.h"
#include "checkpoints/safetensors.h"

/* The most classes a checkpoint's "num_classes" may give (ImageNet-21k has 21841): readers
 * allocate per class before any weight is checked, so a crafted file must not ask for billions. */
#define KT_CKPT_MAX_CLASSES 1000000

typedef struct kt_ckpt_meta {
    char *arch;               /* owned; NULL when unknown */
    int n_classes;            /* 0 when unknown */
    char **class_names;       /* (n_classes) owned strings, or NULL when not stored */
    int img_h, img_w;         /* pixels; 0 when unknown */
    int has_norm;             /* 1 when mean and std are set */
    float mean[3], std[3];    /* per RGB channel */
    int epoch;                /* -1 when unknown */
    char *metrics_json;       /* owned JSON object text; NULL when none */
    int n_extra;
    char **extra_keys, **extra_vals; /* (n_extra) owned: every other key of the file, verbatim */
} kt_ckpt_meta;

void kt_ckpt_meta_init(kt_ckpt_meta *m);
void kt_ckpt_meta_free(kt_ckpt_meta *m);

kt_status kt_ckpt_meta_set_arch(kt_ckpt_meta *m, const char *arch, kt_err *err);
/* Copies n names (n_classes becomes n). */
kt_status kt_ckpt_meta_set_classes(kt_ckpt_meta *m, const char *const *names, int n, kt_err *err);
/* metrics must be a JSON object. */
kt_status kt_ckpt_meta_set_metrics(kt_ckpt_meta *m, const char *metrics_json, kt_err *err);
/* Sets (or replaces) an extra key; our own keys are refused (use the fields). */
kt_status kt_ckpt_meta_set_extra(kt_ckpt_meta *m, const char *key, const char *value, kt_err *err);
const char *kt_ckpt_meta_get_extra(const kt_ckpt_meta *m, const char *key);

/* Writes the set fields and the extras into w's metadata. */
kt_status kt_ckpt_meta_to_writer(const kt_ckpt_meta *m, kt_st_writer *w, kt_err *err);
/* Reads f's metadata into m (initialised here). A malformed value of one of our keys is an error
 * naming the file and the key; a file without metadata gives an empty m. */
kt_status kt_ckpt_meta_from_file(const kt_st_file *f, kt_ckpt_meta *m, kt_err *err);

#endif
