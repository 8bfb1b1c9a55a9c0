// General convolutions through cuDNN on NHWC data. Weights arrive in PyTorch's (Co, Ci/g, kh, kw)
// layout and are reordered to (Co, kh, kw, Ci/g) in scratch, the filter layout cuDNN pairs with NHWC.
// Each (kind, geometry) is planned once: descriptors, and the fastest deterministic algorithm that
// cudnnFind measures (heuristics if measuring fails), whose workspace then comes with the scratch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/kt_cuda_internal.cuh"

#define WS_CAP ((size_t)256 << 20) /* algorithms wanting more workspace than this are skipped */

struct kt_cu_convplan {
    int kind; /* 0 forward, 1 data gradient, 2 weight gradient */
    kt_conv_shape s;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int algo;
    size_t ws;     /* workspace bytes of algo */
    char *refused; /* cuDNN refused the geometry: why (asked again, the answer comes without a new cudnnFind) */
};

static void plan_release(kt_cu_convplan *p) {
    free(p->refused);
    if (p->x) cudnnDestroyTensorDescriptor(p->x);
    if (p->y) cudnnDestroyTensorDescriptor(p->y);
    if (p->w) cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

void kt_cuda_conv_plans_free(kt_cuda_ctx *c) {
    for (int i = 0; i < c->n_plans; i++) plan_release(&c->plans[i]);
    free(c->plans);
    c->plans = NULL;
    c->n_plans = c->cap_plans = 0;
}

static int dnn_check(kt_cuda_ctx *c, cudnnStatus_t st, const char *what, const kt_conv_shape *s) {
    if (st == CUDNN_STATUS_SUCCESS) return 0;
    return kt_cu_errf(c, "%s for conv %lldx%lld stride %lldx%lld pad %lldx%lld groups %lld on (%lld, %lld, %lld, %lld) -> %lld channels: %s",
                      what, (long long)s->kh, (long long)s->kw, (long long)s->sh, (long long)s->sw, (long long)s->ph,
                      (long long)s->pw, (long long)s->groups, (long long)s->N, (long long)s->H, (long long)s->W,
                      (long long)s->Ci, (long long)s->Co, cudnnGetErrorString(st));
}

static int describe(kt_cuda_ctx *c, kt_cu_convplan *p) {
    const kt_conv_shape *s = &p->s;
    cudnnStatus_t st = cudnnCreateTensorDescriptor(&p->x);
    if (!st) st = cudnnCreateTensorDescriptor(&p->y);
    if (!st) st = cudnnCreateFilterDescriptor(&p->w);
    if (!st) st = cudnnCreateConvolutionDescriptor(&p->conv);
    if (!st) st = cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)s->N, (int)s->Ci, (int)s->H, (int)s->W);
    if (!st) st = cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)s->N, (int)s->Co, (int)s->Ho, (int)s->Wo);
    if (!st)
        st = cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, (int)s->Co, (int)(s->Ci / s->groups), (int)s->kh,
                                        (int)s->kw);
    if (!st)
        st = cudnnSetConvolution2dDescriptor(p->conv, (int)s->ph, (int)s->pw, (int)s->sh, (int)s->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT);
    if (!st) st = cudnnSetConvolutionGroupCount(p->conv, (int)s->groups);
    if (!st) st = cudnnSetConvolutionMathType(p->conv, c->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
    if (dnn_check(c, st, "describing the convolution to cuDNN", s)) return 1;
    int on, oc, oh, ow;
    st = cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow);
    if (dnn_check(c, st, "cudnnGetConvolution2dForwardOutputDim", s)) return 1;
    if (on != s->N || oc != s->Co || oh != s->Ho || ow != s->Wo)
        return kt_cu_errf(c, "cuDNN sees output (%d, %d, %d, %d) where the graph has (%lld, %lld, %lld, %lld)", on, oh, ow, oc,
                          (long long)s->N, (long long)s->Ho, (long long)s->Wo, (long long)s->Co);
    return 0;
}

/* The first usable result (results come fastest first): succeeded, deterministic, workspace under
 * the cap, and FMA math unless TF32 is allowed (if cuDNN offers no FMA-only algorithm, the first
 * otherwise usable one). Returns its index or -1. */
