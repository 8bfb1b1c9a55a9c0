// Softmax and losses over rows of (N, C): one warp per row, log-sum-exp in double as the CPU kernels
// (kernels/cpu/loss.c); losses sum their rows in row order, so they are deterministic.
#include "kernels/cuda/kt_cuda_internal.cuh"

#define ROWS_PER_BLOCK 8

static unsigned row_blocks(int64_t rows) { return (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }

/* Row max (float) and sum of exp(x - max) (double) of one row, whole warp. */
__device__ __forceinline__ void row_lse(const float *xr, int64_t C, float *mx, double *sum) {
    int lane = threadIdx.x & 31;
    float m = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, xr[c]);
    m = kt_cu_warp_max(m);
    double s = 0;
    for (int64_t c = lane; c < C; c += 32) s += exp((double)xr[c] - m);
    *mx = m;
    *sum = kt_cu_warp_sum_d(s);
}

__global__ void k_softmax(float *y, const float *x, int64_t rows, int64_t C) {
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (r >= rows) return;
    const float *xr = x + r * C;
    float m;
    double s;
    row_lse(xr, C, &m, &s);
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) y[r * C + c] = (float)(exp((double)xr[c] - m) / s);
}

__global__ void k_softmax_bwd(float *dx, const float *dy, const float *y, int64_t rows, int64_t C) {
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (r >= rows) return;
    const float *dr = dy + r * C, *yr = y + r * C;
    double dot = 0;
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) dot += (double)dr[c] * yr[c];
    dot = kt_cu_warp_sum_d(dot);
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) dx[r * C + c] = (float)(yr[c] * (dr[c] - dot));
}

extern "C" int kt_cuda_softmax(kt_cuda_ctx *c, float *y, const float *x, int64_t rows, int64_t C) {
    k_softmax<<<row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(y, x, rows, C);
    return kt_cu_launched(c, "softmax");
}

extern "C" int kt_cuda_softmax_bwd(kt_cuda_ctx *c, float *dx, const float *dy, const float *y, int64_t rows, int64_t C) {
    k_softmax_bwd<<<row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(dx, dy, y, rows, C);
    return kt_cu_launched(c, "softmax backward");
}

/* ---- cross-entropy with label smoothing ---- */

/* scratch: per-row losses (N) doubles | bad row, bad label (2) int64 */
extern "C" size_t kt_cuda_softmax_ce_scratch(int64_t N) {
    return kt_cu_align((size_t)N * sizeof(double)) + kt_cu_align(2 * sizeof(int64_t));
}

/* loss_r = (1-s) (lse - x[y]) + s (lse - mean_c x[c]); rows with a bad label get NaN */
__global__ void k_ce_rows(double *row_loss, const float *logits, const int32_t *labels, int64_t N, int64_t C, float smoothing) {
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (r >= N) return;
    const float *xr = logits + r * C;
    float m;
    double s;
    row_lse(xr, C, &m, &s);
    double sx = 0;
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) sx += xr[c];
    sx = kt_cu_warp_sum_d(sx);
    if ((threadIdx.x & 31) == 0) {
        int32_t y = labels[r];
        double lse = m + log(s);
        row_loss[r] = (y < 0 || y >= C) ? NAN : (1.0 - smoothing) * (lse - xr[y]) + smoothing * (lse - sx / (double)C);
    }
}

/* one thread: the row-ordered mean, and the first bad label */
__global__ void k_ce_total(float *loss, const double *row_loss, const int32_t *labels, int64_t N, int64_t C, int64_t *bad) {
    if (blockIdx.x || threadIdx.x) return;
    double t = 0;
    bad[0] = -1;
    bad[1] = 0;
    for (int64_t r = 0; r < N; r++) {
        if (bad[0] < 0 && (labels[r] < 0 || labels[r] >= C)) {
            bad[0] = r;
            bad[1] = labels[r];
        }
        t += row_loss[r];
    }
    loss[0] = (float)(t / (double)N);
}

extern "C" int kt_cuda_softmax_ce(kt_cuda_ctx *c, float *loss, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                                  float smoothing, void *scratch, int64_t *bad_row, int32_t *bad_label) {
    double *rows = (double *)scratch;
    int64_t *bad = (int64_t *)((char *)scratch + kt_cu_align((size_t)N * sizeof(double)));
    *bad_row = -1;
    *bad_label = 0;
    k_ce_rows<<<row_blocks(N), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(rows, logits, labels, N, C, smoothing);
    if (kt_cu_launched(c, "softmax cross-entropy (rows)")) return 1;
    k_ce_total<<<1, 1, 0, c->stream>>>(loss, rows, labels, N, C, bad);
    if (kt_cu_launched(c, "softmax cross-entropy (total)")) return 1;
    /* the CPU backend refuses bad labels; so do we, at the cost of one small wait per loss */
    int64_t h[2];
    if (kt_cu_check(c, cudaMemcpy(h, bad, sizeof h, cudaMemcpyDeviceToHost), "reading the label check")) return 1;
    *bad_row = h[0];
    *bad_label = (int32_t)h[1];
    return 0;
}

__global__ void k_ce_bwd(float *dlogits, const float *dloss, const float *logits, const int32_t *labels, int64_t N, int64_t C,
                         float smoothing) {
    int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (r >= N) return;
    const float *xr = logits + r * C;
    float m;
    double s;
    row_lse(xr, C, &m, &s);
    double g = (double)dloss[0] / (double)N;
    int32_t y = labels[r];
    for (int64_t c = threadIdx.x & 31; c < C; c += 32) {
        double p = exp((double)xr[c] - m) / s;
        double t = smoothing / (double)C + (c == y ? 1.0 - smoothing : 0.0);
        dlogits[r * C + c] = (float)(g * (p - t));
    }
}

extern "C" int kt_cuda_softmax_ce_bwd(kt_cuda_ctx *c, float *dlogits, const float *dloss, const float *logits,
                                      const int32_t *labels, int64_t N, int64_t C, float smoothing) {
    k_ce_bwd<<<row_blocks(N), 32 * ROWS_PER_BLOCK, 0, c->stream>>>(dlogits, dloss, logits, labels, N, C, smoothing);
    return kt_cu_launched(c, "softmax cross-entropy backward");
}

/* ---- binary cross-entropy with logits ---- */

extern "C" int kt_cuda_bce_logits(kt_cuda_ctx *c, float *loss, const float *logits, const float *targets, int64_t n,
                                  void *scratch) {
    return kt_cu_bce_sum(c, loss, logits, targets, n, (double *)scratch);
}

__global__ void k_bce_bwd(float *dlogits, const float *dloss, const float *logits, const float *targets, int64_t n) {
    double g = (double)dloss[0] / (double)n;
    KT_CU_LOOP(i, n) {
        double x = logits[i];
        double s = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
        dlogits[i] = (float)(g * (s - targets[i]));
    }
}

extern "C" int kt_cuda_bce_logits_bwd(kt_cuda_ctx *c, float *dlogits, const float *dloss, const float *logits,
                                      const float *targets, int64_t n) {
    k_bce_bwd<<<kt_cu_blocks(n, KT_CU_THREADS), KT_CU_THREADS, 0, c->stream>>>(dlogits, dloss, logits, targets, n);
    return kt_cu_launched(c, "binary cross-entropy backward");
}
