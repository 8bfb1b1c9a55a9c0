// cuDNN's legacy convolution API under host emulation, written from cuDNN's documented semantics so
// that kernels/cuda/conv_cudnn.cu itself runs here: its descriptors, its choice among the algorithms
// cudnnFind reports, the workspace it plans, and its weight reorder kernels. What cuDNN documents:
//  - NHWC tensors (n, c, h, w given in that order, stored n, h, w, c) and NHWC filters (k, c, h, w
//    given, stored k, h, w, c: "KRSC"); cross-correlation; output size (in + 2 pad - dil (k - 1) -
//    1) / stride + 1; with groups, the filter's c is the input's c / groups and k divides by groups;
//    what does not fit is CUDNN_STATUS_BAD_PARAM.
//  - y = alpha conv(x, w) + beta y (y not read when beta is 0), likewise dx and dw.
//  - cudnnFind / cudnnGet*_v7 fill perf results (algo, status, time, memory, determinism, mathType),
//    fastest first; a run needs at least the reported workspace (else BAD_PARAM), and an algorithm
//    that uses tensor cores is not available under CUDNN_FMA_MATH (NOT_SUPPORTED).
// The emulated algorithm list holds the cases conv_cudnn.cu must sort out: the fastest wanting more
// workspace than it allows, a non-deterministic one, a TF32 one (operands rounded to TF32 when run),
// and an FMA one, each with a workspace that depends on the geometry. Accumulation is in double, but
// for the non-deterministic algorithm in float, in an order that changes from call to call, so a
// caller that takes it loses bit-identical reruns as it would on a GPU.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cudnn.h>

struct cudnnContext {
    uint32_t magic;
    cudaStream_t stream;
    int dev; /* the device current at cudnnCreate: cuDNN runs there */
};
struct cudnnTensorStruct {
    uint32_t magic;
    int set, n, c, h, w;
};
struct cudnnFilterStruct {
    uint32_t magic;
    int set, k, c, h, w;
};
struct cudnnConvolutionStruct {
    uint32_t magic;
    int set, ph, pw, sh, sw, dh, dw, groups;
    cudnnMathType_t math;
};

