/* K-fold assignment: stratification bounds, TEST never folded, holdout, determinism, CSV. */
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "datasets/folds.h"
#include "dstest.h"
#include "kt_test.h"

/* An in-memory dataset: n items over the splits given, labels from label_of (single) or random
 * multi-hot with per-class rates (multi). */
static void fake_dataset(kt_dataset *ds, int64_t n, int C, int multi, uint64_t seed) {
    memset(ds, 0, sizeof *ds);
    ds->kind = multi ? KT_LABELS_MULTI : KT_LABELS_SINGLE;
    ds->n_classes = C;
    ds->class_names = calloc((size_t)C, sizeof(char *));
    for (int c = 0; c < C; c++) {
        ds->class_names[c] = malloc(16);
        snprintf(ds->class_names[c], 16, "c%d", c);
    }
    ds->n_items = n;
    ds->items = calloc((size_t)n, sizeof *ds->items);
    ds->targets = calloc((size_t)n * C, sizeof(float));
    kt_rng r;
    kt_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        int split = i < n * 7 / 10 ? KT_SPLIT_TRAIN : i < n * 85 / 100 ? KT_SPLIT_VALID : KT_SPLIT_TEST;
        ds->items[i].split = split;
        ds->split_count[split]++;
        ds->items[i].path = malloc(32);
        snprintf(ds->items[i].path, 32, "%s/%06lld.jpg", kt_split_name(split), (long long)i);
        if (!multi) {
            /* Skewed classes: class c has weight c + 1. */
            int c = (int)kt_rng_below(&r, (uint64_t)(C * (C + 1) / 2)), k = 0;
            while (c >= k + 1) c -= ++k;
            ds->items[i].label = k;
            ds->targets[i * C + k] = 1;
        } else {
            ds->items[i].label = -1;
            for (int c = 0; c < C; c++)
                if (kt_rng_uniform(&r) < 0.05f + 0.4f * c / C) ds->targets[i * C + c] = 1;
        }
    }
    for (int s = 0, first = 0; s < KT_SPLIT_COUNT; first += (int)ds->split_count[s], s++) {
        ds->split_first[s] = first;
        ds->has_split[s] = 1;
    }
}

KT_TEST(test_folds_single_label_stratified_within_one) {
    kt_dataset ds;
    fake_dataset(&ds, 1003, 5, 0, 3);
    kt_folds f;
    kt_folds_opts o;
    kt_folds_opts_default(&o);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_folds_build(&f, &ds, &o, &err), &err);
    int64_t pool = 0, per[5][5] = {{0}}, ncl[5] = {0};
    for (int64_t i = 0; i < ds.n_items; i++) {
        if (ds.items[i].split == KT_SPLIT_TEST) {
            KT_CHECK(f.fold[i] == KT_FOLD_TEST, "test item %lld in fold %d", (long long)i, f.fold[i]);
            continue;
        }
        KT_REQUIRE(f.fold[i] >= 0 && f.fold[i] < 5, "item %lld fold %d", (long long)i, f.fold[i]);
        per[f.fold[i]][ds.items[i].label]++;
        ncl[ds.items[i].label]++;
        pool++;
    }
    for (int k = 0; k < 5; k++) {
        int64_t size = 0;
        for (int c = 0; c < 5; c++) {
            double want = ncl[c] / 5.0;
            KT_CHECK(per[k][c] >= want - 1 && per[k][c] <= want + 1, "fold %d class %d: %lld, proportional %.1f", k, c,
                     (long long)per[k][c], want);
            size += per[k][c];
        }
        KT_CHECK(size >= pool / 5 && size <= pool / 5 + 1, "fold %d has %lld of %lld", k, (long long)size, (long long)pool);
    }
    /* Train/val item lists partition the pool. */
    int64_t *buf = malloc((size_t)ds.n_items * sizeof *buf);
    int64_t nt = kt_folds_train_items(&f, 2, buf), nv = kt_folds_val_items(&f, 2, buf);
    KT_CHECK(nt + nv == pool, "train %lld + val %lld != pool %lld", (long long)nt, (long long)nv, (long long)pool);
    /* Same seed, same folds; another seed, other folds. */
    kt_folds g;
    KT_REQUIRE_OK(kt_folds_build(&g, &ds, &o, &err), &err);
    KT_CHECK(memcmp(f.fold, g.fold, (size_t)ds.n_items * sizeof *f.fold) == 0, "seeded folds must repeat");
    kt_folds_free(&g);
    o.seed = 43;
    KT_REQUIRE_OK(kt_folds_build(&g, &ds, &o, &err), &err);
    KT_CHECK(memcmp(f.fold, g.fold, (size_t)ds.n_items * sizeof *f.fold) != 0, "another seed must reshuffle");
    kt_folds_free(&g);
    /* Holdout: VALID stays out of every fold. */
    o.holdout_valid = 1;
    KT_REQUIRE_OK(kt_folds_build(&g, &ds, &o, &err), &err);
    for (int64_t i = 0; i < ds.n_items; i++)
        if (ds.items[i].split == KT_SPLIT_VALID && g.fold[i] != KT_FOLD_HOLDOUT) {
            KT_CHECK(0, "valid item %lld in fold %d with holdout_valid", (long long)i, g.fold[i]);
            break;
        }
    KT_CHECK(kt_folds_items_where(&g, KT_FOLD_HOLDOUT, buf) == ds.split_count[KT_SPLIT_VALID], "holdout count");
    kt_folds_free(&g);
    /* Bad k. */
    o.k = 1;
    KT_CHECK(kt_folds_build(&g, &ds, &o, &err) == KT_ERR_ARG && strstr(err.msg, "k = 1"), "%s", err.msg);
    free(buf);
    kt_folds_free(&f);
    kt_dataset_close(&ds);
}

