/* The threaded loader: same batches for any worker count, exact resume, epoch coverage,
 * bad images replaced or reported, multi-label targets. Data: a small synthetic export. */
#include <stdlib.h>
#include <string.h>

#include "base/timer.h"
#include "datasets/loader.h"
#include "datasets/synth.h"
#include "dstest.h"
#include "kt_test.h"

static int open_synth(kt_dataset *ds, const char *name, int multilabel, int per_class) {
    kt_synth_opts so;
    kt_synth_opts_default(&so);
    so.out = dst_path(name);
    so.classes = 3;
    so.per_class = per_class;
    so.size = 40;
    so.multilabel = multilabel;
    kt_err err = {0};
    if (kt_synth_write(&so, NULL, &err) != KT_OK || kt_dataset_open(ds, so.out, NULL, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "synth dataset: %s", err.msg);
        return 0;
    }
    return 1;
}

static int64_t *split_items(const kt_dataset *ds, int split, int64_t *n) {
    *n = ds->split_count[split];
    int64_t *it = malloc((size_t)*n * sizeof *it);
    for (int64_t i = 0; i < *n; i++) it[i] = ds->split_first[split] + i;
    return it;
}

/* Everything a loader produced over some epochs, for comparison. */
typedef struct record {
    float *images;   /* (batches, B, H, W, 3) */
    int32_t *labels; /* (batches, B) */
    int64_t *items;  /* (batches, B) */
    int *n;          /* (batches) */
    int batches;
} record;

static void run_loader(const kt_dataset *ds, const int64_t *items, int64_t n_items, int workers, int epochs,
                       int64_t first_batch, record *r) {
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, 32);
    cfg.batch_size = 5;
    cfg.workers = workers;
    cfg.prefetch = workers == 1 ? 2 : workers > 4 ? 0 : 4; /* many workers: the automatic ring */
    cfg.seed = 77;
    cfg.aug.rotate_p = cfg.aug.bc_p = cfg.aug.hs_p = 0.5f;
    kt_err err = {0};
    kt_loader *ld;
    memset(r, 0, sizeof *r);
    if (kt_loader_open(&ld, ds, items, n_items, &cfg, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "open: %s", err.msg);
        return;
    }
    int64_t nb = kt_loader_num_batches(ld), cap = nb * epochs;
    size_t img = 32 * 32 * 3;
    r->images = malloc((size_t)cap * 5 * img * sizeof(float));
    r->labels = malloc((size_t)cap * 5 * sizeof(int32_t));
    r->items = malloc((size_t)cap * 5 * sizeof(int64_t));
    r->n = malloc((size_t)cap * sizeof(int));
    for (int e = 0; e < epochs; e++) {
        if (kt_loader_start(ld, e + 1, e == 0 ? first_batch : 0, &err) != KT_OK) {
            kt_test_fail(__FILE__, __LINE__, "start: %s", err.msg);
            break;
        }
        const kt_batch *b;
        while (kt_loader_next(ld, &b, &err) == KT_OK && b) {
            int k = r->batches++;
            r->n[k] = b->n;
            memcpy(r->images + (size_t)k * 5 * img, b->images, (size_t)b->n * img * sizeof(float));
            memcpy(r->labels + (size_t)k * 5, b->labels, (size_t)b->n * sizeof(int32_t));
            memcpy(r->items + (size_t)k * 5, b->items, (size_t)b->n * sizeof(int64_t));
        }
    }
    kt_loader_close(ld);
}

static void free_record(record *r) {
    free(r->images), free(r->labels), free(r->items), free(r->n);
}

static int same_batches(const record *a, int a0, const record *b, int b0, int count) {
    size_t img = 32 * 32 * 3;
    for (int k = 0; k < count; k++) {
        int i = a0 + k, j = b0 + k;
        if (a->n[i] != b->n[j]) return 0;
        if (memcmp(a->images + (size_t)i * 5 * img, b->images + (size_t)j * 5 * img, (size_t)a->n[i] * img * 4)) return 0;
        if (memcmp(a->labels + (size_t)i * 5, b->labels + (size_t)j * 5, (size_t)a->n[i] * 4)) return 0;
        if (memcmp(a->items + (size_t)i * 5, b->items + (size_t)j * 5, (size_t)a->n[i] * 8)) return 0;
    }
    return 1;
}

