/* The report plots: files written at the asked size, decodable, not blank, and bad inputs refused
 * with a clear error and no file left behind. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "kt_test.h"
#include "train/plot.h"

/* Decodes a PNG and checks its size and that it shows a picture: many colours, enough ink. */
static void check_png(const char *path, int w, int h, int min_colours) {
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    KT_REQUIRE(cairo_surface_status(img) == CAIRO_STATUS_SUCCESS, "%s decodes: %s", path,
               cairo_status_to_string(cairo_surface_status(img)));
    KT_CHECK(cairo_image_surface_get_width(img) == w && cairo_image_surface_get_height(img) == h,
             "%s is %dx%d, want %dx%d", path, cairo_image_surface_get_width(img),
             cairo_image_surface_get_height(img), w, h);
    cairo_surface_flush(img);
    const unsigned char *d = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    enum { SLOTS = 4096 };
    static unsigned seen[SLOTS];
    memset(seen, 0, sizeof seen);
    int colours = 0;
    long ink = 0;
    for (int y = 0; y < cairo_image_surface_get_height(img); y++)
        for (int x = 0; x < cairo_image_surface_get_width(img); x++) {
            unsigned px = *(const unsigned *)(d + (size_t)y * stride + 4 * (size_t)x) & 0xffffff;
            if (px != 0xffffff) ink++;
            unsigned slot = (px * 2654435761u) % SLOTS; /* open addressing over distinct colours */
            while (seen[slot] && seen[slot] != px + 1) slot = (slot + 1) % SLOTS;
            if (!seen[slot] && colours < SLOTS - 1) seen[slot] = px + 1, colours++;
        }
    double frac = (double)ink / ((double)w * h);
    KT_CHECK(colours >= min_colours, "%s: %d distinct colours, want >= %d", path, colours, min_colours);
    KT_CHECK(frac > 0.03 && frac < 0.97, "%s: %.1f%% of pixels drawn", path, 100 * frac);
    cairo_surface_destroy(img);
}

static const char *names6[] = {"LEVEL_2", "LEVEL_3", "Terry-s nail", "Bluish Nail",
                               "Healthy Nail", "Koilonychia"};

static void fill_cm(int64_t *cm, int c) {
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) cm[i * c + j] = i == j ? 10 + 3 * i : (i + j) % 3;
}

KT_TEST(test_plot_confusion_raw_and_normalized_png) {
    const char *dir = kt_test_tmpdir();
    char raw[4096], norm[4096];
    snprintf(raw, sizeof raw, "%s/cm.png", dir);
    snprintf(norm, sizeof norm, "%s/cm_norm.png", dir);
    int64_t cm[36];
    fill_cm(cm, 6);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_plot_confusion(raw, cm, 6, names6, 0, "Confusion matrix (test)", 700, 640, &err), &err);
    KT_REQUIRE_OK(kt_plot_confusion(norm, cm, 6, names6, 1, NULL, 0, 0, &err), &err);
    check_png(raw, 700, 640, 40);
    check_png(norm, KT_PLOT_CONFUSION_SIZE, KT_PLOT_CONFUSION_SIZE, 40);
    /* Many classes with long names still fit (names rotate, numbers shrink). */
    enum { C = 15 };
    int64_t big[C * C];
    fill_cm(big, C);
    const char *long_names[C];
    char store[C][32];
    for (int i = 0; i < C; i++) {
        snprintf(store[i], sizeof store[i], "condition-number-%d", i);
        long_names[i] = store[i];
    }
    KT_REQUIRE_OK(kt_plot_confusion(raw, big, C, long_names, 0, NULL, 0, 0, &err), &err);
    check_png(raw, 200 + 40 * C, 200 + 40 * C, 40); /* the default side grows with C */
}

/* 60 classes: the default canvas grows and the names shrink to fit; 300 classes still plot. */
KT_TEST(test_plot_confusion_many_classes) {
    enum { C = 300 };
    int64_t *cm = malloc(sizeof(int64_t) * C * C);
    const char **names = malloc(sizeof *names * C);
    char (*store)[24] = malloc(sizeof *store * C);
    for (int i = 0; i < C; i++) {
        snprintf(store[i], sizeof store[i], "class_%03d", i);
        names[i] = store[i];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cm60.png", kt_test_tmpdir());
    kt_err err = {0};
    fill_cm(cm, 60);
    KT_CHECK_OK(kt_plot_confusion(path, cm, 60, names, 1, NULL, 0, 0, &err), &err);
    check_png(path, 2600, 2600, 20);
    fill_cm(cm, C);
    snprintf(path, sizeof path, "%s/cm300.png", kt_test_tmpdir());
    KT_CHECK_OK(kt_plot_confusion(path, cm, C, names, 0, NULL, 0, 0, &err), &err);
    check_png(path, 4000, 4000, 10);
    free(cm);
    free(names);
    free(store);
}

static void make_bins(kt_calib_bins *b, double shift) {
    kt_calib_bins_init(b, 15, NULL);
    for (int i = 0; i < 400; i++) {
        double p = 0.3 + 0.7 * ((i * 37) % 400) / 400.0;
        double acc_p = p - shift * (p - 0.3);
        kt_calib_bins_add(b, p, ((i * 61) % 100) < acc_p * 100);
    }
}

KT_TEST(test_plot_reliability_png) {
    char path[4096];
    snprintf(path, sizeof path, "%s/rel.png", kt_test_tmpdir());
    kt_calib_bins before, after;
    make_bins(&before, 0.3);
    make_bins(&after, 0.05);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_plot_reliability(path, &before, NULL, "convnext_atto", NULL, NULL, 0, 0, &err), &err);
    check_png(path, KT_PLOT_RELIABILITY_W, KT_PLOT_RELIABILITY_H, 30);
    KT_REQUIRE_OK(kt_plot_reliability(path, &before, &after, "T = 1", "T = 1.7", "Before and after", 500,
                                      520, &err), &err);
    check_png(path, 500, 520, 30);
}

