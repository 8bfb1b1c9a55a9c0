/* Model benchmarks: inference latency/throughput and full training steps (forward, loss, backward,
 * AdamW) of a model at a given batch and size, each case in a child process for its own peak RSS. */
#ifndef KT_MODEL_BENCH_H
#define KT_MODEL_BENCH_H

#include <stdio.h>

#include "base/status.h"

typedef struct kt_bench_case {
    char arch[48];
    int batch, h, w;
    int train; /* 0: inference (forward only, eval mode); 1: training step */
    int recompute;
    /* ---- device selection (CUDA backend, issue 7) ---- */
    int device; /* KT_CPU (0, default) or KT_CUDA: the model is planned on the CUDA backend */
    int tf32;   /* CUDA: f32 GEMMs and cuDNN convolutions may use TF32 tensor cores */
    int bf16;   /* CUDA: linear/matmul operands rounded to bf16 (kt_backend_cuda_set_precision "bf16") */
    int fp16;   /* CUDA: ... to IEEE half ("fp16"; the benchmark's loss gradient stays 1: no loss scaling) */
    int plan_only; /* CUDA: plan the case and report its device memory without running a step */
    unsigned without_fusions; /* CUDA: KT_FUSE_* bits the backend must not use (to measure what each saves) */
} kt_bench_case;

typedef struct kt_bench_result {
    double median_s, min_s, max_s;
    int iters;
    double imgs_per_s;
    double gflop;      /* per iteration: forward FLOPs x batch (x3 for a training step) */
    double gflops;     /* gflop / median */
    double peak_rss_gb;
    double arena_mb, params_mb;
    double device_mb; /* CUDA: device memory this case allocated (parameters, gradients, moments, arena, inputs) */
    char profile[2048]; /* top ops by time, when asked for */
} kt_bench_result;

/* Parses "train:convnext_tiny:16:224", "infer:convnext_atto:1:224", or the PyTorch yardstick's
 * names "infer_b16_tiny", "train_b8_64_atto" (bench/pytorch_bench.py). */
kt_status kt_bench_case_parse(const char *spec, kt_bench_case *c, kt_err *err);
/* Runs the case in this process (warmup then iters timed runs). */
kt_status kt_bench_model_run(const kt_bench_case *c, int warmup, int iters, int profile, kt_bench_result *r, kt_err *err);
/* Runs the case in a forked child so peak RSS is the case's own. */
kt_status kt_bench_model_run_isolated(const kt_bench_case *c, int warmup, int iters, int profile, kt_bench_result *r,
                                      kt_err *err);

#endif
