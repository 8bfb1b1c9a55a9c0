/* Cairo canvas, text and axes helpers for the report plots (see plot_canvas.h). */
#include "train/plot_canvas.h"

#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static cairo_status_t write_fp(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, (FILE *)closure) == len ? CAIRO_STATUS_SUCCESS
                                                        : CAIRO_STATUS_WRITE_ERROR;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

kt_status kt_canvas_open(kt_canvas *cv, const char *path, int width, int height, kt_err *err) {
    memset(cv, 0, sizeof *cv);
    if (!path || !*path) return kt_err_set(err, KT_ERR_ARG, "plot: no output path");
    if (width < KT_PLOT_MIN_SIDE || height < KT_PLOT_MIN_SIDE || width > KT_PLOT_MAX_SIDE ||
        height > KT_PLOT_MAX_SIDE)
        return kt_err_set(err, KT_ERR_ARG, "plot %s: size %dx%d is outside %d..%d pixels a side",
                          path, width, height, KT_PLOT_MIN_SIDE, KT_PLOT_MAX_SIDE);
    cv->width = width;
    cv->height = height;
    cv->svg = ends_with(path, ".svg");
    if (cv->svg) {
        kt_status st = kt_atomic_open(&cv->af, path, err);
        if (st != KT_OK) return st;
        cv->surface = cairo_svg_surface_create_for_stream(write_fp, cv->af.fp, width, height);
    } else {
        cv->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    }
    if (cairo_surface_status(cv->surface) != CAIRO_STATUS_SUCCESS) {
        kt_status st = kt_err_set(err, KT_ERR_NOMEM, "plot %s: cannot create a %dx%d surface: %s",
                                  path, width, height,
                                  cairo_status_to_string(cairo_surface_status(cv->surface)));
        kt_canvas_abort(cv);
        return st;
    }
    cv->cr = cairo_create(cv->surface);
    double s = (width < height ? width : height) / 640.0;
    cv->scale = s < 0.6 ? 0.6 : (s > 2.5 ? 2.5 : s);
    cairo_set_source_rgb(cv->cr, 1, 1, 1);
    cairo_paint(cv->cr);
    return KT_OK;
}

void kt_canvas_abort(kt_canvas *cv) {
    if (cv->cr) cairo_destroy(cv->cr);
    if (cv->surface) {
        cairo_surface_finish(cv->surface);
        cairo_surface_destroy(cv->surface);
    }
    if (cv->svg && cv->af.fp) kt_atomic_abort(&cv->af);
    cv->cr = NULL;
    cv->surface = NULL;
}

kt_status kt_canvas_close(kt_canvas *cv, const char *path, kt_err *err) {
    cairo_status_t cs = cairo_status(cv->cr);
    if (cs != CAIRO_STATUS_SUCCESS) {
        kt_canvas_abort(cv);
        return kt_err_set(err, KT_ERR_IO, "plot %s: drawing failed: %s", path, cairo_status_to_string(cs));
    }
    cairo_destroy(cv->cr);
    cv->cr = NULL;
    kt_status st;
    if (cv->svg) {
        cairo_surface_finish(cv->surface);
        cs = cairo_surface_status(cv->surface);
        cairo_surface_destroy(cv->surface);
        cv->surface = NULL;
        if (cs != CAIRO_STATUS_SUCCESS) {
            kt_atomic_abort(&cv->af);
            return kt_err_set(err, KT_ERR_IO, "plot %s: writing SVG failed: %s", path,
                              cairo_status_to_string(cs));
        }
        return kt_atomic_commit(&cv->af, err);
    }
    kt_atomic_file af;
    if ((st = kt_atomic_open(&af, path, err)) != KT_OK) {
        kt_canvas_abort(cv);
        return st;
    }
    cs = cairo_surface_write_to_png_stream(cv->surface, write_fp, af.fp);
    cairo_surface_destroy(cv->surface);
    cv->surface = NULL;
    if (cs != CAIRO_STATUS_SUCCESS) {
        kt_atomic_abort(&af);
        return kt_err_set(err, KT_ERR_IO, "plot %s: writing PNG failed: %s", path,
                          cairo_status_to_string(cs));
    }
    return kt_atomic_commit(&af, err);
}

static void set_font(kt_canvas *cv, double size, int bold) {
    cairo_select_font_face(cv->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cv->cr, size);
}

double kt_canvas_text_width(kt_canvas *cv, const char *s, double size, int bold) {
    cairo_text_extents_t te;
    set_font(cv, size, bold);
    cairo_text_extents(cv->cr, s, &te);
    return te.x_advance;
}

