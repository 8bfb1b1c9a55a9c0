/* Helpers shared by the datasets tests: golden files, small encoded images, dataset folders. */
#ifndef KT_DSTEST_H
#define KT_DSTEST_H

#include <stddef.h>
#include <stdint.h>

/* Reads tests/golden/datasets/<name> (malloc'd; NULL if absent). */
uint8_t *dst_golden(const char *name, size_t *len);
/* Writes bytes to path (creating parent folders); returns 0 on success. */
int dst_write(const char *path, const void *data, size_t len);
int dst_write_text(const char *path, const char *text);
/* A w x h RGB test picture: four flat quadrants plus a ramp (malloc'd). */
uint8_t *dst_picture(int w, int h);
/* TurboJPEG encodes px (pixel format TJPF_*, subsampling TJSAMP_*); malloc'd bytes. */
uint8_t *dst_jpeg(const uint8_t *px, int w, int h, int pixfmt, int subsamp, int quality, size_t *len);
/* A small valid RGB JPEG (w x h picture) written to path. */
int dst_write_jpeg(const char *path, int w, int h);
/* Mean and max absolute difference of two byte arrays. */
double dst_mad(const uint8_t *a, const uint8_t *b, size_t n, int *maxdiff);
/* tmpdir + "/" + rel, in a static rotating buffer. */
const char *dst_path(const char *rel);

#endif
