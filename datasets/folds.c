/* Stratified K-fold: per-class round robin over seeded shuffles (single-label), Sechidis et al.'s
 * iterative stratification (multi-label); plus the fold-assignment CSV. */
#include "datasets/folds.h"

#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "datasets/csv.h"
#include "datasets/strmap.h"

void kt_folds_opts_default(kt_folds_opts *o) {
    memset(o, 0, sizeof *o);
    o->k = 5;
    o->seed = 42;
}

void kt_folds_free(kt_folds *f) {
    free(f->fold);
    memset(f, 0, sizeof *f);
}

static int in_pool(const kt_dataset *ds, int64_t i, int holdout_valid) {
    int s = ds->items[i].split;
    return s == KT_SPLIT_TRAIN || (s == KT_SPLIT_VALID && !holdout_valid);
}

/* Single-label: shuffle each class, lay the classes end to end and deal the sequence round robin,
 * so each fold gets floor or ceil of n_c / k of every class and fold sizes differ by at most one. */
static void stratify_single(const kt_dataset *ds, const int32_t *pool, int64_t n, int k, kt_rng *rng,
                            int32_t *tmp, int32_t *fold) {
    int64_t pos = 0;
    for (int c = 0; c < ds->n_classes; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (ds->items[pool[i]].label == c) tmp[m++] = pool[i];
        kt_rng_shuffle_i32(rng, tmp, m);
        for (int64_t j = 0; j < m; j++, pos++) fold[tmp[j]] = (int32_t)(pos % k);
    }
}

/* Multi-label: Sechidis, Tsoumakas & Vlahavas (2011), "On the stratification of multi-label data",
 * Algorithm 1 with equal fold ratios. Ties are broken by the seeded generator. */
static kt_status stratify_multi(const kt_dataset *ds, const int32_t *pool, int64_t n, int k, kt_rng *rng,
                                int32_t *order, int32_t *fold, kt_err *err) {
    const int L = ds->n_classes;
    double *want = calloc((size_t)k, sizeof *want);                /* (k) desired remaining items */
    double *want_l = calloc((size_t)k * (size_t)L, sizeof *want_l); /* (k, L) desired remaining per label */
    int64_t *left = calloc((size_t)L, sizeof *left);               /* (L) unassigned items with the label */
    uint8_t *done = calloc((size_t)n, 1);                          /* (n) by position in order */
    int *cand = malloc((size_t)k * sizeof *cand);
    if (!want || !want_l || !left || !done || !cand) {
        free(want), free(want_l), free(left), free(done), free(cand);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for %d folds x %d labels", k, L);
    }
    memcpy(order, pool, (size_t)n * sizeof *order);
    kt_rng_shuffle_i32(rng, order, n);
    for (int64_t i = 0; i < n; i++) {
        const float *t = kt_dataset_target(ds, order[i]);
        for (int l = 0; l < L; l++) left[l] += t[l] > 0.5f;
    }
    for (int j = 0; j < k; j++) {
        want[j] = (double)n / k;
        for (int l = 0; l < L; l++) want_l[j * L + l] = (double)left[l] / k;
    }
    int64_t remaining = n;
    for (;;) {
        /* The label with the fewest (but some) unassigned items; ties go to a random one. */
        int best = -1, n_best = 0;
        for (int l = 0; l < L; l++) {
            if (left[l] == 0) continue;
            if (best < 0 || left[l] < left[best]) best = l, n_best = 1;
            else if (left[l] == left[best] && kt_rng_below(rng, (uint64_t)++n_best) == 0) best = l;
        }
        if (best < 0) break;
        for (int64_t i = 0; i < n; i++) {
            if (done[i] || kt_dataset_target(ds, order[i])[best] <= 0.5f) continue;
            /* Fold that most wants this label, then the one that most wants items, then random. */
            int nc = 0;
            for (int j = 0; j < k; j++) {
                if (nc == 0) {
                    cand[nc++] = j;
                    continue;
                }
                double a = want_l[j * L + best], b = want_l[cand[0] * L + best];
                if (a > b || (a == b && want[j] > want[cand[0]])) nc = 0, cand[nc++] = j;
                else if (a == b && want[j] == want[cand[0]]) cand[nc++] = j;
            }
            int m = cand[nc > 1 ? kt_rng_below(rng, (uint64_t)nc) : 0];
            fold[order[i]] = m;
            done[i] = 1;
            remaining--;
            want[m] -= 1;
            const float *t = kt_dataset_target(ds, order[i]);
            for (int l = 0; l < L; l++)
                if (t[l] > 0.5f) {
                    want_l[m * L + l] -= 1;
                    left[l]--;
                }
        }
    }
    /* Items with no label go where the most items are still wanted. */
    for (int64_t i = 0; i < n && remaining > 0; i++) {
        if (done[i]) continue;
        int nc = 0;
        for (int j = 0; j < k; j++) {
            if (nc == 0 || want[j] > want[cand[0]]) nc = 0, cand[nc++] = j;
            else if (want[j] == want[cand[0]]) cand[nc++] = j;
        }
        int m = cand[nc > 1 ? kt_rng_below(rng, (uint64_t)nc) : 0];
        fold[order[i]] = m;
        done[i] = 1;
        want[m] -= 1;
        remaining--;
    }
    free(want), free(want_l), free(left), free(done), free(cand);
    return KT_OK;
}