static int fill_epochs(kt_epoch_record *r) {
    int n = 0;
    for (int f = 1; f <= 3; f++)
        for (int e = 1; e <= 8; e++) {
            double t = e / 8.0;
            r[n++] = (kt_epoch_record){e, f, 1.6 * exp(-2.2 * t) + 0.05 * f, 1.5 * exp(-1.6 * t) + 0.2 + 0.04 * f,
                                       0.35 + 0.6 * (1 - exp(-3 * t)), 0.3 + 0.5 * (1 - exp(-2.5 * t)) + 0.02 * f,
                                       3e-4 * sin(M_PI * t), 12.5};
        }
    r[5].val_loss = NAN; /* a gap: not measured that epoch */
    return n;
}

KT_TEST(test_plot_learning_curves_png) {
    char path[4096];
    snprintf(path, sizeof path, "%s/curves.png", kt_test_tmpdir());
    kt_epoch_record r[24];
    int n = fill_epochs(r);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_plot_learning_curves(path, r, n, "convnext_atto, 3 folds", 0, 0, &err), &err);
    check_png(path, KT_PLOT_CURVES_W, KT_PLOT_CURVES_H, 30);
    KT_REQUIRE_OK(kt_plot_learning_curves(path, r, 1, NULL, 640, 300, &err), &err); /* one epoch */
    check_png(path, 640, 300, 10);
}

KT_TEST(test_plot_bars_png_with_undefined_values) {
    char path[4096];
    snprintf(path, sizeof path, "%s/bars.png", kt_test_tmpdir());
    double v[6] = {0.91, 0.78, NAN, 0.66, 0.99, 0.5};
    kt_err err = {0};
    KT_REQUIRE_OK(kt_plot_bars(path, names6, v, 6, 0.0, 1.0, 0.5, "Per-label ROC-AUC", "ROC-AUC", 0, 0,
                               &err), &err);
    check_png(path, KT_PLOT_BARS_W, KT_PLOT_BARS_H, 20);
}

KT_TEST(test_plot_svg_output) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cm.svg", kt_test_tmpdir());
    int64_t cm[9];
    fill_cm(cm, 3);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_plot_confusion(path, cm, 3, names6, 0, NULL, 0, 0, &err), &err);
    char *data = NULL;
    size_t len = 0;
    KT_REQUIRE_OK(kt_file_read(path, &data, &len, &err), &err);
    KT_CHECK(len > 1000 && strstr(data, "<svg") != NULL, "SVG document (%zu bytes)", len);
    free(data);
}

KT_TEST(test_plot_bad_inputs_refused) {
    const char *dir = kt_test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.png", dir);
    int64_t cm[4] = {1, 2, 3, 4};
    kt_err err = {0};
    KT_CHECK(kt_plot_confusion(path, cm, 0, names6, 0, NULL, 0, 0, &err) == KT_ERR_ARG, "0 classes");
    KT_CHECK(strstr(err.msg, "0 classes"), "message: %s", err.msg);
    const char *holes[] = {"a", NULL};
    KT_CHECK(kt_plot_confusion(path, cm, 2, holes, 0, NULL, 0, 0, &err) == KT_ERR_ARG, "NULL name");
    KT_CHECK(strstr(err.msg, "class name 1 of 2"), "message: %s", err.msg);
    KT_CHECK(kt_plot_confusion(path, cm, 2, names6, 0, NULL, 10, 10, &err) == KT_ERR_ARG, "10x10");
    KT_CHECK(strstr(err.msg, "10x10"), "message: %s", err.msg);
    int64_t neg[4] = {1, -2, 3, 4};
    KT_CHECK(kt_plot_confusion(path, neg, 2, names6, 0, NULL, 0, 0, &err) == KT_ERR_ARG, "negative count");
    kt_calib_bins empty;
    kt_calib_bins_init(&empty, 15, NULL);
    KT_CHECK(kt_plot_reliability(path, &empty, NULL, NULL, NULL, NULL, 0, 0, &err) == KT_ERR_ARG, "no samples");
    KT_CHECK(strstr(err.msg, "no samples"), "message: %s", err.msg);
    kt_calib_bins ten, fifteen;
    make_bins(&fifteen, 0.1);
    kt_calib_bins_init(&ten, 10, NULL);
    kt_calib_bins_add(&ten, 0.5, 1);
    KT_CHECK(kt_plot_reliability(path, &fifteen, &ten, NULL, NULL, NULL, 0, 0, &err) == KT_ERR_ARG,
             "mismatched bins");
    KT_CHECK(kt_plot_learning_curves(path, NULL, 0, NULL, 0, 0, &err) == KT_ERR_ARG, "no epochs");
    double v[2] = {0.5, 0.6};
    KT_CHECK(kt_plot_bars(path, names6, v, 2, 1.0, 0.0, NAN, NULL, NULL, 0, 0, &err) == KT_ERR_ARG, "empty range");
    KT_CHECK(!kt_file_exists(path), "no file left by refused plots");
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no/such/dir/cm.png", dir);
    KT_CHECK(kt_plot_confusion(missing, cm, 2, names6, 0, NULL, 0, 0, &err) == KT_ERR_IO, "unwritable path");
    KT_CHECK(strstr(err.msg, "no/such/dir"), "message names the path: %s", err.msg);
}