KT_TEST(test_loader_same_batches_with_1_and_3_workers) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds", 0, 8)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    record one, three, twelve;
    run_loader(&ds, items, n, 1, 2, 0, &one);
    run_loader(&ds, items, n, 3, 2, 0, &three);
    run_loader(&ds, items, n, 12, 2, 0, &twelve);
    KT_REQUIRE(one.batches == 10 && three.batches == 10 && twelve.batches == 10, "24 images in batches of 5 over 2 epochs: %d / %d / %d",
               one.batches, three.batches, twelve.batches);
    KT_CHECK(same_batches(&one, 0, &three, 0, 10), "1 and 3 workers must give identical batches");
    KT_CHECK(same_batches(&one, 0, &twelve, 0, 10), "12 workers (more than a batch, the automatic ring) must give the same batches");
    KT_CHECK(one.n[4] == 4 && one.n[9] == 4, "last batch holds the remaining 4");
    /* Each epoch covers every item exactly once, in a different order each epoch. */
    int seen[2][64] = {{0}};
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < one.n[k]; i++) seen[k / 5][one.items[k * 5 + i] - ds.split_first[0]]++;
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < n; i++) KT_CHECK(seen[e][i] == 1, "epoch %d item %d seen %d times", e, i, seen[e][i]);
    KT_CHECK(memcmp(one.items, one.items + 25, 5 * sizeof(int64_t)) != 0, "epochs must be shuffled differently");
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < one.n[k]; i++)
            KT_CHECK(one.labels[k * 5 + i] == ds.items[one.items[k * 5 + i]].label, "label of batch %d pos %d", k, i);
    free_record(&one), free_record(&three), free_record(&twelve), free(items);
    kt_dataset_close(&ds);
}

KT_TEST(test_loader_resume_at_batch_is_exact) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds", 0, 8)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    record full, resumed;
    run_loader(&ds, items, n, 2, 1, 0, &full);
    run_loader(&ds, items, n, 2, 1, 3, &resumed);
    KT_REQUIRE(full.batches == 5 && resumed.batches == 2, "batches %d / %d", full.batches, resumed.batches);
    KT_CHECK(same_batches(&full, 3, &resumed, 0, 2), "resuming at batch 3 must give batches 3 and 4 exactly");
    free_record(&full), free_record(&resumed), free(items);
    kt_dataset_close(&ds);
}

KT_TEST(test_loader_eval_order_drop_last_and_restart) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds", 0, 8)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, 24);
    cfg.batch_size = 7;
    cfg.shuffle = 0;
    cfg.drop_last = 1;
    kt_aug_default_eval(&cfg.aug, 24);
    kt_err err = {0};
    kt_loader *ld;
    KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
    KT_CHECK(kt_loader_num_batches(ld) == 3, "24 / 7 with drop_last = 3 batches");
    const kt_batch *b;
    KT_CHECK(kt_loader_next(ld, &b, &err) == KT_ERR_STATE, "next before start must be an error");
    /* Restart repeatedly while batches are in flight: no hang, no stale batch. */
    for (int rep = 0; rep < 5; rep++) {
        KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
        KT_REQUIRE_OK(kt_loader_next(ld, &b, &err), &err);
    }
    KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
    int count = 0;
    while (kt_loader_next(ld, &b, &err) == KT_OK && b) {
        KT_CHECK(b->n == 7 && b->index == count, "batch %d: n %d index %lld", count, b->n, (long long)b->index);
        for (int i = 0; i < b->n; i++)
            KT_CHECK(b->items[i] == items[count * 7 + i], "eval keeps item order");
        count++;
    }
    KT_CHECK(count == 3, "batches %d", count);
    KT_CHECK(kt_loader_next(ld, &b, &err) == KT_OK && b == NULL, "after the end: NULL again");
    KT_CHECK(kt_loader_start(ld, 0, 4, &err) == KT_ERR_ARG, "batch past the epoch is an error");
    kt_loader_close(ld);
    /* Configuration errors. */
    cfg.batch_size = 100;
    KT_CHECK(kt_loader_open(&ld, &ds, items, n, &cfg, &err) == KT_ERR_ARG && strstr(err.msg, "drop_last"), "%s", err.msg);
    cfg.batch_size = 4;
    cfg.workers = 0;
    KT_CHECK(kt_loader_open(&ld, &ds, items, n, &cfg, &err) == KT_ERR_ARG && strstr(err.msg, "workers"), "%s", err.msg);
    cfg.workers = 1;
    cfg.aug.hflip_p = 2;
    KT_CHECK(kt_loader_open(&ld, &ds, items, n, &cfg, &err) == KT_ERR_ARG && strstr(err.msg, "hflip_p"), "%s", err.msg);
    free(items);
    kt_dataset_close(&ds);
}

