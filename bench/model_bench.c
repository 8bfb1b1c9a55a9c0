/* Model benchmark cases: median of timed iterations after warm-up, FLOPs from the architecture. */
#include "bench/model_bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/timer.h"
#include "engine/backend_cuda.h"
#include "kernels/cpu/adamw.h"
#include "nets/convnext.h"
#include "nets/model.h"

/* The PyTorch yardstick's names (bench/pytorch_bench.py): infer_b16_tiny, train_b8_64_atto. */
static int parse_yardstick_name(const char *spec, kt_bench_case *c) {
    char kind[16], arch[32];
    int b, sz = 224;
    if (sscanf(spec, "%15[a-z]_b%d_%d_%31s", kind, &b, &sz, arch) == 4 ||
        (sz = 224, sscanf(spec, "%15[a-z]_b%d_%31s", kind, &b, arch) == 3)) {
        if (strcmp(kind, "train") && strcmp(kind, "infer")) return 0;
        snprintf(c->arch, sizeof c->arch, "convnext_%s", arch);
        c->batch = b;
        c->h = c->w = sz;
        c->train = !strcmp(kind, "train");
        return kt_model_arch_known(c->arch);
    }
    return 0;
}

kt_status kt_bench_case_parse(const char *spec, kt_bench_case *c, kt_err *err) {
    memset(c, 0, sizeof *c);
    if (parse_yardstick_name(spec, c)) return KT_OK;
    memset(c, 0, sizeof *c);
    char kind[16];
    int n = sscanf(spec, "%15[^:]:%47[^:]:%d:%d", kind, c->arch, &c->batch, &c->h);
    if (n != 4 || (strcmp(kind, "train") && strcmp(kind, "infer")) || c->batch < 1 || c->h < 32)
        return kt_err_set(err, KT_ERR_ARG,
                          "bad case '%s': expected train|infer:ARCH:BATCH:SIZE (train:convnext_tiny:16:224) or a yardstick "
                          "name (infer_b1_atto, train_b8_64_atto)",
                          spec);
    c->w = c->h;
    c->train = !strcmp(kind, "train");
    if (!kt_model_arch_known(c->arch)) return kt_err_set(err, KT_ERR_ARG, "bad case '%s': unknown model %s", spec, c->arch);
    return KT_OK;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- device cases (CUDA backend): batches and AdamW through the backend table ---- */

/* Timing statistics, FLOPs and memory of a finished device case (as the CPU path below fills them). */
static void finish_result(const kt_bench_case *c, const kt_model *m, double *t, int iters, int profile, kt_bench_result *r) {
    qsort(t, (size_t)iters, sizeof(double), cmp_d);
    r->iters = iters;
    r->median_s = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    r->min_s = t[0];
    r->max_s = t[iters - 1];
    r->imgs_per_s = c->batch / r->median_s;
    const kt_convnext_cfg *cfg = kt_convnext_find(c->arch);
    double f = cfg ? kt_convnext_flops(cfg, 6, c->h, c->w) : 0;
    r->gflop = f * c->batch * (c->train ? 3 : 1) / 1e9;
    r->gflops = r->gflop / r->median_s;
    r->arena_mb = (double)m->g.arena_bytes / 1048576.0;
    r->params_mb = (double)m->g.n_param_elems * 4 / 1048576.0;
    if (profile) {
        FILE *mf = fmemopen(r->profile, sizeof r->profile - 1, "w");
        if (mf) {
            kt_graph_print_profile(&m->g, mf);
            fclose(mf);
        }
    }
}

static kt_status device_run(const kt_bench_case *c, int warmup, int iters, int profile, kt_bench_result *r, kt_err *err) {
    kt_backend *be = NULL;
    kt_status s = kt_backend_cuda_create(&be, 0, err);
    if (!s && c->tf32) s = kt_backend_cuda_set_tf32(be, 1, err);
    if (!s && c->bf16) s = kt_backend_cuda_set_precision(be, "bf16", err);
    if (!s && c->fp16) s = kt_backend_cuda_set_precision(be, "fp16", err);
    if (s) {
        if (be) be->destroy(be);
        return s;
    }
    be->fusions &= ~c->without_fusions;
    kt_model m;
    kt_model_opts o = {.arch = c->arch, .num_classes = 6, .batch = c->batch, .img_h = c->h, .img_w = c->w, .train = c->train,
                       .label_smoothing = 0.1f, .recompute = c->recompute, .backend = be};
    s = kt_model_create(&m, &o, NULL, err);
    if (s) {
        be->destroy(be);
        return s;
    }
    m.g.training = c->train;
    int64_t np = m.g.n_param_elems, nx = kt_node_numel(m.input);
    if (c->plan_only) { /* the memory the plan takes (what a run allocates), no step */
        kt_plan_stats ps;
        kt_graph_plan_stats(&m.g, &ps);
        r->arena_mb = (double)m.g.arena_bytes / 1048576.0;
        r->params_mb = (double)np * 4 / 1048576.0;
        r->device_mb = (double)(ps.arena_bytes + ps.inputs_bytes + ps.param_bytes + ps.grad_bytes + ps.state_bytes +
                                (c->train ? (size_t)np * 2 * sizeof(float) : 0)) / 1048576.0;
        FILE *mf = fmemopen(r->profile, sizeof r->profile - 1, "w"); /* the breakdown in the profile's place */
        if (mf) {
            kt_graph_print_peak(&m.g, mf, 12);
            fclose(mf);
        }
        kt_model_free(&m);
        be->destroy(be);
        return KT_OK;
    }
    float *x = malloc((size_t)nx * sizeof(float)), *mom = NULL;
    int32_t *y = malloc((size_t)c->batch * sizeof(int32_t));
    double *t = malloc(sizeof(double) * (size_t)(iters > 0 ? iters : 1));
    if (!x || !y || !t) s = kt_err_set(err, KT_ERR_NOMEM, "no memory for the benchmark");
    if (!s) s = kt_model_init_weights(&m, 1, err);
    if (!s) {
        for (int64_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        for (int i = 0; i < c->batch; i++) y[i] = i % 6;
        s = kt_model_set_input(&m, x, err);
    }
    if (!s && c->train) s = kt_model_set_labels(&m, y, err);
    if (!s && c->train) s = be->alloc(be, (size_t)np * 2 * sizeof(float), (void **)&mom, err);
    if (!s && c->train) s = be->memzero(be, mom, (size_t)np * 2 * sizeof(float), err);
    for (int it = 0; it < warmup + iters && !s; it++) {
        if (it == warmup && profile) m.g.profile = 1;
        double t0 = kt_now();
        m.g.step = (uint64_t)it + 1;
        if (c->train) {
            s = kt_graph_run(&m.g, err);
            if (!s) s = be->adamw(be, m.g.param_buf, m.g.grad_buf, mom, mom + np, np, 3e-4f, 0.9f, 0.999f, 1e-8f, 1e-4f, it + 1, err);
            if (!s) s = be->sync(be, err);
        } else {
            s = kt_graph_forward(&m.g, err);
        }
        if (it >= warmup) t[it - warmup] = kt_now() - t0;
    }
    if (!s) {
        kt_plan_stats ps;
        kt_graph_plan_stats(&m.g, &ps);
        finish_result(c, &m, t, iters, profile, r);
        r->device_mb = (double)(ps.arena_bytes + ps.inputs_bytes + ps.param_bytes + ps.grad_bytes + ps.state_bytes +
                                (c->train ? (size_t)np * 2 * sizeof(float) : 0)) / 1048576.0;
    }
    r->peak_rss_gb = (double)kt_peak_rss_bytes() / 1073741824.0;
    if (mom) be->release(be, mom);
    free(x);
    free(y);
    free(t);
    kt_model_free(&m);
    be->destroy(be);
    return s;
}

kt_status kt_bench_model_run(const kt_bench_case *c, int warmup, int iters, int profile, kt_bench_result *r, kt_err *err) {
    memset(r, 0, sizeof *r);
    if (c->device == KT_CUDA) return device_run(c, warmup, iters, profile, r, err);
    kt_model m;
    kt_model_opts o = {.arch = c->arch, .num_classes = 6, .batch = c->batch, .img_h = c->h, .img_w = c->w, .train = c->train,
                       .label_smoothing = 0.1f, .recompute = c->recompute};
    kt_status s = kt_model_create(&m, &o, NULL, err);
    if (s) return s;
    m.g.training = c->train;
    kt_model_init_weights(&m, 1, err);
    float *x = kt_node_f32(m.input);
    for (int64_t i = 0; i < kt_node_numel(m.input); i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    if (c->train)
        for (int i = 0; i < c->batch; i++) ((int32_t *)m.labels->data)[i] = i % 6;
    int64_t np = m.g.n_param_elems;
    float *mom = c->train ? calloc((size_t)np * 2, sizeof(float)) : NULL;
    double *t = malloc(sizeof(double) * (size_t)(iters > 0 ? iters : 1));
    if ((c->train && !mom) || !t) {
        free(mom);
        free(t);
        kt_model_free(&m);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for the benchmark");
    }
    kt_adamw_hp hp = {.lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    for (int it = 0; it < warmup + iters && !s; it++) {
        if (it == warmup && profile) m.g.profile = 1;
        double t0 = kt_now();
        m.g.step = (uint64_t)it + 1;
        if (c->train) {
            s = kt_graph_run(&m.g, err);
            hp.step = it + 1;
            if (!s) kt_cpu_adamw(m.g.param_buf, m.g.grad_buf, mom, mom + np, np, &hp);
        } else {
            s = kt_graph_forward(&m.g, err);
        }
        if (it >= warmup) t[it - warmup] = kt_now() - t0;
    }
    if (!s) {
        qsort(t, (size_t)iters, sizeof(double), cmp_d);
        r->iters = iters;
        r->median_s = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
        r->min_s = t[0];
        r->max_s = t[iters - 1];
        r->imgs_per_s = c->batch / r->median_s;
        const kt_convnext_cfg *cfg = kt_convnext_find(c->arch);
        double f = cfg ? kt_convnext_flops(cfg, 6, c->h, c->w) : 0;
        r->gflop = f * c->batch * (c->train ? 3 : 1) / 1e9;
        r->gflops = r->gflop / r->median_s;
        r->arena_mb = (double)m.g.arena_bytes / 1048576.0;
        r->params_mb = (double)np * 4 / 1048576.0;
        if (profile) {
            FILE *mf = fmemopen(r->profile, sizeof r->profile - 1, "w");
            if (mf) {
                kt_graph_print_profile(&m.g, mf);
                fclose(mf);
            }
        }
    }
    r->peak_rss_gb = (double)kt_peak_rss_bytes() / 1073741824.0;
    free(mom);
    free(t);
    kt_model_free(&m);
    return s;
}

kt_status kt_bench_model_run_isolated(const kt_bench_case *c, int warmup, int iters, int profile, kt_bench_result *r,
                                      kt_err *err) {
    int fd[2];
    if (pipe(fd) != 0) return kt_err_set(err, KT_ERR_IO, "pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return kt_err_set(err, KT_ERR_IO, "fork failed");
    }
    if (pid == 0) {
        close(fd[0]);
        struct {
            kt_status s;
            kt_err e;
            kt_bench_result r;
        } msg;
        msg.s = kt_bench_model_run(c, warmup, iters, profile, &msg.r, &msg.e);
        ssize_t wr = write(fd[1], &msg, sizeof msg);
        _exit(wr == (ssize_t)sizeof msg ? 0 : 1);
    }
    close(fd[1]);
    struct {
        kt_status s;
        kt_err e;
        kt_bench_result r;
    } msg;
    size_t got = 0;
    while (got < sizeof msg) {
        ssize_t k = read(fd[0], (char *)&msg + got, sizeof msg - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (got != sizeof msg) return kt_err_set(err, KT_ERR_STATE, "benchmark child for %s died (out of memory?)", c->arch);
    *r = msg.r;
    if (msg.s && err) *err = msg.e;
    return msg.s;
}
