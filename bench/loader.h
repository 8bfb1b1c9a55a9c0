/* Throughput of the data loader alone: images per second from JPEG files on disk to normalised
 * NHWC float batches, for a given worker count and transform (training augmentation or eval). */
#ifndef KT_BENCH_LOADER_H
#define KT_BENCH_LOADER_H

#include <stdint.h>

#include "base/status.h"
#include "datasets/roboflow.h"

typedef struct kt_bench_loader_opts {
    int workers;      /* decoding threads */
    int img_size;     /* output side in pixels */
    int batch_size;
    int batches;      /* timed batches (epochs wrap around as needed) */
    int warmup;       /* untimed batches first (file cache, buffer growth) */
    int train;        /* 1: training augmentation; 0: eval resize */
    int fast_decode;  /* train only: allow TurboJPEG's 1/2..1/8 scaled decoding */
} kt_bench_loader_opts;

typedef struct kt_bench_loader_result {
    int64_t images;      /* images in the timed batches */
    double seconds;      /* wall time of the timed batches */
    double imgs_per_s;
    double ms_per_batch;
    double cpu_s;        /* process CPU time over the timed batches (user + system) */
    int64_t bad_images;
} kt_bench_loader_result;

/* Runs the loader over the TRAIN split of ds and measures it. */
kt_status kt_bench_loader_run(const kt_dataset *ds, const kt_bench_loader_opts *o, kt_bench_loader_result *r,
                              kt_err *err);

#endif
