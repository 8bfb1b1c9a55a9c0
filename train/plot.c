/* Confusion-matrix heat maps and bar charts (see plot.h); curves are in plot_curves.c. */
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "train/plot_canvas.h"

static kt_status check_names(const char *what, const char *const *names, int n, kt_err *err) {
    if (n < 1)
        return kt_err_set(err, KT_ERR_ARG, "%s: %d classes: nothing to plot (need at least 1)", what, n);
    if (!names) return kt_err_set(err, KT_ERR_ARG, "%s: class names are NULL (need %d)", what, n);
    for (int i = 0; i < n; i++)
        if (!names[i])
            return kt_err_set(err, KT_ERR_ARG, "%s: class name %d of %d is NULL", what, i, n);
    return KT_OK;
}

static kt_status size_or_default(int *w, int *h, int dw, int dh) {
    if (*w == 0) *w = dw;
    if (*h == 0) *h = dh;
    return KT_OK;
}

/* Nice upper bound and step for a colour bar over [0, vmax]. */
static double bar_step(double vmax) {
    double raw = vmax / 5.0, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

kt_status kt_plot_confusion(const char *path, const int64_t *cm, int c, const char *const *names,
                            int normalize, const char *title, int width, int height, kt_err *err) {
    kt_status st = check_names("confusion matrix plot", names, c, err);
    if (st != KT_OK) return st;
    if (!cm) return kt_err_set(err, KT_ERR_ARG, "confusion matrix plot: matrix is NULL");
    if (width == 0 && height == 0) { /* grow with the class count so cells stay legible */
        int side = c > 95 ? 4000 : 200 + 40 * c;
        width = height = side < KT_PLOT_CONFUSION_SIZE ? KT_PLOT_CONFUSION_SIZE
                                                       : (side > 4000 ? 4000 : side);
    }
    size_or_default(&width, &height, KT_PLOT_CONFUSION_SIZE, KT_PLOT_CONFUSION_SIZE);
    size_t uc = (size_t)c;
    double *val = malloc(uc * uc * sizeof *val);
    if (!val) return kt_err_set(err, KT_ERR_NOMEM, "confusion matrix plot: out of memory");
    double vmax = 0.0;
    for (size_t i = 0; i < uc; i++) {
        double row = 0.0;
        for (size_t j = 0; j < uc; j++) {
            if (cm[i * uc + j] < 0) {
                free(val);
                return kt_err_set(err, KT_ERR_ARG, "confusion matrix plot: cell [%zu][%zu] = %lld < 0",
                                  i, j, (long long)cm[i * uc + j]);
            }
            row += (double)cm[i * uc + j];
        }
        for (size_t j = 0; j < uc; j++) {
            double v = (double)cm[i * uc + j];
            val[i * uc + j] = normalize ? (row > 0.0 ? v / row : 0.0) : v;
            if (val[i * uc + j] > vmax) vmax = val[i * uc + j];
        }
    }
    double cmax = normalize ? 1.0 : (vmax > 0.0 ? vmax : 1.0);

    kt_canvas cv;
    if ((st = kt_canvas_open(&cv, path, width, height, err)) != KT_OK) {
        free(val);
        return st;
    }
    cairo_t *cr = cv.cr;
    double s = cv.scale, fs = 12.0 * s, maxw = 0.0, left = 0, right = 0, top = 52 * s, bottom = 0;
    double cell = 0.0;
    int rotate = 0;
    char buf[64];
    /* Lay out twice at most: with many classes the names shrink to the row height. */
    for (int pass = 0; pass < 2; pass++) {
        maxw = 0.0;
        for (int i = 0; i < c; i++) maxw = fmax(maxw, kt_canvas_text_width(&cv, names[i], fs, 0));
        snprintf(buf, sizeof buf, normalize ? "%.2f" : "%.0f", cmax);
        double bar_label_w = kt_canvas_text_width(&cv, buf, 12.0 * s, 0);
        left = 24 * s + 16 * s + maxw + 10 * s;
        right = 22 * s + 18 * s + 8 * s + bar_label_w + 12 * s;
        bottom = fs * 1.6 + 36 * s;
        cell = fmin((width - left - right) / c, (height - top - bottom) / c);
        rotate = maxw > cell * 0.92;
        if (rotate) { /* 45-degree names need more room below */
            bottom = maxw * 0.7071 + fs + 40 * s;
            cell = fmin((width - left - right) / c, (height - top - bottom) / c);
        }
        if (fs <= cell * 0.8 || pass == 1) break;
        fs = fmax(5.0, cell * 0.75);
    }
    if (cell < 2.0) {
        kt_canvas_abort(&cv);
        free(val);
        return kt_err_set(err, KT_ERR_ARG,
                          "confusion matrix plot %s: %dx%d pixels is too small for %d classes", path,
                          width, height, c);
    }
    double gx = left + ((width - left - right) - cell * c) / 2, gy = top;
    kt_canvas_rgb(&cv, 0x111111);
    kt_canvas_text(&cv, width / 2.0, 14 * s, title ? title : "Confusion matrix", 17 * s, 0.5, 0.0,
                   0.0, 1);

    double vfs = fmin(14.0 * s, cell * 0.3);
    for (size_t i = 0; i < uc; i++)
        for (size_t j = 0; j < uc; j++) {
            double t = val[i * uc + j] / cmax;
            kt_canvas_rgb(&cv, kt_cmap_blues(t));
            cairo_rectangle(cr, gx + j * cell, gy + i * cell, cell, cell);
            cairo_fill(cr);
            if (cell >= 16.0) {
                if (normalize) snprintf(buf, sizeof buf, "%.2f", val[i * uc + j]);
                else snprintf(buf, sizeof buf, "%lld", (long long)cm[i * uc + j]);
                kt_canvas_rgb(&cv, t > 0.55 ? 0xffffff : 0x111111);
                kt_canvas_text(&cv, gx + (j + 0.5) * cell, gy + (i + 0.5) * cell, buf, vfs, 0.5, 0.5,
                               0.0, i == j);
            }
        }
    kt_canvas_rgb(&cv, 0x444444);
    cairo_set_line_width(cr, 1.0 * s);
    cairo_rectangle(cr, gx, gy, cell * c, cell * c);
    cairo_stroke(cr);

    /* Class names: rows (true) on the left, columns (predicted) below. */
    kt_canvas_rgb(&cv, 0x222222);
    for (int i = 0; i < c; i++) {
        kt_canvas_text(&cv, gx - 8 * s, gy + (i + 0.5) * cell, names[i], fs, 1.0, 0.5, 0.0, 0);
        double x = gx + (i + 0.5) * cell, y = gy + c * cell + 6 * s;
        if (rotate) kt_canvas_text(&cv, x + fs * 0.3, y, names[i], fs, 1.0, 0.0, -M_PI / 4, 0);
        else kt_canvas_text(&cv, x, y, names[i], fs, 0.5, 0.0, 0.0, 0);
    }
    double xl_y = rotate ? gy + c * cell + 6 * s + maxw * 0.7071 + fs + 8 * s
                         : gy + c * cell + 6 * s + fs * 1.5 + 4 * s;
    kt_canvas_text(&cv, gx + c * cell / 2, xl_y, "Predicted label", 13 * s, 0.5, 0.0, 0.0, 1);
    kt_canvas_text(&cv, gx - 8 * s - maxw - 12 * s, gy + c * cell / 2, "True label", 13 * s, 0.5,
                   1.0, -M_PI / 2, 1);

    /* Colour bar with ticks. */
    double bx = gx + c * cell + 22 * s, bw = 18 * s, bh = c * cell;
    cairo_pattern_t *grad = cairo_pattern_create_linear(0, gy + bh, 0, gy);
    for (int k = 0; k <= 8; k++) { /* the colour map's own stops: an exact gradient, no bands */
        unsigned h = kt_cmap_blues(k / 8.0);
        cairo_pattern_add_color_stop_rgb(grad, k / 8.0, ((h >> 16) & 255) / 255.0,
                                         ((h >> 8) & 255) / 255.0, (h & 255) / 255.0);
    }
    cairo_set_source(cr, grad);
    cairo_rectangle(cr, bx, gy, bw, bh);
    cairo_fill(cr);
    cairo_pattern_destroy(grad);
    kt_canvas_rgb(&cv, 0x444444);
    cairo_rectangle(cr, bx, gy, bw, bh);
    cairo_stroke(cr);
    double step = normalize ? 0.2 : bar_step(cmax);
    for (double v = 0.0; v <= cmax + step * 1e-9; v += step) {
        double y = gy + bh - v / cmax * bh;
        cairo_move_to(cr, bx + bw, y);
        cairo_line_to(cr, bx + bw + 4 * s, y);
        cairo_stroke(cr);
        if (normalize) snprintf(buf, sizeof buf, "%.1f", v);
        else snprintf(buf, sizeof buf, "%.0f", v);
        kt_canvas_text(&cv, bx + bw + 7 * s, y, buf, fs, 0.0, 0.5, 0.0, 0);
    }
    free(val);
    return kt_canvas_close(&cv, path, err);
}

kt_status kt_plot_bars(const char *path, const char *const *names, const double *values, int n,
                       double ymin, double ymax, double ref, const char *title, const char *ylabel,
                       int width, int height, kt_err *err) {
    kt_status st = check_names("bar plot", names, n, err);
    if (st != KT_OK) return st;
    if (!values) return kt_err_set(err, KT_ERR_ARG, "bar plot: values are NULL");
    if (!(ymax > ymin) || !isfinite(ymin) || !isfinite(ymax))
        return kt_err_set(err, KT_ERR_ARG, "bar plot: y range [%g, %g] is empty", ymin, ymax);
    size_or_default(&width, &height, KT_PLOT_BARS_W, KT_PLOT_BARS_H);
    kt_canvas cv;
    if ((st = kt_canvas_open(&cv, path, width, height, err)) != KT_OK) return st;
    cairo_t *cr = cv.cr;
    double s = cv.scale, fs = 12.0 * s, maxw = 0.0;
    for (int i = 0; i < n; i++) maxw = fmax(maxw, kt_canvas_text_width(&cv, names[i], fs, 0));
    kt_axes a = {78 * s, 52 * s, width - 24 * s, 0, -0.5, n - 0.5, ymin, ymax};
    double slot = (a.x1 - a.x0) / n;
    int rotate = maxw > slot * 0.92;
    a.y1 = height - (rotate ? maxw * 0.7071 + fs + 16 * s : fs * 2.2 + 8 * s);
    if (a.y1 - a.y0 < 20 || slot < 2) {
        kt_canvas_abort(&cv);
        return kt_err_set(err, KT_ERR_ARG, "bar plot %s: %dx%d pixels is too small for %d bars",
                          path, width, height, n);
    }
    kt_canvas_rgb(&cv, 0x111111);
    kt_canvas_text(&cv, width / 2.0, 14 * s, title ? title : "", 17 * s, 0.5, 0.0, 0.0, 1);
    /* Axes without x ticks: the names are the x labels. */
    kt_axes frame = a;
    kt_canvas_rgb(&cv, 0x222222);
    cairo_set_line_width(cr, 1.0 * s);
    char buf[64];
    for (int k = 0; k <= 5; k++) {
        double v = ymin + (ymax - ymin) * k / 5.0, y = kt_axes_py(&a, v);
        kt_canvas_rgb(&cv, 0xe6e6e6);
        cairo_move_to(cr, a.x0, y);
        cairo_line_to(cr, a.x1, y);
        cairo_stroke(cr);
        kt_canvas_rgb(&cv, 0x222222);
        snprintf(buf, sizeof buf, "%.2f", v);
        kt_canvas_text(&cv, a.x0 - 8 * s, y, buf, fs, 1.0, 0.5, 0.0, 0);
    }
    for (int i = 0; i < n; i++) {
        double cx = kt_axes_px(&a, i), bw = slot * 0.7;
        double v = values[i];
        if (isfinite(v)) {
            double vc = fmin(fmax(v, ymin), ymax), y = kt_axes_py(&a, vc);
            kt_canvas_rgb(&cv, kt_palette(0));
            cairo_rectangle(cr, cx - bw / 2, y, bw, a.y1 - y);
            cairo_fill(cr);
            snprintf(buf, sizeof buf, "%.3f", v);
            kt_canvas_rgb(&cv, 0x111111);
            kt_canvas_text(&cv, cx, y - 3 * s, buf, fmin(fs, slot * 0.3), 0.5, 1.0, 0.0, 0);
        } else {
            kt_canvas_rgb(&cv, 0x888888);
            kt_canvas_text(&cv, cx, a.y1 - 4 * s, "n/a", fmin(fs, slot * 0.3), 0.5, 1.0, 0.0, 0);
        }
        kt_canvas_rgb(&cv, 0x222222);
        if (rotate) kt_canvas_text(&cv, cx + fs * 0.3, a.y1 + 6 * s, names[i], fs, 1.0, 0.0, -M_PI / 4, 0);
        else kt_canvas_text(&cv, cx, a.y1 + 6 * s, names[i], fs, 0.5, 0.0, 0.0, 0);
    }
    if (isfinite(ref) && ref > ymin && ref < ymax) {
        double y = kt_axes_py(&a, ref), dash = 6 * s;
        kt_canvas_rgb(&cv, 0xd62728);
        cairo_set_dash(cr, &dash, 1, 0);
        cairo_move_to(cr, a.x0, y);
        cairo_line_to(cr, a.x1, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        snprintf(buf, sizeof buf, "%g", ref);
        kt_canvas_text(&cv, a.x0 + 4 * s, y - 3 * s, buf, fs, 0.0, 1.0, 0.0, 0);
    }
    kt_canvas_rgb(&cv, 0x222222);
    cairo_rectangle(cr, frame.x0, frame.y0, frame.x1 - frame.x0, frame.y1 - frame.y0);
    cairo_stroke(cr);
    if (ylabel)
        kt_canvas_text(&cv, a.x0 - 56 * s, (a.y0 + a.y1) / 2, ylabel, 13 * s, 0.5, 1.0, -M_PI / 2, 1);
    return kt_canvas_close(&cv, path, err);
}
