/* Drawing helpers under the report plots (plot.h): a cairo canvas that is written atomically as
 * PNG (or SVG when the path ends in .svg), aligned/rotated text, axes with ticks, colour maps. */
#ifndef KT_PLOT_CANVAS_H
#define KT_PLOT_CANVAS_H

#include <cairo.h>

#include "base/fileio.h"
#include "base/status.h"

#define KT_PLOT_MIN_SIDE 64
#define KT_PLOT_MAX_SIDE 8192

typedef struct kt_canvas {
    cairo_surface_t *surface;
    cairo_t *cr;
    int width, height;   /* pixels (SVG: points) */
    int svg;             /* 1: SVG stream into af, 0: image surface saved as PNG at close */
    double scale;        /* font/line scale: min(width, height) / 640, clamped to [0.6, 2.5] */
    kt_atomic_file af;   /* the SVG being written (svg only) */
} kt_canvas;

/* Opens a white width x height canvas for path (.svg -> SVG, anything else -> PNG). */
kt_status kt_canvas_open(kt_canvas *cv, const char *path, int width, int height, kt_err *err);
/* Writes the file atomically and frees everything; on failure nothing is left at path. */
kt_status kt_canvas_close(kt_canvas *cv, const char *path, kt_err *err);
/* Frees everything without writing. */
void kt_canvas_abort(kt_canvas *cv);

/* Text of pixel size `size` anchored at (x, y): ax/ay 0 = left/top, 0.5 = centre, 1 = right/bottom
 * of the text box (font ascent + descent), rotated by angle radians about the anchor. */
void kt_canvas_text(kt_canvas *cv, double x, double y, const char *s, double size, double ax,
                    double ay, double angle, int bold);
double kt_canvas_text_width(kt_canvas *cv, const char *s, double size, int bold);
void kt_canvas_rgb(kt_canvas *cv, unsigned hex);
void kt_canvas_rgba(kt_canvas *cv, unsigned hex, double alpha);

/* A data rectangle: pixel box [x0, x1] x [y0, y1] (y0 top) showing [xmin, xmax] x [ymin, ymax]. */
typedef struct kt_axes {
    double x0, y0, x1, y1;       /* pixels */
    double xmin, xmax, ymin, ymax;
} kt_axes;

double kt_axes_px(const kt_axes *a, double x);
double kt_axes_py(const kt_axes *a, double y);
/* Frame, grid, ticks with labels (nice steps; integer_x: whole-number ticks only) and axis titles. */
void kt_axes_draw(kt_canvas *cv, const kt_axes *a, const char *xlabel, const char *ylabel,
                  int integer_x);

/* Matplotlib's "Blues" at t in [0, 1] as 0xRRGGBB; a qualitative colour for series i (tab10). */
unsigned kt_cmap_blues(double t);
unsigned kt_palette(int i);

#endif