template <typename P> static int pick(const kt_cuda_ctx *c, const P *perf, int n) {
    for (int strict = 1; strict >= 0; strict--)
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC && perf[i].memory <= WS_CAP &&
                (c->tf32 || !strict || perf[i].mathType == CUDNN_FMA_MATH))
                return i;
    return -1;
}

template <typename P> static int choose(kt_cuda_ctx *c, kt_cu_convplan *p, const P *perf, int n) {
    int i = pick(c, perf, n);
    if (i < 0) return -1;
    p->algo = (int)perf[i].algo;
    p->ws = perf[i].memory;
    cudnnStatus_t st = cudnnSetConvolutionMathType(p->conv, perf[i].mathType);
    return dnn_check(c, st, "cudnnSetConvolutionMathType", &p->s) ? -2 : 0;
}

/* What cuDNN offered, for a refusal to show why nothing was usable: each algorithm with its
 * status, or its determinism, workspace and math */
template <typename P> static void offered(const P *perf, int n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < cap; i++) {
        const char *st = cudnnGetErrorString(perf[i].status);
        if (!strncmp(st, "CUDNN_STATUS_", 13)) st += 13;
        int w = perf[i].status != CUDNN_STATUS_SUCCESS
                    ? snprintf(buf + k, cap - k, "%s#%d %s", i ? ", " : "", (int)perf[i].algo, st)
                    : snprintf(buf + k, cap - k, "%s#%d %s %.0f MiB %s", i ? ", " : "", (int)perf[i].algo,
                               perf[i].determinism == CUDNN_DETERMINISTIC ? "det" : "nondet", (double)perf[i].memory / 1048576.0,
                               perf[i].mathType == CUDNN_FMA_MATH ? "fma" : "tensor-op");
        if (w < 0) break;
        k += (size_t)w;
    }
    if (!n) snprintf(buf, cap, "nothing");
}

static int search(kt_cuda_ctx *c, kt_cu_convplan *p) {
    static const char *kinds[3] = {"forward", "data gradient", "weight gradient"};
    int n = 0, r = -1;
    cudnnStatus_t st;
    char found[200] = "not run", heur[200] = "not asked";
    if (p->kind == 0) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithm(c->dnn, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf);
        if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, found, sizeof found);
        else snprintf(found, sizeof found, "%s", cudnnGetErrorString(st));
        if (r == -1) {
            st = cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, p->x, p->w, p->conv, p->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf);
            if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, heur, sizeof heur);
            else snprintf(heur, sizeof heur, "%s", cudnnGetErrorString(st));
        }
    } else if (p->kind == 1) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithm(c->dnn, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                       perf);
        if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, found, sizeof found);
        else snprintf(found, sizeof found, "%s", cudnnGetErrorString(st));
        if (r == -1) {
            st = cudnnGetConvolutionBackwardDataAlgorithm_v7(c->dnn, p->w, p->y, p->conv, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                             &n, perf);
            if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, heur, sizeof heur);
            else snprintf(heur, sizeof heur, "%s", cudnnGetErrorString(st));
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithm(c->dnn, p->x, p->y, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                         &n, perf);
        if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, found, sizeof found);
        else snprintf(found, sizeof found, "%s", cudnnGetErrorString(st));
        if (r == -1) {
            st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->dnn, p->x, p->y, p->conv, p->w,
                                                               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf);
            if (st == CUDNN_STATUS_SUCCESS) r = choose(c, p, perf, n), offered(perf, n, heur, sizeof heur);
            else snprintf(heur, sizeof heur, "%s", cudnnGetErrorString(st));
        }
    }
    cudaGetLastError(); /* a failed trial inside cudnnFind must not poison later launch checks */
    if (r == -2) return 1;
    if (r == -1) {
        if (st != CUDNN_STATUS_SUCCESS) return dnn_check(c, st, "choosing a cuDNN algorithm", &p->s);
        return kt_cu_errf(c, "cuDNN offers no deterministic %s algorithm (%s) with under %zu MiB of workspace for conv %lldx%lld "
                          "stride %lld groups %lld on %lld channels (cudnnFind: %s; heuristics: %s)%s",
                          kinds[p->kind], c->tf32 ? "TF32 allowed" : "FP32 FMA only",
                          WS_CAP >> 20, (long long)p->s.kh, (long long)p->s.kw, (long long)p->s.sh, (long long)p->s.groups,
                          (long long)p->s.Ci, found, heur,
                          c->tf32 ? "; a smaller batch or image size may find one"
                                  : "; TF32 math (--precision bf16 or tf32) or a smaller batch or image size may find one");
    }
    return 0;
}

