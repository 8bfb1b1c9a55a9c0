/* Reliability diagram and learning curves (see plot.h). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/plot.h"
#include "train/plot_canvas.h"

typedef enum { LEG_FILL, LEG_HATCH, LEG_LINE, LEG_DASH, LEG_MARK } leg_style;

/* A legend box with one row per entry at the given corner of the axes (0 top-left, 1 top-right,
 * 2 bottom-right). */
static void legend(kt_canvas *cv, const kt_axes *a, int corner, int n, const unsigned *colour,
                   const leg_style *style, const char *const *text) {
    cairo_t *cr = cv->cr;
    double s = cv->scale, fs = 12.0 * s, row = fs * 1.45, sw = 26 * s, w = 0.0;
    for (int i = 0; i < n; i++) w = fmax(w, kt_canvas_text_width(cv, text[i], fs, 0));
    double bw = w + sw + 22 * s, bh = n * row + 10 * s;
    double x = corner == 0 ? a->x0 + 10 * s : a->x1 - 10 * s - bw;
    double y = corner == 2 ? a->y1 - 10 * s - bh : a->y0 + 10 * s;
    kt_canvas_rgba(cv, 0xffffff, 0.88);
    cairo_rectangle(cr, x, y, bw, bh);
    cairo_fill_preserve(cr);
    kt_canvas_rgb(cv, 0xbbbbbb);
    cairo_set_line_width(cr, 1.0 * s);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cy = y + 5 * s + (i + 0.5) * row, x0 = x + 8 * s;
        kt_canvas_rgb(cv, colour[i]);
        cairo_set_line_width(cr, 2.2 * s);
        double dash = 5 * s;
        switch (style[i]) {
        case LEG_FILL:
            kt_canvas_rgba(cv, colour[i], 0.75);
            cairo_rectangle(cr, x0, cy - fs * 0.4, sw, fs * 0.8);
            cairo_fill(cr);
            break;
        case LEG_HATCH:
            cairo_save(cr);
            cairo_rectangle(cr, x0, cy - fs * 0.4, sw, fs * 0.8);
            kt_canvas_rgba(cv, colour[i], 0.18);
            cairo_fill_preserve(cr);
            cairo_clip_preserve(cr);
            kt_canvas_rgb(cv, colour[i]);
            cairo_set_line_width(cr, 1.0 * s);
            cairo_stroke(cr);
            for (double hx = x0 - fs; hx < x0 + sw; hx += 6 * s) {
                cairo_move_to(cr, hx, cy + fs * 0.4);
                cairo_line_to(cr, hx + fs * 0.8, cy - fs * 0.4);
            }
            cairo_stroke(cr);
            cairo_restore(cr);
            break;
        case LEG_DASH: cairo_set_dash(cr, &dash, 1, 0); /* fall through */
        case LEG_LINE:
        case LEG_MARK:
            cairo_move_to(cr, x0, cy);
            cairo_line_to(cr, x0 + sw, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (style[i] == LEG_MARK) {
                cairo_arc(cr, x0 + sw / 2, cy, 3.5 * s, 0, 2 * M_PI);
                cairo_fill(cr);
            }
            break;
        }
        kt_canvas_rgb(cv, 0x222222);
        kt_canvas_text(cv, x0 + sw + 8 * s, cy, text[i], fs, 0.0, 0.5, 0.0, 0);
    }
}

static kt_status check_bins(const kt_calib_bins *b, const char *which, kt_err *err) {
    if (!b) return kt_err_set(err, KT_ERR_ARG, "reliability plot: %s bins are NULL", which);
    if (b->n_bins < 1 || b->n_bins > KT_ECE_BINS_MAX)
        return kt_err_set(err, KT_ERR_ARG, "reliability plot: %s bins: bin count %d is outside 1..%d",
                          which, b->n_bins, KT_ECE_BINS_MAX);
    if (b->total <= 0)
        return kt_err_set(err, KT_ERR_ARG, "reliability plot: %s bins hold no samples", which);
    return KT_OK;
}