namespace {
/* cuemu.h's emu_make / emu_unmake with cuDNN's statuses */
template <typename T> cudnnStatus_t make(T **out, const T &init) {
    if (!out) return CUDNN_STATUS_BAD_PARAM;
    return (*out = emu_make(init)) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}
template <typename T> cudnnStatus_t unmake(T *p) { return emu_unmake(p) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM; }
[[noreturn]] void not_emulated(const char *what) {
    fprintf(stderr, "emulated cuDNN: %s is not emulated\n", what);
    abort();
}


/* One convolution problem, from the descriptors */
struct problem {
    int64_t N, H, W, Ci, Co, kh, kw, Ho, Wo, ph, pw, sh, sw, dh, dw, G;
};
cudnnStatus_t describe(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t y,
                       problem *p) {
    if (!emu_live(x) || !emu_live(w) || !emu_live(d) || !emu_live(y) || !x->set || !w->set || !d->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
    if (w->c * d->groups != x->c || w->k % d->groups) return CUDNN_STATUS_BAD_PARAM;
    int64_t ho = (x->h + 2 * d->ph - d->dh * (w->h - 1) - 1) / d->sh + 1, wo = (x->w + 2 * d->pw - d->dw * (w->w - 1) - 1) / d->sw + 1;
    if (ho < 1 || wo < 1 || y->n != x->n || y->c != w->k || y->h != ho || y->w != wo) return CUDNN_STATUS_BAD_PARAM;
    *p = {x->n, x->h, x->w, x->c, w->k, w->h, w->w, ho, wo, d->ph, d->pw, d->sh, d->sw, d->dh, d->dw, d->groups};
    return CUDNN_STATUS_SUCCESS;
}

/* The emulated algorithms, fastest first: their number, math, determinism and workspace */
const int N_ALGOS = 4;
struct algo_info {
    int algo;
    cudnnMathType_t math;
    cudnnDeterminism_t det;
};
const algo_info ALGOS[N_ALGOS] = {{1, CUDNN_TENSOR_OP_MATH, CUDNN_DETERMINISTIC},
                                  {2, CUDNN_FMA_MATH, CUDNN_NON_DETERMINISTIC},
                                  {3, CUDNN_TENSOR_OP_MATH, CUDNN_DETERMINISTIC},
                                  {4, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC}};
size_t workspace(int algo, const problem &p, int kind) {
    /* KT_EMU_CUDNN_WS_MIB=N: every deterministic algorithm wants N MiB, as the H200's cuDNN left
     * none under our cap for giant convolutions (run 8); a test checks what the refusal says */
    const char *big = getenv("KT_EMU_CUDNN_WS_MIB");
    if (big && *big && algo != 2) return (size_t)strtoull(big, NULL, 10) << 20;
    switch (algo) {
    case 1: return (size_t)1 << 30; /* more than any caller should take */
    case 2: return 0;
    case 3: return (size_t)(4096 + 64 * p.kh * p.kw * (p.Ci / p.G) + 256 * kind);
    default: return (size_t)(1024 + 32 * p.kh * p.kw * p.G + 128 * kind);
    }
}
const algo_info *algo_of(int algo) {
    for (int i = 0; i < N_ALGOS; i++)
        if (ALGOS[i].algo == algo) return &ALGOS[i];
    return NULL;
}
/* An algorithm that uses tensor cores is not offered under FMA math */
bool allowed(const algo_info *a, cudnnMathType_t m) { return a->math == CUDNN_FMA_MATH || m != CUDNN_FMA_MATH; }

template <typename P> cudnnStatus_t list(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t d,
                                         cudnnTensorDescriptor_t y, int kind, int requested, int *returned, P *perf) {
    if (!emu_live(h)) return CUDNN_STATUS_BAD_PARAM;
    emu_check_handle_device(h->dev, "cuDNN");
    if (requested < 1 || !returned || !perf) return CUDNN_STATUS_BAD_PARAM;
    problem p;
    cudnnStatus_t s = describe(x, w, d, y, &p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    int n = requested < N_ALGOS ? requested : N_ALGOS;
    for (int i = 0; i < n; i++) {
        const algo_info *a = &ALGOS[i];
        memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = a->algo;
        perf[i].status = allowed(a, d->math) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
        perf[i].time = 0.1f * (float)(i + 1);
        perf[i].memory = workspace(a->algo, p, kind);
        perf[i].determinism = a->det;
        perf[i].mathType = a->math;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

/* A sum in double, or (non-deterministic algorithm) in float */
struct sum {
    bool fl;
    double d = 0;
    float f = 0;
    void add(double t) {
        if (fl) f += (float)t;
        else d += t;
    }
    double get() const { return fl ? (double)f : d; }
};
unsigned long long n_calls;

/* The checks every run makes: the problem, the algorithm under the descriptor's math, the workspace.
 * *round: TF32 operands; *nondet: float sums; *flip: this call sums its innermost loop backwards. */
cudnnStatus_t run_check(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t d,
                        cudnnTensorDescriptor_t y, int algo, int kind, const void *ws, size_t ws_bytes, const void *alpha, const void *beta,
                        problem *p, bool *round, bool *nondet, bool *flip) {
    if (!emu_live(h)) return CUDNN_STATUS_BAD_PARAM;
    emu_check_handle_device(h->dev, "cuDNN");
    emu_check_on_device(ws, "a cuDNN convolution's workspace");
    if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t s = describe(x, w, d, y, p);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    const algo_info *a = algo_of(algo);
    if (!a) return CUDNN_STATUS_BAD_PARAM;
    if (!allowed(a, d->math)) return CUDNN_STATUS_NOT_SUPPORTED;
    size_t need = workspace(algo, *p, kind);
    if (ws_bytes < need || (need && !ws)) return CUDNN_STATUS_BAD_PARAM;
    *round = a->math != CUDNN_FMA_MATH;
    *nondet = a->det == CUDNN_NON_DETERMINISTIC;
    *flip = *nondet && (n_calls++ & 1);
    return CUDNN_STATUS_SUCCESS;
}
float rd(const float *v, int64_t i, bool round) { return round ? emu_tf32(v[i]) : v[i]; }
#define XI(n, y, x, ch) ((((n) * p.H + (y)) * p.W + (x)) * p.Ci + (ch))
#define YI(n, y, x, ch) ((((n) * p.Ho + (y)) * p.Wo + (x)) * p.Co + (ch))
#define WI(k, r, s, ch) ((((k) * p.kh + (r)) * p.kw + (s)) * (p.Ci / p.G) + (ch))
} // namespace

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) { return make(h, cudnnContext{0, NULL, emu_current_device()}); }
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { return unmake(h); }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    if (!emu_live(h)) return CUDNN_STATUS_BAD_PARAM;
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}
const char *cudnnGetErrorString(cudnnStatus_t s) {
    return s == CUDNN_STATUS_SUCCESS     ? "CUDNN_STATUS_SUCCESS (emulated)"
           : s == CUDNN_STATUS_BAD_PARAM ? "CUDNN_STATUS_BAD_PARAM (emulated)"
           : s == CUDNN_STATUS_NOT_SUPPORTED ? "CUDNN_STATUS_NOT_SUPPORTED (emulated)"
                                             : "unknown cuDNN status (emulated)";
}
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return make(d, cudnnTensorStruct{0, 0, 0, 0, 0, 0}); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return unmake(d); }
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return make(d, cudnnFilterStruct{0, 0, 0, 0, 0, 0}); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return unmake(d); }
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    return make(d, cudnnConvolutionStruct{0, 0, 0, 0, 1, 1, 1, 1, 1, CUDNN_DEFAULT_MATH});
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return unmake(d); }

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c, int h, int w) {
    if (!emu_live(d) || n < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NHWC || type != CUDNN_DATA_FLOAT) not_emulated("a tensor other than NHWC f32");
    /* documented: NOT_SUPPORTED when the tensor's total size exceeds 2 Giga-elements (H200 run 6
     * refused the 4096 px stem's 2^31-element output so) */
    if ((long long)n * c * h * w > 2147483647LL) return CUDNN_STATUS_NOT_SUPPORTED;
    d->set = 1, d->n = n, d->c = c, d->h = h, d->w = w;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format, int k, int c, int h, int w) {
    if (!emu_live(d) || k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NHWC || type != CUDNN_DATA_FLOAT) not_emulated("a filter other than NHWC (KRSC) f32");
    if ((long long)k * c * h * w > 2147483647LL) return CUDNN_STATUS_NOT_SUPPORTED;
    d->set = 1, d->k = k, d->c = c, d->h = h, d->w = w;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v, int dil_h, int dil_w,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t compute) {
    if (!emu_live(d) || pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dil_h < 1 || dil_w < 1) return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT) not_emulated("a true convolution or a non-f32 compute type");
    d->set = 1, d->ph = pad_h, d->pw = pad_w, d->sh = u, d->sw = v, d->dh = dil_h, d->dw = dil_w;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
    if (!emu_live(d) || groups < 1) return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    if (!emu_live(d) || (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && m != CUDNN_FMA_MATH))
        return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, int *n,
                                                    int *c, int *h, int *wo) {
    if (!emu_live(d) || !emu_live(x) || !emu_live(w) || !d->set || !x->set || !w->set || w->c * d->groups != x->c) return CUDNN_STATUS_BAD_PARAM;
    *n = x->n, *c = w->k;
    *h = (x->h + 2 * d->ph - d->dh * (w->h - 1) - 1) / d->sh + 1;
    *wo = (x->w + 2 * d->pw - d->dw * (w->w - 1) - 1) / d->sw + 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                   cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t y, int requested, int *returned,
                                                   cudnnConvolutionFwdAlgoPerf_t *perf) {
    return list(h, x, w, d, y, 0, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t y, int requested, int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf) {
    return list(h, x, w, d, y, 0, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
                                                        cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t dx, int requested, int *returned,
                                                        cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    return list(h, dx, w, d, dy, 1, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
                                                          cudnnConvolutionDescriptor_t d, cudnnTensorDescriptor_t dx, int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    return list(h, dx, w, d, dy, 1, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
                                                          cudnnConvolutionDescriptor_t d, cudnnFilterDescriptor_t dw, int requested,
                                                          int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    return list(h, x, dw, d, dy, 2, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
                                                            cudnnConvolutionDescriptor_t d, cudnnFilterDescriptor_t dw, int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    return list(h, x, dw, d, dy, 2, requested, returned, perf);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd, const void *xv, cudnnFilterDescriptor_t wd,
                                      const void *wv, cudnnConvolutionDescriptor_t d, cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
                                      const void *beta, cudnnTensorDescriptor_t yd, void *yv) {
    problem p;
    bool r, nd, fl;
    cudnnStatus_t s = run_check(h, xd, wd, d, yd, algo, 0, ws, ws_bytes, alpha, beta, &p, &r, &nd, &fl);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    for (const void *q : {xv, wv, (const void *)yv}) emu_check_on_device(q, "cudnnConvolutionForward");
    const float *x = (const float *)xv, *w = (const float *)wv, a = *(const float *)alpha, b = *(const float *)beta;
    float *y = (float *)yv;
    int64_t Cig = p.Ci / p.G, Cog = p.Co / p.G;
    for (int64_t n = 0; n < p.N; n++)
        for (int64_t oy = 0; oy < p.Ho; oy++)
            for (int64_t ox = 0; ox < p.Wo; ox++)
                for (int64_t k = 0; k < p.Co; k++) {
                    int64_t g = k / Cog;
                    sum acc{nd};
                    for (int64_t i = 0; i < p.kh; i++)
                        for (int64_t j = 0; j < p.kw; j++) {
                            int64_t iy = oy * p.sh - p.ph + i * p.dh, ix = ox * p.sw - p.pw + j * p.dw;
                            if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) continue;
                            for (int64_t t = 0; t < Cig; t++) {
                                int64_t c = fl ? Cig - 1 - t : t;
                                acc.add((double)rd(x, XI(n, iy, ix, g * Cig + c), r) * rd(w, WI(k, i, j, c), r));
                            }
                        }
                    float v = (float)(a * acc.get());
                    y[YI(n, oy, ox, k)] = b != 0.0f ? v + b * y[YI(n, oy, ox, k)] : v;
                }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, cudnnFilterDescriptor_t wd, const void *wv,
                                           cudnnTensorDescriptor_t dyd, const void *dyv, cudnnConvolutionDescriptor_t d,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
                                           cudnnTensorDescriptor_t dxd, void *dxv) {
    problem p;
    bool r, nd, fl;
    cudnnStatus_t s = run_check(h, dxd, wd, d, dyd, algo, 1, ws, ws_bytes, alpha, beta, &p, &r, &nd, &fl);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    for (const void *q : {wv, dyv, (const void *)dxv}) emu_check_on_device(q, "cudnnConvolutionBackwardData");
    const float *dy = (const float *)dyv, *w = (const float *)wv, a = *(const float *)alpha, b = *(const float *)beta;
    float *dx = (float *)dxv;
    int64_t Cig = p.Ci / p.G, Cog = p.Co / p.G;
    for (int64_t n = 0; n < p.N; n++)
        for (int64_t iy = 0; iy < p.H; iy++)
            for (int64_t ix = 0; ix < p.W; ix++)
                for (int64_t ci = 0; ci < p.Ci; ci++) {
                    int64_t g = ci / Cig, c = ci % Cig;
                    sum acc{nd};
                    for (int64_t i = 0; i < p.kh; i++)
                        for (int64_t j = 0; j < p.kw; j++) {
                            int64_t ty = iy + p.ph - i * p.dh, tx = ix + p.pw - j * p.dw;
                            if (ty < 0 || tx < 0 || ty % p.sh || tx % p.sw) continue;
                            int64_t oy = ty / p.sh, ox = tx / p.sw;
                            if (oy >= p.Ho || ox >= p.Wo) continue;
                            for (int64_t t = 0; t < Cog; t++) {
                                int64_t k = g * Cog + (fl ? Cog - 1 - t : t);
                                acc.add((double)rd(dy, YI(n, oy, ox, k), r) * rd(w, WI(k, i, j, c), r));
                            }
                        }
                    float v = (float)(a * acc.get());
                    dx[XI(n, iy, ix, ci)] = b != 0.0f ? v + b * dx[XI(n, iy, ix, ci)] : v;
                }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd, const void *xv,
                                             cudnnTensorDescriptor_t dyd, const void *dyv, cudnnConvolutionDescriptor_t d,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
                                             cudnnFilterDescriptor_t dwd, void *dwv) {
    problem p;
    bool r, nd, fl;
    cudnnStatus_t s = run_check(h, xd, dwd, d, dyd, algo, 2, ws, ws_bytes, alpha, beta, &p, &r, &nd, &fl);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    for (const void *q : {xv, dyv, (const void *)dwv}) emu_check_on_device(q, "cudnnConvolutionBackwardFilter");
    const float *x = (const float *)xv, *dy = (const float *)dyv, a = *(const float *)alpha, b = *(const float *)beta;
    float *dw = (float *)dwv;
    int64_t Cig = p.Ci / p.G, Cog = p.Co / p.G;
    for (int64_t k = 0; k < p.Co; k++)
        for (int64_t i = 0; i < p.kh; i++)
            for (int64_t j = 0; j < p.kw; j++)
                for (int64_t c = 0; c < Cig; c++) {
                    int64_t g = k / Cog;
                    sum acc{nd};
                    for (int64_t n = 0; n < p.N; n++)
                        for (int64_t oy = 0; oy < p.Ho; oy++)
                            for (int64_t t = 0; t < p.Wo; t++) {
                                int64_t ox = fl ? p.Wo - 1 - t : t;
                                int64_t iy = oy * p.sh - p.ph + i * p.dh, ix = ox * p.sw - p.pw + j * p.dw;
                                if (iy < 0 || iy >= p.H || ix < 0 || ix >= p.W) continue;
                                acc.add((double)rd(dy, YI(n, oy, ox, k), r) * rd(x, XI(n, iy, ix, g * Cig + c), r));
                            }
                    float v = (float)(a * acc.get());
                    dw[WI(k, i, j, c)] = b != 0.0f ? v + b * dw[WI(k, i, j, c)] : v;
                }
    return CUDNN_STATUS_SUCCESS;
}