void kt_canvas_text(kt_canvas *cv, double x, double y, const char *s, double size, double ax,
                    double ay, double angle, int bold) {
    cairo_t *cr = cv->cr;
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    set_font(cv, size, bold);
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * te.x_advance, fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

void kt_canvas_rgb(kt_canvas *cv, unsigned hex) { kt_canvas_rgba(cv, hex, 1.0); }

void kt_canvas_rgba(kt_canvas *cv, unsigned hex, double alpha) {
    cairo_set_source_rgba(cv->cr, ((hex >> 16) & 255) / 255.0, ((hex >> 8) & 255) / 255.0,
                          (hex & 255) / 255.0, alpha);
}

double kt_axes_px(const kt_axes *a, double x) {
    return a->x0 + (x - a->xmin) / (a->xmax - a->xmin) * (a->x1 - a->x0);
}

double kt_axes_py(const kt_axes *a, double y) {
    return a->y1 - (y - a->ymin) / (a->ymax - a->ymin) * (a->y1 - a->y0);
}

/* A 1-2-5 step giving about `target` intervals over span. */
static double nice_step(double span, int target) {
    double raw = span / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

static void tick_label(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-9) v = 0.0;
    int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

void kt_axes_draw(kt_canvas *cv, const kt_axes *a, const char *xlabel, const char *ylabel,
                  int integer_x) {
    cairo_t *cr = cv->cr;
    double s = cv->scale, fs = 12.0 * s;
    char buf[64];
    cairo_set_line_width(cr, 1.0 * s);
    double xs = nice_step(a->xmax - a->xmin, 6), ys = nice_step(a->ymax - a->ymin, 5);
    if (integer_x && xs < 1.0) xs = 1.0;
    /* Grid and tick labels. */
    for (double v = ceil(a->xmin / xs - 1e-9) * xs; v <= a->xmax + xs * 1e-9; v += xs) {
        double x = kt_axes_px(a, v);
        kt_canvas_rgb(cv, 0xe6e6e6);
        cairo_move_to(cr, x, a->y0);
        cairo_line_to(cr, x, a->y1);
        cairo_stroke(cr);
        kt_canvas_rgb(cv, 0x222222);
        cairo_move_to(cr, x, a->y1);
        cairo_line_to(cr, x, a->y1 + 5 * s);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, xs);
        kt_canvas_text(cv, x, a->y1 + 7 * s, buf, fs, 0.5, 0.0, 0.0, 0);
    }
    for (double v = ceil(a->ymin / ys - 1e-9) * ys; v <= a->ymax + ys * 1e-9; v += ys) {
        double y = kt_axes_py(a, v);
        kt_canvas_rgb(cv, 0xe6e6e6);
        cairo_move_to(cr, a->x0, y);
        cairo_line_to(cr, a->x1, y);
        cairo_stroke(cr);
        kt_canvas_rgb(cv, 0x222222);
        cairo_move_to(cr, a->x0 - 5 * s, y);
        cairo_line_to(cr, a->x0, y);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, ys);
        kt_canvas_text(cv, a->x0 - 8 * s, y, buf, fs, 1.0, 0.5, 0.0, 0);
    }
    kt_canvas_rgb(cv, 0x222222);
    cairo_rectangle(cr, a->x0, a->y0, a->x1 - a->x0, a->y1 - a->y0);
    cairo_stroke(cr);
    if (xlabel)
        kt_canvas_text(cv, (a->x0 + a->x1) / 2, a->y1 + 26 * s, xlabel, 13.0 * s, 0.5, 0.0, 0.0, 0);
    if (ylabel)
        kt_canvas_text(cv, a->x0 - 48 * s, (a->y0 + a->y1) / 2, ylabel, 13.0 * s, 0.5, 1.0,
                       -M_PI / 2, 0);
}

unsigned kt_cmap_blues(double t) {
    static const unsigned stops[9] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                      0x4292c6, 0x2171b5, 0x08519c, 0x08306b};
    if (!(t > 0.0)) t = 0.0;
    if (t > 1.0) t = 1.0;
    double f = t * 8.0;
    int i = (int)f;
    if (i >= 8) return stops[8];
    double u = f - i;
    unsigned out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double a = (stops[i] >> sh) & 255, b = (stops[i + 1] >> sh) & 255;
        out |= (unsigned)lround(a + (b - a) * u) << sh;
    }
    return out;
}

unsigned kt_palette(int i) {
    static const unsigned tab10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    return tab10[((i % 10) + 10) % 10];
}