kt_status kt_plot_reliability(const char *path, const kt_calib_bins *before,
                              const kt_calib_bins *after, const char *label_before,
                              const char *label_after, const char *title, int width, int height,
                              kt_err *err) {
    kt_status st = check_bins(before, "model", err);
    if (st == KT_OK && after) st = check_bins(after, "calibrated", err);
    if (st != KT_OK) return st;
    if (after && after->n_bins != before->n_bins)
        return kt_err_set(err, KT_ERR_ARG, "reliability plot: %d bins before and %d after differ",
                          before->n_bins, after->n_bins);
    if (width == 0) width = KT_PLOT_RELIABILITY_W;
    if (height == 0) height = KT_PLOT_RELIABILITY_H;
    kt_canvas cv;
    if ((st = kt_canvas_open(&cv, path, width, height, err)) != KT_OK) return st;
    cairo_t *cr = cv.cr;
    double s = cv.scale, M = before->n_bins;
    double body = height - 52 * s - 64 * s - 54 * s;
    kt_axes top = {84 * s, 52 * s, width - 28 * s, 52 * s + body * 0.7, 0, 1, 0, 1};
    kt_axes bot = {top.x0, top.y1 + 54 * s, top.x1, height - 64 * s, 0, 1, 0, 1};
    if (body < 60 || top.x1 - top.x0 < 60) {
        kt_canvas_abort(&cv);
        return kt_err_set(err, KT_ERR_ARG, "reliability plot %s: %dx%d pixels is too small", path,
                          width, height);
    }
    const kt_calib_bins *sets[2] = {before, after};
    int nsets = after ? 2 : 1;
    int64_t cmax = 1;
    for (int k = 0; k < nsets; k++)
        for (int i = 0; i < M; i++) cmax = sets[k]->count[i] > cmax ? sets[k]->count[i] : cmax;
    bot.ymax = cmax * 1.18;

    kt_canvas_rgb(&cv, 0x111111);
    kt_canvas_text(&cv, width / 2.0, 14 * s, title ? title : "Reliability diagram", 17 * s, 0.5,
                   0.0, 0.0, 1);
    kt_axes_draw(&cv, &top, NULL, "Accuracy", 0);
    kt_axes_draw(&cv, &bot, "Confidence", "Count", 0);

    char lb[2][96];
    const char *names[2] = {label_before ? label_before : "model",
                            label_after ? label_after : "calibrated"};
    for (int k = 0; k < nsets; k++)
        snprintf(lb[k], sizeof lb[k], "%s (ECE %.4f)", names[k], kt_calib_bins_ece(sets[k]));

    cairo_save(cr);
    double pad = 6 * s; /* markers on 0 or 1 stay whole */
    cairo_rectangle(cr, top.x0 - pad, top.y0 - pad, top.x1 - top.x0 + 2 * pad, top.y1 - top.y0 + 2 * pad);
    cairo_clip(cr);
    if (nsets == 1) { /* Guo et al.'s style: bars of accuracy per bin and the gap to confidence */
        for (int i = 0; i < M; i++) {
            if (!before->count[i]) continue;
            double n = (double)before->count[i], acc = before->sum_hit[i] / n,
                   conf = before->sum_conf[i] / n;
            double x0 = kt_axes_px(&top, i / M), x1 = kt_axes_px(&top, (i + 1) / M);
            kt_canvas_rgba(&cv, kt_palette(0), 0.78);
            cairo_rectangle(cr, x0, kt_axes_py(&top, acc), x1 - x0, kt_axes_py(&top, 0) - kt_axes_py(&top, acc));
            cairo_fill_preserve(cr);
            kt_canvas_rgb(&cv, 0x0b3c6b);
            cairo_set_line_width(cr, 1.0 * s);
            cairo_stroke(cr);
            /* The gap from accuracy to mean confidence, hatched so that it reads the same over
             * the bar (under-confident bins) and over the background. */
            double ya = kt_axes_py(&top, acc), yc = kt_axes_py(&top, conf);
            double gy0 = fmin(ya, yc), gh = fabs(ya - yc);
            if (gh > 0.5) {
                cairo_save(cr);
                cairo_rectangle(cr, x0, gy0, x1 - x0, gh);
                kt_canvas_rgba(&cv, 0xd62728, 0.18);
                cairo_fill_preserve(cr);
                cairo_clip(cr);
                kt_canvas_rgba(&cv, 0xd62728, 0.85);
                cairo_set_line_width(cr, 1.2 * s);
                for (double hx = x0 - gh; hx < x1; hx += 6 * s) {
                    cairo_move_to(cr, hx, gy0 + gh);
                    cairo_line_to(cr, hx + gh, gy0);
                }
                cairo_stroke(cr);
                cairo_restore(cr);
                kt_canvas_rgb(&cv, 0xd62728);
                cairo_set_line_width(cr, 1.0 * s);
                cairo_rectangle(cr, x0, gy0, x1 - x0, gh);
                cairo_stroke(cr);
            }
        }
    }
    double dash = 6 * s;
    kt_canvas_rgb(&cv, 0x555555);
    cairo_set_line_width(cr, 1.5 * s);
    cairo_set_dash(cr, &dash, 1, 0);
    cairo_move_to(cr, kt_axes_px(&top, 0), kt_axes_py(&top, 0));
    cairo_line_to(cr, kt_axes_px(&top, 1), kt_axes_py(&top, 1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (nsets == 2) {
        for (int k = 0; k < 2; k++) {
            kt_canvas_rgb(&cv, kt_palette(k));
            cairo_set_line_width(cr, 2.2 * s);
            int started = 0;
            for (int i = 0; i < M; i++) {
                if (!sets[k]->count[i]) continue;
                double n = (double)sets[k]->count[i];
                double x = kt_axes_px(&top, sets[k]->sum_conf[i] / n), y = kt_axes_py(&top, sets[k]->sum_hit[i] / n);
                if (started) cairo_line_to(cr, x, y);
                else cairo_move_to(cr, x, y), started = 1;
            }
            cairo_stroke(cr);
            for (int i = 0; i < M; i++) {
                if (!sets[k]->count[i]) continue;
                double n = (double)sets[k]->count[i];
                cairo_arc(cr, kt_axes_px(&top, sets[k]->sum_conf[i] / n),
                          kt_axes_py(&top, sets[k]->sum_hit[i] / n), 4 * s, 0, 2 * M_PI);
                cairo_fill(cr);
            }
        }
    }
    cairo_restore(cr);
    if (nsets == 1) {
        unsigned col[3] = {kt_palette(0), 0xd62728, 0x555555};
        leg_style sty[3] = {LEG_FILL, LEG_HATCH, LEG_DASH};
        const char *txt[3] = {lb[0], "gap to mean confidence", "perfect calibration"};
        legend(&cv, &top, 0, 3, col, sty, txt);
    } else {
        unsigned col[3] = {kt_palette(0), kt_palette(1), 0x555555};
        leg_style sty[3] = {LEG_MARK, LEG_MARK, LEG_DASH};
        const char *txt[3] = {lb[0], lb[1], "perfect calibration"};
        legend(&cv, &top, 0, 3, col, sty, txt);
    }

    /* Counts per bin with the number on each bar. */
    double bwpx = (bot.x1 - bot.x0) / M, cfs = fmin(11.0 * s, bwpx / nsets * 0.42);
    char buf[32];
    for (int k = 0; k < nsets; k++)
        for (int i = 0; i < M; i++) {
            int64_t cnt = sets[k]->count[i];
            double x0 = kt_axes_px(&bot, i / M) + (nsets == 2 ? k * bwpx / 2 : 0);
            double w = bwpx / nsets, y = kt_axes_py(&bot, (double)cnt);
            if (cnt) {
                kt_canvas_rgba(&cv, kt_palette(k), 0.78);
                cairo_rectangle(cr, x0 + 1, y, w - 2, kt_axes_py(&bot, 0) - y);
                cairo_fill(cr);
            }
            if (cnt && cfs >= 6.0) {
                snprintf(buf, sizeof buf, "%lld", (long long)cnt);
                kt_canvas_rgb(&cv, 0x222222);
                kt_canvas_text(&cv, x0 + w / 2, y - 2 * s, buf, cfs, 0.5, 1.0, 0.0, 0);
            }
        }
    return kt_canvas_close(&cv, path, err);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_epoch(const void *a, const void *b) {
    const kt_epoch_record *x = a, *y = b;
    if (x->fold != y->fold) return (x->fold > y->fold) - (x->fold < y->fold);
    return (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

/* One polyline per run of finite values in field `off` of the fold's records. */
static void series(kt_canvas *cv, const kt_axes *a, const kt_epoch_record *r, int n, size_t off,
                   unsigned colour, int dashed) {
    cairo_t *cr = cv->cr;
    double s = cv->scale, dash = 7 * s;
    kt_canvas_rgb(cv, colour);
    cairo_set_line_width(cr, 2.0 * s);
    if (dashed) cairo_set_dash(cr, &dash, 1, 0);
    int open = 0;
    for (int i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&r[i] + off);
        if (!isfinite(v)) {
            open = 0;
            continue;
        }
        double x = kt_axes_px(a, r[i].epoch), y = kt_axes_py(a, v);
        if (open) cairo_line_to(cr, x, y);
        else cairo_move_to(cr, x, y), open = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&r[i] + off);
        if (!isfinite(v)) continue;
        cairo_arc(cr, kt_axes_px(a, r[i].epoch), kt_axes_py(a, v), (dashed ? 2.5 : 3.0) * s, 0, 2 * M_PI);
        cairo_fill(cr);
    }
}

kt_status kt_plot_learning_curves(const char *path, const kt_epoch_record *recs, int n,
                                  const char *title, int width, int height, kt_err *err) {
    if (!recs || n <= 0)
        return kt_err_set(err, KT_ERR_ARG, "learning-curve plot: no epochs to plot (n = %d)", n);
    if (width == 0) width = KT_PLOT_CURVES_W;
    if (height == 0) height = KT_PLOT_CURVES_H;
    kt_epoch_record *r = malloc((size_t)n * sizeof *r);
    int *folds = malloc((size_t)n * sizeof *folds);
    if (!r || !folds) {
        free(r);
        free(folds);
        return kt_err_set(err, KT_ERR_NOMEM, "learning-curve plot: out of memory");
    }
    memcpy(r, recs, (size_t)n * sizeof *r);
    qsort(r, (size_t)n, sizeof *r, cmp_epoch);
    int max_epoch = 1, nf = 0;
    double lmax = 0.0, amin = 1.0;
    for (int i = 0; i < n; i++) {
        if (r[i].epoch > max_epoch) max_epoch = r[i].epoch;
        if (isfinite(r[i].train_loss)) lmax = fmax(lmax, r[i].train_loss);
        if (isfinite(r[i].val_loss)) lmax = fmax(lmax, r[i].val_loss);
        if (isfinite(r[i].train_acc)) amin = fmin(amin, r[i].train_acc);
        if (isfinite(r[i].val_acc)) amin = fmin(amin, r[i].val_acc);
        folds[i] = r[i].fold;
    }
    qsort(folds, (size_t)n, sizeof *folds, cmp_int);
    for (int i = 0; i < n; i++)
        if (i == 0 || folds[i] != folds[i - 1]) folds[nf++] = folds[i];
    kt_canvas cv;
    kt_status st = kt_canvas_open(&cv, path, width, height, err);
    if (st != KT_OK) {
        free(r);
        free(folds);
        return st;
    }
    double s = cv.scale, gap = 90 * s, pw = (width - 84 * s - 24 * s - gap) / 2;
    double xlo = max_epoch == 1 ? 0.5 : 0.8, xhi = max_epoch == 1 ? 1.5 : max_epoch + 0.2;
    kt_axes la = {84 * s, 52 * s, 84 * s + pw, height - 62 * s, xlo, xhi, 0, lmax > 0 ? lmax * 1.08 : 1};
    double alo = floor(fmax(0.0, amin - 0.05) * 10.0) / 10.0;
    kt_axes aa = {la.x1 + gap, la.y0, la.x1 + gap + pw, la.y1, xlo, xhi, alo, 1.0};
    if (pw < 60 || la.y1 - la.y0 < 60) {
        kt_canvas_abort(&cv);
        free(r);
        free(folds);
        return kt_err_set(err, KT_ERR_ARG, "learning-curve plot %s: %dx%d pixels is too small", path,
                          width, height);
    }
    kt_canvas_rgb(&cv, 0x111111);
    kt_canvas_text(&cv, width / 2.0, 14 * s, title ? title : "Training curves", 17 * s, 0.5, 0.0,
                   0.0, 1);
    kt_axes_draw(&cv, &la, "Epoch", "Loss", 1);
    kt_axes_draw(&cv, &aa, "Epoch", "Accuracy", 1);
    for (int f = 0, i = 0; f < nf; f++) {
        int j = i;
        while (j < n && r[j].fold == folds[f]) j++;
        unsigned col = kt_palette(f);
        series(&cv, &la, r + i, j - i, offsetof(kt_epoch_record, train_loss), col, 0);
        series(&cv, &la, r + i, j - i, offsetof(kt_epoch_record, val_loss), col, 1);
        series(&cv, &aa, r + i, j - i, offsetof(kt_epoch_record, train_acc), col, 0);
        series(&cv, &aa, r + i, j - i, offsetof(kt_epoch_record, val_acc), col, 1);
        i = j;
    }
    /* Legend: one entry per fold (colour) plus the two line styles. */
    int shown = nf < 10 ? nf : 10;
    unsigned col[12];
    leg_style sty[12];
    char txt_buf[10][32];
    const char *txt[12];
    for (int f = 0; f < shown; f++) {
        col[f] = kt_palette(f);
        sty[f] = LEG_LINE;
        if (folds[f] > 0) snprintf(txt_buf[f], sizeof txt_buf[f], "fold %d", folds[f]);
        else snprintf(txt_buf[f], sizeof txt_buf[f], "run");
        txt[f] = txt_buf[f];
    }
    col[shown] = col[shown + 1] = 0x555555;
    sty[shown] = LEG_LINE;
    sty[shown + 1] = LEG_DASH;
    txt[shown] = "train";
    txt[shown + 1] = "validation";
    legend(&cv, &la, 1, shown + 2, col, sty, txt);
    free(r);
    free(folds);
    return kt_canvas_close(&cv, path, err);
}