KT_TEST(test_loader_bad_image_replaced_or_reported) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds", 0, 4)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    /* Break one image after the dataset was opened (as a file changed on disk would). */
    char path[8192];
    kt_err err = {0};
    kt_dataset_item_path(&ds, items[5], path, sizeof path, &err);
    dst_write_text(path, "garbage");
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, 24);
    cfg.batch_size = 4;
    cfg.workers = 2;
    for (int strict = 0; strict < 2; strict++) {
        cfg.strict = strict;
        kt_loader *ld;
        KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
        KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
        const kt_batch *b;
        int replaced = 0, errors = 0, batches = 0;
        kt_status st;
        while ((st = kt_loader_next(ld, &b, &err)) != KT_OK || b) {
            batches++;
            if (st != KT_OK) {
                errors++;
                KT_CHECK(strstr(err.msg, path) && strstr(err.msg, "not a JPEG or PNG"), "strict error: %s", err.msg);
                continue;
            }
            replaced += b->n_replaced;
            for (int i = 0; i < b->n; i++) KT_CHECK(b->items[i] != items[5], "the broken image must not be served");
        }
        KT_CHECK(batches == 3, "all 3 batches are still handed out (%d)", batches);
        KT_CHECK(kt_loader_bad_images(ld) == 1, "bad images %lld", (long long)kt_loader_bad_images(ld));
        char msg[1024];
        kt_loader_last_error(ld, msg, sizeof msg);
        KT_CHECK(strstr(msg, path) != NULL, "last error names the file: %s", msg);
        if (strict) KT_CHECK(errors == 1 && replaced == 0, "strict: %d errors", errors);
        else KT_CHECK(errors == 0 && replaced == 1, "skip mode: %d replaced, %d errors", replaced, errors);
        kt_loader_close(ld);
    }
    free(items);
    kt_dataset_close(&ds);
}

KT_TEST(test_loader_multilabel_targets) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds", 1, 4)) return;
    KT_REQUIRE(ds.kind == KT_LABELS_MULTI, "synth --multilabel must load as multi-label");
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, 24);
    cfg.batch_size = 4;
    cfg.workers = 1;
    kt_err err = {0};
    kt_loader *ld;
    KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
    KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
    const kt_batch *b;
    while (kt_loader_next(ld, &b, &err) == KT_OK && b)
        for (int i = 0; i < b->n; i++) {
            KT_CHECK(b->labels[i] == -1, "multi-label batches carry no class index");
            KT_CHECK(memcmp(b->targets + i * 3, kt_dataset_target(&ds, b->items[i]), 3 * sizeof(float)) == 0,
                     "targets row of item %lld", (long long)b->items[i]);
        }
    kt_loader_close(ld);
    free(items);
    kt_dataset_close(&ds);
}

/* The pin hook: the loader hands over the block that holds every batch's images once, and gets it
 * back through unpin with the same pointer before freeing it; a refused pin is never undone, and
 * the loader works the same either way (the CUDA backend page-locks the batches this way). */
typedef struct pin_log {
    int pins, unpins, refuse;
    char *p;
    size_t bytes;
    void *unpinned;
} pin_log;

static int pin_rec(void *ctx, void *p, size_t bytes) {
    pin_log *l = ctx;
    l->pins++;
    l->p = p;
    l->bytes = bytes;
    return l->refuse;
}

static void unpin_rec(void *ctx, void *p) {
    pin_log *l = ctx;
    l->unpins++;
    l->unpinned = p;
}

KT_TEST(test_loader_pins_its_batches_once) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds_pin", 0, 4)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    for (int refuse = 0; refuse < 2; refuse++) {
        kt_loader_config cfg;
        kt_loader_config_default(&cfg, 16);
        cfg.batch_size = 3;
        cfg.workers = 2;
        pin_log l = {.refuse = refuse};
        cfg.pin = pin_rec;
        cfg.unpin = unpin_rec;
        cfg.pin_ctx = &l;
        kt_err err = {0};
        kt_loader *ld;
        KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
        KT_CHECK(l.pins == 1 && l.unpins == 0, "after open: %d pins, %d unpins", l.pins, l.unpins);
        size_t img = 16 * 16 * 3 * sizeof(float);
        int batches = 0;
        for (int epoch = 0; epoch < 2; epoch++) {
            KT_REQUIRE_OK(kt_loader_start(ld, epoch, 0, &err), &err);
            const kt_batch *b;
            while (kt_loader_next(ld, &b, &err) == KT_OK && b) {
                const char *q = (const char *)b->images;
                KT_CHECK(q >= l.p && q + (size_t)cfg.batch_size * img <= l.p + l.bytes, "batch %lld outside the pinned block",
                         (long long)b->index);
                batches++;
            }
        }
        KT_CHECK(batches == 2 * kt_loader_num_batches(ld) && batches > 0, "batches %d", batches);
        kt_loader_close(ld);
        if (refuse) KT_CHECK(l.pins == 1 && l.unpins == 0, "a refused pin was undone (%d unpins)", l.unpins);
        else KT_CHECK(l.pins == 1 && l.unpins == 1 && l.unpinned == l.p, "close: %d unpins, pointer %s", l.unpins, l.unpinned == l.p ? "same" : "other");
    }
    free(items);
    kt_dataset_close(&ds);
}