KT_TEST(test_folds_multilabel_iterative_stratification) {
    kt_dataset ds;
    fake_dataset(&ds, 1500, 8, 1, 11);
    kt_folds f;
    kt_folds_opts o;
    kt_folds_opts_default(&o);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_folds_build(&f, &ds, &o, &err), &err);
    int64_t per[5][8] = {{0}}, nl[8] = {0}, size[5] = {0}, pool = 0;
    for (int64_t i = 0; i < ds.n_items; i++) {
        if (ds.items[i].split == KT_SPLIT_TEST) {
            KT_CHECK(f.fold[i] == KT_FOLD_TEST, "test item folded");
            continue;
        }
        KT_REQUIRE(f.fold[i] >= 0 && f.fold[i] < 5, "fold %d", f.fold[i]);
        size[f.fold[i]]++;
        pool++;
        for (int l = 0; l < 8; l++)
            if (kt_dataset_target(&ds, i)[l] > 0.5f) per[f.fold[i]][l]++, nl[l]++;
    }
    /* Iterative stratification keeps each label's count per fold within a couple of images of
     * proportional, and the fold sizes near equal. */
    for (int k = 0; k < 5; k++) {
        for (int l = 0; l < 8; l++)
            KT_CHECK(llabs(per[k][l] * 5 - nl[l]) <= 2 * 5, "fold %d label %d: %lld, proportional %.1f", k, l,
                     (long long)per[k][l], nl[l] / 5.0);
        KT_CHECK(llabs(size[k] * 5 - pool) <= 3 * 5, "fold %d size %lld of %lld", k, (long long)size[k], (long long)pool);
    }
    kt_folds_free(&f);
    kt_dataset_close(&ds);
}

KT_TEST(test_folds_csv_roundtrip_and_bad_files) {
    kt_dataset ds;
    fake_dataset(&ds, 120, 3, 0, 5);
    kt_folds f, g;
    kt_folds_opts o;
    kt_folds_opts_default(&o);
    o.k = 4;
    o.seed = 9;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_folds_build(&f, &ds, &o, &err), &err);
    const char *path = dst_path("folds.csv");
    KT_REQUIRE_OK(kt_folds_write_csv(&f, &ds, path, &err), &err);
    KT_REQUIRE_OK(kt_folds_read_csv(&g, &ds, path, &err), &err);
    KT_CHECK(g.k == 4 && g.seed == 9 && g.holdout_valid == 0, "header k %d seed %llu", g.k, (unsigned long long)g.seed);
    KT_CHECK(memcmp(f.fold, g.fold, (size_t)ds.n_items * sizeof *f.fold) == 0, "fold assignment must round-trip");
    kt_folds_free(&g);
    struct {
        const char *text, *want;
    } bad[] = {
        {"path,fold\n", "expected '# keratrack folds"},
        {"# keratrack folds k=4 seed=1 holdout_valid=0\npath,fold\ntrain/nope.jpg,1\n", ":3: 'train/nope.jpg' is not an image"},
        {"# keratrack folds k=4 seed=1 holdout_valid=0\npath,fold\ntrain/000000.jpg,7\n", ":3: fold '7' is not 0..3"},
        {"# keratrack folds k=4 seed=1 holdout_valid=0\npath,fold\ntrain/000000.jpg,1\ntrain/000000.jpg,2\n",
         ":4: 'train/000000.jpg' listed twice"},
        {"# keratrack folds k=4 seed=1 holdout_valid=0\npath,fold\ntrain/000000.jpg,test\n", "is a train image"},
        {"# keratrack folds k=4 seed=1 holdout_valid=0\npath,fold\ntrain/000000.jpg,1\n", "119 of the dataset's 120"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dst_write_text(path, bad[i].text);
        KT_CHECK(kt_folds_read_csv(&g, &ds, path, &err) == KT_ERR_FORMAT && strstr(err.msg, bad[i].want),
                 "case %zu: want '%s' in: %s", i, bad[i].want, err.msg);
    }
    kt_folds_free(&f);
    kt_dataset_close(&ds);
}