static kt_cu_convplan *find_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s) {
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].kind == kind && kt_conv_shape_same(&c->plans[i].s, s)) return &c->plans[i];
    return NULL;
}

static size_t wbytes(const kt_conv_shape *s) { return kt_cu_align((size_t)(s->Co * (s->Ci / s->groups) * s->kh * s->kw) * sizeof(float)); }

/* Finds or makes the plan of (kind, geometry); NULL with the reason in c->err. */
static kt_cu_convplan *get_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s) {
    kt_cu_convplan *p = find_plan(c, kind, s);
    if (p && p->refused) {
        kt_cu_errf(c, "%s", p->refused);
        return NULL;
    }
    if (p) return p;
    int64_t dims[7] = {s->N, s->H, s->W, s->Ci, s->Co, s->Ho, s->Wo};
    for (int i = 0; i < 7; i++)
        if (dims[i] < 1 || dims[i] > INT32_MAX) {
            kt_cu_errf(c, "convolution dimension %lld is outside cuDNN's int range", (long long)dims[i]);
            return NULL;
        }
    /* cuDNN refuses a tensor of more than 2^31-1 elements (NOT_SUPPORTED, no reason given): say
     * which one and what shrinks it */
    struct {
        const char *what;
        int64_t a, b, c, d;
    } t[3] = {{"input", s->N, s->H, s->W, s->Ci}, {"output", s->N, s->Ho, s->Wo, s->Co}, {"filter", s->Co, s->kh, s->kw, s->Ci / s->groups}};
    for (int i = 0; i < 3; i++)
        if (t[i].a * t[i].b * t[i].c * t[i].d > INT32_MAX) {
            kt_cu_errf(c, "the convolution's %s (%lld, %lld, %lld, %lld) has %lld elements, more than cuDNN takes in one tensor (%d); "
                       "a smaller batch or image size fits",
                       t[i].what, (long long)t[i].a, (long long)t[i].b, (long long)t[i].c, (long long)t[i].d,
                       (long long)(t[i].a * t[i].b * t[i].c * t[i].d), INT32_MAX);
            return NULL;
        }
    if (c->n_plans == c->cap_plans) {
        int cap = c->cap_plans ? 2 * c->cap_plans : 16;
        kt_cu_convplan *np = (kt_cu_convplan *)realloc(c->plans, sizeof *np * (size_t)cap);
        if (!np) {
            kt_cu_errf(c, "no host memory for cuDNN plans");
            return NULL;
        }
        c->plans = np;
        c->cap_plans = cap;
    }
    kt_cu_convplan tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = kind;
    tmp.s = *s;
    if (describe(c, &tmp) || search(c, &tmp)) {
        plan_release(&tmp);
        /* remembered: a refused geometry is asked about again while planning (cuda_supports, then
         * cuda_prepare's patch fallback), and cudnnFind is slow on giant ones (H200 run 7: the test
         * that planned them took 31 s) */
        tmp.kind = kind;
        tmp.s = *s;
        if ((tmp.refused = strdup(c->err)) != NULL) c->plans[c->n_plans++] = tmp;
        return NULL;
    }
    c->plans[c->n_plans] = tmp;
    return &c->plans[c->n_plans++];
}

extern "C" int kt_cuda_conv_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s, size_t *scratch_bytes) {
    *scratch_bytes = 0;
    kt_cu_convplan *p = get_plan(c, kind, s);
    if (!p) return 1;
    *scratch_bytes = wbytes(s) + kt_cu_align(p->ws);
    return 0;
}

