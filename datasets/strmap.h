/* A small open-addressing map from strings to int64 values, used to find duplicate file names and
 * to look paths up when reading a fold assignment. Keys are borrowed: they must outlive the map. */
#ifndef KT_STRMAP_H
#define KT_STRMAP_H

#include <stdint.h>

#include "base/status.h"

typedef struct kt_strmap {
    const char **keys; /* (cap) borrowed pointers, NULL = empty slot */
    int64_t *vals;     /* (cap) */
    int64_t cap, n;    /* cap is a power of two */
} kt_strmap;

kt_status kt_strmap_init(kt_strmap *m, int64_t expected, kt_err *err);
void kt_strmap_free(kt_strmap *m);
/* Inserts key -> val. If key is present already, leaves it and returns its value in *old
 * (and KT_OK); otherwise *old = -1. */
kt_status kt_strmap_put(kt_strmap *m, const char *key, int64_t val, int64_t *old, kt_err *err);
/* Value of key, or -1 when absent. */
int64_t kt_strmap_get(const kt_strmap *m, const char *key);

#endif