kt_status kt_folds_build(kt_folds *f, const kt_dataset *ds, const kt_folds_opts *o, kt_err *err) {
    memset(f, 0, sizeof *f);
    kt_folds_opts d;
    kt_folds_opts_default(&d);
    if (!o) o = &d;
    int64_t n = 0;
    for (int64_t i = 0; i < ds->n_items; i++) n += in_pool(ds, i, o->holdout_valid);
    if (o->k < 2) return kt_err_set(err, KT_ERR_ARG, "folds: k = %d, need at least 2", o->k);
    if (o->k > n)
        return kt_err_set(err, KT_ERR_ARG, "folds: k = %d folds but only %lld images to fold", o->k, (long long)n);
    f->fold = malloc((size_t)(ds->n_items ? ds->n_items : 1) * sizeof *f->fold);
    int32_t *pool = malloc((size_t)(n ? n : 1) * sizeof *pool), *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!f->fold || !pool || !tmp) {
        free(pool), free(tmp), kt_folds_free(f);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for folds over %lld items", (long long)ds->n_items);
    }
    f->k = o->k;
    f->seed = o->seed;
    f->holdout_valid = o->holdout_valid;
    f->n_items = ds->n_items;
    n = 0;
    for (int64_t i = 0; i < ds->n_items; i++) {
        if (in_pool(ds, i, o->holdout_valid)) pool[n++] = (int32_t)i;
        f->fold[i] = ds->items[i].split == KT_SPLIT_TEST ? KT_FOLD_TEST : KT_FOLD_HOLDOUT;
    }
    kt_rng rng;
    kt_rng_seed(&rng, kt_hash_u64(o->seed, 0x666f6c6473ull /* "folds" */));
    kt_status st = KT_OK;
    if (ds->kind == KT_LABELS_SINGLE) stratify_single(ds, pool, n, o->k, &rng, tmp, f->fold);
    else st = stratify_multi(ds, pool, n, o->k, &rng, tmp, f->fold, err);
    free(pool);
    free(tmp);
    if (st != KT_OK) kt_folds_free(f);
    return st;
}

int64_t kt_folds_items_where(const kt_folds *f, int32_t value, int64_t *out) {
    int64_t n = 0;
    for (int64_t i = 0; i < f->n_items; i++)
        if (f->fold[i] == value) out[n++] = i;
    return n;
}

int64_t kt_folds_val_items(const kt_folds *f, int fold, int64_t *out) { return kt_folds_items_where(f, fold, out); }

int64_t kt_folds_train_items(const kt_folds *f, int fold, int64_t *out) {
    int64_t n = 0;
    for (int64_t i = 0; i < f->n_items; i++)
        if (f->fold[i] >= 0 && f->fold[i] != fold) out[n++] = i;
    return n;
}

/* ---- CSV ------------------------------------------------------------------------------------- */

kt_status kt_folds_write_csv(const kt_folds *f, const kt_dataset *ds, const char *path, kt_err *err) {
    if (f->n_items != ds->n_items)
        return kt_err_set(err, KT_ERR_ARG, "folds cover %lld items but the dataset has %lld", (long long)f->n_items,
                          (long long)ds->n_items);
    kt_atomic_file af;
    kt_status st = kt_atomic_open(&af, path, err);
    if (st != KT_OK) return st;
    fprintf(af.fp, "# keratrack folds k=%d seed=%llu holdout_valid=%d\npath,fold\n", f->k, (unsigned long long)f->seed,
            f->holdout_valid);
    for (int64_t i = 0; i < ds->n_items; i++) {
        kt_csv_write_field(af.fp, ds->items[i].path);
        if (f->fold[i] >= 0) fprintf(af.fp, ",%d\n", f->fold[i]);
        else fprintf(af.fp, ",%s\n", f->fold[i] == KT_FOLD_TEST ? "test" : "holdout");
    }
    return kt_atomic_commit(&af, err);
}