/* ---- weight layout: w (Co, Cig, kh, kw) <-> wt (Co, kh, kw, Cig) ---- */

__global__ void k_to_krsc(float *wt, const float *w, int64_t Co, int64_t Cig, int64_t khw) {
    KT_CU_LOOP(i, Co * Cig * khw) {
        int64_t k = i % khw, ci = (i / khw) % Cig, o = i / (khw * Cig);
        wt[(o * khw + k) * Cig + ci] = w[i];
    }
}

__global__ void k_from_krsc(float *w, const float *wt, int64_t Co, int64_t Cig, int64_t khw) {
    KT_CU_LOOP(i, Co * Cig * khw) {
        int64_t k = i % khw, ci = (i / khw) % Cig, o = i / (khw * Cig);
        w[i] = wt[(o * khw + k) * Cig + ci];
    }
}

/* The plan for this call, with scratch split into reordered weights and workspace. */
static kt_cu_convplan *prepare(kt_cuda_ctx *c, int kind, const kt_conv_shape *s, void *scratch, size_t bytes, float **wt,
                                  void **ws) {
    kt_cu_convplan *p = get_plan(c, kind, s);
    if (!p) return NULL;
    if (bytes < wbytes(s) + kt_cu_align(p->ws)) {
        kt_cu_errf(c, "cuDNN convolution needs %zu bytes of scratch, the plan gave %zu", wbytes(s) + kt_cu_align(p->ws), bytes);
        return NULL;
    }
    *wt = (float *)scratch;
    *ws = p->ws ? (char *)scratch + wbytes(s) : NULL;
    return p;
}

static int reorder(kt_cuda_ctx *c, const kt_conv_shape *s, float *dst, const float *src, int to_krsc) {
    int64_t Cig = s->Ci / s->groups, khw = s->kh * s->kw, n = s->Co * Cig * khw;
    if (to_krsc) k_to_krsc<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dst, src, s->Co, Cig, khw);
    else k_from_krsc<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dst, src, s->Co, Cig, khw);
    return kt_cu_launched(c, "conv weight reorder");
}

extern "C" int kt_cuda_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y,
                                void *scratch, size_t bytes) {
    float *wt;
    void *ws;
    kt_cu_convplan *p = prepare(c, 0, s, scratch, bytes, &wt, &ws);
    if (!p || reorder(c, s, wt, w, 1)) return 1;
    float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = cudnnConvolutionForward(c->dnn, &one, p->x, x, p->w, wt, p->conv, (cudnnConvolutionFwdAlgo_t)p->algo, ws,
                                               p->ws, &zero, p->y, y);
    if (dnn_check(c, st, "cudnnConvolutionForward", s)) return 1;
    return b ? kt_cuda_bias(c, y, y, b, s->N * s->Ho * s->Wo, s->Co) : 0;
}

extern "C" int kt_cuda_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx,
                                     void *scratch, size_t bytes) {
    float *wt;
    void *ws;
    kt_cu_convplan *p = prepare(c, 1, s, scratch, bytes, &wt, &ws);
    if (!p || reorder(c, s, wt, w, 1)) return 1;
    float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = cudnnConvolutionBackwardData(c->dnn, &one, p->w, wt, p->y, dy, p->conv, (cudnnConvolutionBwdDataAlgo_t)p->algo,
                                                    ws, p->ws, &zero, p->x, dx);
    return dnn_check(c, st, "cudnnConvolutionBackwardData", s);
}

extern "C" int kt_cuda_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw,
                                       void *scratch, size_t bytes) {
    float *dwt;
    void *ws;
    kt_cu_convplan *p = prepare(c, 2, s, scratch, bytes, &dwt, &ws);
    if (!p) return 1;
    float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = cudnnConvolutionBackwardFilter(c->dnn, &one, p->x, x, p->y, dy, p->conv,
                                                      (cudnnConvolutionBwdFilterAlgo_t)p->algo, ws, p->ws, &zero, p->w, dwt);
    if (dnn_check(c, st, "cudnnConvolutionBackwardFilter", s)) return 1;
    return reorder(c, s, dw, dwt, 0);
}
