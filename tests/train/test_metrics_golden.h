/* Helpers the metrics/report tests share: load a golden JSON from tests/golden/metrics and
 * compare numbers at 1e-9 relative (JSON null stands for NaN, an undefined metric). */
#ifndef KT_TEST_METRICS_GOLDEN_H
#define KT_TEST_METRICS_GOLDEN_H

#include <cjson/cJSON.h>
#include <stdint.h>

/* Parsed tests/golden/metrics/<name>.json, or NULL (the test fails with the reason). */
cJSON *kt_golden_metrics_load(const char *name);
/* Array field as doubles (null -> NaN) / int32 / uint8; malloc'd, *n receives the length. */
double *kt_golden_doubles(const cJSON *obj, const char *key, int *n);
int32_t *kt_golden_ints(const cJSON *obj, const char *key, int *n);
uint8_t *kt_golden_bytes(const cJSON *obj, const char *key, int *n);
/* Number field (null -> NaN). */
double kt_golden_num(const cJSON *obj, const char *key);
/* 1 when a and b agree to rel relative (1e-12 absolute floor), both NaN counting as equal;
 * otherwise records a test failure naming what. */
int kt_golden_close(double got, double want, double rel, const char *file, int line,
                    const char *what);
#define KT_CHECK_GOLDEN(got, want, what) kt_golden_close((got), (want), 1e-9, __FILE__, __LINE__, (what))

#endif