kt_status kt_folds_read_csv(kt_folds *f, const kt_dataset *ds, const char *path, kt_err *err) {
    memset(f, 0, sizeof *f);
    char *text = NULL;
    size_t len = 0;
    kt_status st = kt_file_read(path, &text, &len, err);
    if (st != KT_OK) return st;
    kt_strmap map = {0};
    kt_csv c;
    kt_csv_init(&c, text, len);
    int k = 0, holdout = 0, line, r;
    unsigned long long seed = 0;
    int32_t *seen_line = calloc((size_t)(ds->n_items ? ds->n_items : 1), sizeof *seen_line);
    f->fold = malloc((size_t)(ds->n_items ? ds->n_items : 1) * sizeof *f->fold);
    if (!seen_line || !f->fold) {
        st = kt_err_set(err, KT_ERR_NOMEM, "no memory reading %s", path);
        goto out;
    }
    if (sscanf(text, "# keratrack folds k=%d seed=%llu holdout_valid=%d", &k, &seed, &holdout) != 3 || k < 2) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s:1: expected '# keratrack folds k=K seed=S holdout_valid=0|1'", path);
        goto out;
    }
    while (c.p < c.end && *c.p != '\n') c.p++; /* the comment line */
    if (c.p < c.end) c.p++;
    c.line = 2;
    if ((r = kt_csv_next(&c, &line, path, err)) != 1 || c.n_fields != 2 || strcmp(c.fields[0], "path") ||
        strcmp(c.fields[1], "fold")) {
        st = r < 0 ? err->code : kt_err_set(err, KT_ERR_FORMAT, "%s:2: expected the header 'path,fold'", path);
        goto out;
    }
    if ((st = kt_strmap_init(&map, ds->n_items, err)) != KT_OK) goto out;
    for (int64_t i = 0; i < ds->n_items; i++)
        if ((st = kt_strmap_put(&map, ds->items[i].path, i, NULL, err)) != KT_OK) goto out;
    int64_t n_seen = 0;
    while ((r = kt_csv_next(&c, &line, path, err)) == 1) {
        if (c.n_fields != 2) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: %d fields, expected 2 (path,fold)", path, line, c.n_fields);
            goto out;
        }
        int64_t i = kt_strmap_get(&map, c.fields[0]);
        if (i < 0) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: '%s' is not an image of the dataset %s", path, line,
                            c.fields[0], ds->root);
            goto out;
        }
        if (seen_line[i]) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: '%s' listed twice (first at line %d)", path, line, c.fields[0],
                            seen_line[i]);
            goto out;
        }
        seen_line[i] = line;
        n_seen++;
        const char *v = c.fields[1];
        int32_t fv;
        char *end;
        long x = strtol(v, &end, 10);
        if (!strcmp(v, "test")) fv = KT_FOLD_TEST;
        else if (!strcmp(v, "holdout")) fv = KT_FOLD_HOLDOUT;
        else if (*v && !*end && x >= 0 && x < k) fv = (int32_t)x;
        else {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: fold '%s' is not 0..%d, 'holdout' or 'test'", path, line, v, k - 1);
            goto out;
        }
        int split = ds->items[i].split;
        if ((split == KT_SPLIT_TEST) != (fv == KT_FOLD_TEST)) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: '%s' is a %s image but is assigned '%s'", path, line,
                            c.fields[0], kt_split_name(split), v);
            goto out;
        }
        f->fold[i] = fv;
    }
    if (r < 0) {
        st = err->code;
        goto out;
    }
    if (n_seen != ds->n_items) {
        for (int64_t i = 0; i < ds->n_items; i++)
            if (!seen_line[i]) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: %lld of the dataset's %lld images are not listed (first: %s)",
                                path, (long long)(ds->n_items - n_seen), (long long)ds->n_items, ds->items[i].path);
                goto out;
            }
    }
    f->k = k;
    f->seed = seed;
    f->holdout_valid = holdout;
    f->n_items = ds->n_items;
out:
    kt_strmap_free(&map);
    kt_csv_free(&c);
    free(seen_line);
    free(text);
    if (st != KT_OK) kt_folds_free(f);
    return st;
}
