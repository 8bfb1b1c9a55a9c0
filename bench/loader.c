/* Loader benchmark: consume batches as fast as the workers make them, with no model in between. */
#include "bench/loader.h"

#include <stdlib.h>
#include <sys/resource.h>

#include "base/timer.h"
#include "datasets/loader.h"

static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

kt_status kt_bench_loader_run(const kt_dataset *ds, const kt_bench_loader_opts *o, kt_bench_loader_result *r,
                              kt_err *err) {
    int64_t n = ds->split_count[KT_SPLIT_TRAIN];
    if (n < 1) return kt_err_set(err, KT_ERR_ARG, "%s has no training images to load", ds->root);
    if (o->batches < 1 || o->warmup < 0)
        return kt_err_set(err, KT_ERR_ARG, "bench loader: batches %d must be >= 1 and warmup %d >= 0", o->batches,
                          o->warmup);
    int64_t *items = malloc((size_t)n * sizeof *items);
    if (!items) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    for (int64_t i = 0; i < n; i++) items[i] = ds->split_first[KT_SPLIT_TRAIN] + i;
    kt_loader_config cfg;
    kt_loader_config_default(&cfg, o->img_size);
    cfg.batch_size = o->batch_size;
    cfg.workers = o->workers;
    cfg.shuffle = 1;
    if (!o->train) kt_aug_default_eval(&cfg.aug, o->img_size);
    else cfg.aug.fast_decode = o->fast_decode;
    kt_loader *ld;
    kt_status st = kt_loader_open(&ld, ds, items, n, &cfg, err);
    free(items);
    if (st != KT_OK) return st;
    int64_t epoch = 0, images = 0;
    if ((st = kt_loader_start(ld, epoch, 0, err)) != KT_OK) goto out;
    double t0 = 0, c0 = 0;
    for (int b = 0; b < o->warmup + o->batches; b++) {
        if (b == o->warmup) {
            t0 = kt_now();
            c0 = cpu_seconds();
        }
        const kt_batch *batch;
        if ((st = kt_loader_next(ld, &batch, err)) != KT_OK) goto out;
        if (!batch) { /* epoch over: go on with the next one */
            if ((st = kt_loader_start(ld, ++epoch, 0, err)) != KT_OK) goto out;
            b--;
            continue;
        }
        if (b >= o->warmup) images += batch->n;
    }
    r->seconds = kt_now() - t0;
    r->cpu_s = cpu_seconds() - c0;
    r->images = images;
    r->imgs_per_s = r->seconds > 0 ? images / r->seconds : 0;
    r->ms_per_batch = r->seconds * 1e3 / o->batches;
    r->bad_images = kt_loader_bad_images(ld);
out:
    kt_loader_close(ld);
    return st;
}
