/* Linear-probing string map with FNV-1a hashing; grows at 50% load. */
#include "datasets/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

kt_status kt_strmap_init(kt_strmap *m, int64_t expected, kt_err *err) {
    memset(m, 0, sizeof *m);
    int64_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->keys = calloc((size_t)cap, sizeof *m->keys);
    m->vals = calloc((size_t)cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        kt_strmap_free(m);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a map of %lld names", (long long)expected);
    }
    m->cap = cap;
    return KT_OK;
}

void kt_strmap_free(kt_strmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int64_t find_slot(const kt_strmap *m, const char *key) {
    int64_t i = (int64_t)(fnv1a(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}

kt_status kt_strmap_put(kt_strmap *m, const char *key, int64_t val, int64_t *old, kt_err *err) {
    if ((m->n + 1) * 2 > m->cap) {
        kt_strmap bigger;
        kt_status st = kt_strmap_init(&bigger, m->cap, err);
        if (st != KT_OK) return st;
        for (int64_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            int64_t j = find_slot(&bigger, m->keys[i]);
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
        }
        bigger.n = m->n;
        kt_strmap_free(m);
        *m = bigger;
    }
    int64_t i = find_slot(m, key);
    if (m->keys[i]) {
        if (old) *old = m->vals[i];
        return KT_OK;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    if (old) *old = -1;
    return KT_OK;
}

int64_t kt_strmap_get(const kt_strmap *m, const char *key) {
    if (!m->cap) return -1;
    int64_t i = find_slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}
