/* Helpers for the datasets tests (see dstest.h). */
#include "dstest.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "base/fileio.h"
#include "kt_test.h"

uint8_t *dst_golden(const char *name, size_t *len) {
    char p[4096];
    snprintf(p, sizeof p, "%s/tests/golden/datasets/%s", kt_test_root(), name);
    char *d = NULL;
    kt_err e;
    if (kt_file_read(p, &d, len, &e) != KT_OK) return NULL;
    return (uint8_t *)d;
}

int dst_write(const char *path, const void *data, size_t len) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    kt_err e;
    if (kt_mkdirs(dirname(dir), &e) != KT_OK) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = len ? fwrite(data, 1, len, f) : 0;
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int dst_write_text(const char *path, const char *text) { return dst_write(path, text, strlen(text)); }

uint8_t *dst_picture(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    static const uint8_t q[4][3] = {{230, 30, 30}, {30, 200, 40}, {40, 40, 220}, {240, 240, 60}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *c = q[(y >= h / 2) * 2 + (x >= w / 2)];
            uint8_t *o = p + ((size_t)y * w + x) * 3;
            o[0] = c[0], o[1] = c[1], o[2] = c[2];
        }
    return p;
}

uint8_t *dst_jpeg(const uint8_t *px, int w, int h, int pixfmt, int subsamp, int quality, size_t *len) {
    tjhandle tj = tjInitCompress();
    unsigned char *buf = NULL;
    unsigned long n = 0;
    int r = tjCompress2(tj, px, w, 0, h, pixfmt, &buf, &n, subsamp, quality, 0);
    tjDestroy(tj);
    if (r != 0) {
        tjFree(buf);
        return NULL;
    }
    uint8_t *out = malloc(n);
    memcpy(out, buf, n);
    tjFree(buf);
    *len = n;
    return out;
}

int dst_write_jpeg(const char *path, int w, int h) {
    uint8_t *px = dst_picture(w, h);
    size_t n;
    uint8_t *j = dst_jpeg(px, w, h, TJPF_RGB, TJSAMP_420, 90, &n);
    int r = j ? dst_write(path, j, n) : -1;
    free(px);
    free(j);
    return r;
}

double dst_mad(const uint8_t *a, const uint8_t *b, size_t n, int *maxdiff) {
    double s = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        s += d;
        if (d > m) m = d;
    }
    if (maxdiff) *maxdiff = m;
    return n ? s / (double)n : 0;
}

const char *dst_path(const char *rel) {
    static char bufs[8][4096];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 4096, "%s/%s", kt_test_tmpdir(), rel);
    return b;
}