/* The consumer's wait for batches still being decoded is counted (so the trainer can say when the
 * model waits on the decoding): nothing before the first kt_loader_next, something over an epoch
 * consumed as fast as it comes (one worker, a ring of two batches: the consumer must outrun it),
 * never more than the time the consumer spent in kt_loader_next. */
KT_TEST(test_loader_counts_the_consumers_wait) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds_wait", 0, 8)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, 32);
    cfg.batch_size = 2;
    cfg.workers = 1;
    cfg.prefetch = 2;
    kt_err err = {0};
    kt_loader *ld;
    KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
    KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
    KT_CHECK(kt_loader_wait_seconds(ld) == 0, "waited %g s before asking for a batch", kt_loader_wait_seconds(ld));
    double in_next = 0, last = 0;
    int batches = 0;
    const kt_batch *b;
    for (;;) {
        double t0 = kt_now();
        kt_status st = kt_loader_next(ld, &b, &err);
        in_next += kt_now() - t0;
        if (st != KT_OK || !b) break;
        double w = kt_loader_wait_seconds(ld);
        KT_CHECK(w >= last, "the wait went down: %g after %g", w, last);
        last = w;
        batches++;
    }
    KT_CHECK(batches == kt_loader_num_batches(ld) && batches >= 6, "batches %d", batches);
    KT_CHECK(last > 0, "an epoch consumed as fast as it came never waited on one worker");
    KT_CHECK(last <= in_next, "counted %g s of waiting in %g s of kt_loader_next", last, in_next);
    kt_loader_close(ld);
    free(items);
    kt_dataset_close(&ds);
}

KT_TEST(test_loader_auto_workers) {
    KT_CHECK(kt_loader_auto_workers(0, 64) == 2 && kt_loader_auto_workers(0, 1) == 2, "CPU training: 2 workers");
    KT_CHECK(kt_loader_auto_workers(1, 1) == 2 && kt_loader_auto_workers(1, 2) == 2, "a GPU on 1-2 cores: 2");
    KT_CHECK(kt_loader_auto_workers(1, 8) == 7 && kt_loader_auto_workers(1, 16) == 15, "a GPU: all cores but one");
    KT_CHECK(kt_loader_auto_workers(1, 128) == 16, "a GPU on 128 cores: capped at 16, got %d", kt_loader_auto_workers(1, 128));
}

/* The ring's automatic size: as before for 1-2 workers (3 and 4 batches), two images of look-ahead
 * per worker beyond two batches for many, at least 4 and at most workers + 2; an explicit prefetch
 * wins. */
KT_TEST(test_loader_ring_size) {
    kt_dataset ds;
    if (!open_synth(&ds, "ds_ring", 0, 4)) return;
    int64_t n;
    int64_t *items = split_items(&ds, KT_SPLIT_TRAIN, &n);
    static const int cases[][4] = {/* workers, batch, prefetch, ring */
                                   {1, 16, 0, 3}, {2, 16, 0, 4}, {15, 64, 0, 4}, {15, 4, 0, 10}, {8, 16, 0, 4}, {4, 2, 0, 6}, {15, 64, 7, 7}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        kt_loader_config cfg;
        kt_loader_config_default(&cfg, 16);
        cfg.workers = cases[k][0], cfg.batch_size = cases[k][1], cfg.prefetch = cases[k][2];
        kt_err err = {0};
        kt_loader *ld;
        KT_REQUIRE_OK(kt_loader_open(&ld, &ds, items, n, &cfg, &err), &err);
        KT_CHECK(kt_loader_ring_batches(ld) == cases[k][3], "%d workers, batch %d, prefetch %d: ring %d, want %d", cases[k][0],
                 cases[k][1], cases[k][2], kt_loader_ring_batches(ld), cases[k][3]);
        kt_loader_close(ld);
    }
    free(items);
    kt_dataset_close(&ds);
}
