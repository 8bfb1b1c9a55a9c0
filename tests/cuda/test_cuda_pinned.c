/* The CUDA backend page-locks the loader's batches (kt_backend::pin_host, kt_loader_pin_for): an
 * upload from pinned memory gives the same bytes as from pageable memory, the memory stays usable
 * after it is unpinned, and a loader opened for the backend pins its ring and unpins it at close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "datasets/loader.h"
#include "datasets/synth.h"
#include "kt_test.h"
#include "train/evaluate.h"

KT_TEST(test_cuda_pinned_batches_upload) {
    kt_backend *be = kt_twin_backend();
    KT_REQUIRE(be->pin_host && be->unpin_host, "the cuda backend has no pin_host");
    size_t n = (size_t)3 << 20; /* 3 Mi floats, 12 MiB: an odd-sized, not page-aligned block */
    float *h = malloc(n * sizeof(float) + 20), *back = malloc(n * sizeof(float));
    KT_REQUIRE(h && back, "memory");
    float *p = (float *)((char *)h + 4 * 3); /* not page-aligned on purpose */
    for (size_t i = 0; i < n; i++) p[i] = (float)(i % 9973) * 0.25f - 7.0f;
    kt_err err = {0};
    KT_REQUIRE_OK(be->pin_host(be, p, n * sizeof(float), &err), &err);
    void *d = NULL;
    KT_REQUIRE_OK(be->alloc(be, n * sizeof(float), &d, &err), &err);
    KT_REQUIRE_OK(be->upload(be, d, p, n * sizeof(float), &err), &err);
    KT_REQUIRE_OK(be->download(be, back, d, n * sizeof(float), &err), &err);
    KT_CHECK(memcmp(back, p, n * sizeof(float)) == 0, "an upload from pinned memory changed the bytes");
    be->unpin_host(be, p);
    p[5] = 1234.5f; /* still ordinary memory after unpinning */
    KT_REQUIRE_OK(be->upload(be, d, p, n * sizeof(float), &err), &err);
    KT_REQUIRE_OK(be->download(be, back, d, n * sizeof(float), &err), &err);
    KT_CHECK(back[5] == 1234.5f && memcmp(back, p, n * sizeof(float)) == 0, "an upload after unpinning changed the bytes");
    be->release(be, d);
    free(h);
    free(back);

    /* a loader opened for the backend: batches arrive as usual (the ring pinned and unpinned) */
    kt_synth_opts so;
    kt_synth_opts_default(&so);
    char out[4200];
    snprintf(out, sizeof out, "%s/ds", kt_test_tmpdir());
    so.out = out;
    so.classes = 2;
    so.per_class = 6;
    so.size = 24;
    kt_dataset ds;
    KT_REQUIRE_OK(kt_synth_write(&so, NULL, &err), &err);
    KT_REQUIRE_OK(kt_dataset_open(&ds, out, NULL, &err), &err);
    int64_t items[4] = {0, 1, 2, 3};
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    kt_loader *ld = NULL;
    KT_REQUIRE_OK(kt_eval_loader_open(&ld, &ds, items, 4, 16, mean, std, 2, 1, be, &err), &err);
    int got = 0;
    KT_REQUIRE_OK(kt_loader_start(ld, 0, 0, &err), &err);
    const kt_batch *b;
    while (kt_loader_next(ld, &b, &err) == KT_OK && b) got += b->n;
    KT_CHECK(got == 4, "a pinned loader delivered %d of 4 images", got);
    kt_loader_close(ld);
    kt_dataset_close(&ds);
}
