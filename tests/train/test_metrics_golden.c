/* Golden-file helpers for the metrics/report tests (see test_metrics_golden.h). */
#include "test_metrics_golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/fileio.h"
#include "kt_test.h"

cJSON *kt_golden_metrics_load(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/metrics/%s.json", kt_test_root(), name);
    char *data = NULL;
    size_t len = 0;
    kt_err err = {0};
    if (kt_file_read(path, &data, &len, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "cannot read golden %s: %s (run tests/reference/metrics_ref.py)",
                     path, err.msg);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    if (!j) kt_test_fail(__FILE__, __LINE__, "golden %s is not valid JSON", path);
    return j;
}

static const cJSON *array_of(const cJSON *obj, const char *key, int *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a)) {
        kt_test_fail(__FILE__, __LINE__, "golden field %s is missing or not an array", key);
        *n = 0;
        return NULL;
    }
    *n = cJSON_GetArraySize(a);
    return a;
}

double *kt_golden_doubles(const cJSON *obj, const char *key, int *n) {
    const cJSON *a = array_of(obj, key, n);
    double *v = malloc(((size_t)*n + 1) * sizeof *v);
    int i = 0;
    const cJSON *e;
    if (a) cJSON_ArrayForEach(e, a) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    return v;
}

int32_t *kt_golden_ints(const cJSON *obj, const char *key, int *n) {
    const cJSON *a = array_of(obj, key, n);
    int32_t *v = malloc(((size_t)*n + 1) * sizeof *v);
    int i = 0;
    const cJSON *e;
    if (a) cJSON_ArrayForEach(e, a) v[i++] = (int32_t)e->valuedouble;
    return v;
}

uint8_t *kt_golden_bytes(const cJSON *obj, const char *key, int *n) {
    const cJSON *a = array_of(obj, key, n);
    uint8_t *v = malloc((size_t)*n + 1);
    int i = 0;
    const cJSON *e;
    if (a) cJSON_ArrayForEach(e, a) v[i++] = (uint8_t)e->valuedouble;
    return v;
}

double kt_golden_num(const cJSON *obj, const char *key) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!e) {
        kt_test_fail(__FILE__, __LINE__, "golden field %s is missing", key);
        return NAN;
    }
    return cJSON_IsNumber(e) ? e->valuedouble : NAN;
}

int kt_golden_close(double got, double want, double rel, const char *file, int line,
                    const char *what) {
    if (isnan(got) && isnan(want)) return 1;
    double tol = rel * fmax(fabs(got), fabs(want)) + 1e-12;
    if (!isnan(got) && !isnan(want) && fabs(got - want) <= tol) return 1;
    kt_test_fail(file, line, "%s: got %.17g, sklearn/torch %.17g (|diff| %.3g > %.3g)", what, got,
                 want, fabs(got - want), tol);
    return 0;
}
