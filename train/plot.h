/* The evaluation and training plots, drawn with cairo: confusion matrix (raw and row-normalised),
 * reliability diagram, loss/accuracy curves per epoch, per-label bars. PNG, or SVG for *.svg.
 *
 * Every function writes path atomically (nothing is left on failure), takes the image size in
 * pixels (0 = the default for that plot, 64..8192 otherwise) and returns KT_ERR_ARG naming the bad
 * input (0 classes, a NULL class name, no samples, no epochs). */
#ifndef KT_PLOT_H
#define KT_PLOT_H

#include <stdint.h>

#include "base/status.h"
#include "train/metrics_binary.h"
#include "train/report_log.h"

/* Default side of the confusion heat maps: max(760, 200 + 40 C), at most 4000 pixels. */
#define KT_PLOT_CONFUSION_SIZE 760
#define KT_PLOT_RELIABILITY_W 720
#define KT_PLOT_RELIABILITY_H 760
#define KT_PLOT_CURVES_W 1200
#define KT_PLOT_CURVES_H 600
#define KT_PLOT_BARS_W 900
#define KT_PLOT_BARS_H 560

/* Heat map of cm (c, c) (rows: true class, columns: predicted class) with the value in every
 * cell, class names on both axes, a colour bar and a title. normalize = 1 divides each row by its
 * total (sklearn's normalize="true"; an empty row stays 0) and prints two decimals. */
kt_status kt_plot_confusion(const char *path, const int64_t *cm, int c, const char *const *names,
                            int normalize, const char *title, int width, int height, kt_err *err);

/* Reliability diagram: accuracy against mean confidence per bin with the diagonal of perfect
 * calibration, the ECE in the legend, and a histogram of bin counts (numbers on the bars) below.
 * after (may be NULL) adds a second curve, e.g. after temperature scaling; the labels name the
 * two curves (NULL: "model" / "calibrated"). */
kt_status kt_plot_reliability(const char *path, const kt_calib_bins *before,
                              const kt_calib_bins *after, const char *label_before,
                              const char *label_after, const char *title, int width, int height,
                              kt_err *err);

/* Two panels, loss and accuracy per epoch: one colour per fold, train solid and validation
 * dashed; NaN values (not measured) leave gaps. recs in any order. */
kt_status kt_plot_learning_curves(const char *path, const kt_epoch_record *recs, int n,
                                  const char *title, int width, int height, kt_err *err);

/* Vertical bars of values (n) in [ymin, ymax] named on the x axis (e.g. per-label AUC), the
 * value printed on each bar, "n/a" for NaN; ref draws a dashed reference line (NaN: none). */
kt_status kt_plot_bars(const char *path, const char *const *names, const double *values, int n,
                       double ymin, double ymax, double ref, const char *title, const char *ylabel,
                       int width, int height, kt_err *err);

#endif
