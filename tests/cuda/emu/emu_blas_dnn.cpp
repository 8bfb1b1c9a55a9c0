// Stand-ins for kernels/cuda/conv_cudnn.cu under emulation: plain double-accumulated loops with the
// same NHWC semantics (cuDNN itself is not exercised; cuBLAS is emulated in emu_cublas.cpp).
#include <vector>
#include "kernels/cuda/kt_cuda_internal.cuh"

void kt_cuda_conv_plans_free(kt_cuda_ctx *c) { (void)c; }
extern "C" int kt_cuda_conv_plan(kt_cuda_ctx *c, int kind, const kt_conv_shape *s, size_t *scratch_bytes) {
    (void)c; (void)kind;
    *scratch_bytes = (size_t)(s->Co * (s->Ci / s->groups) * s->kh * s->kw) * 4 + 256;
    return 0;
}
#define X(n, y, x, ch) (((n) * s->H + (y)) * s->W + (x)) * s->Ci + (ch)
#define Y(n, y, x, ch) (((n) * s->Ho + (y)) * s->Wo + (x)) * s->Co + (ch)
#define WI(co, ci, ky, kx) (((co) * Cig + (ci)) * s->kh + (ky)) * s->kw + (kx)
extern "C" int kt_cuda_conv_fwd(kt_cuda_ctx *c, const kt_conv_shape *s, const float *x, const float *w, const float *b, float *y, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) for (int64_t co = 0; co < s->Co; co++) {
        int64_t g = co / Cog; double a = b ? b[co] : 0;
        for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            for (int64_t ci = 0; ci < Cig; ci++) a += (double)x[X(n, iy, ix, g * Cig + ci)] * w[WI(co, ci, ky, kx)];
        }
        y[Y(n, oy, ox, co)] = (float)a;
    }
    return 0;
}
extern "C" int kt_cuda_conv_bwd_data(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *w, float *dx, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t i = 0; i < s->N * s->H * s->W * s->Ci; i++) dx[i] = 0;
    std::vector<double> acc(s->N * s->H * s->W * s->Ci, 0.0);
    for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) for (int64_t co = 0; co < s->Co; co++) {
        int64_t g = co / Cog;
        for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            for (int64_t ci = 0; ci < Cig; ci++) acc[X(n, iy, ix, g * Cig + ci)] += (double)dy[Y(n, oy, ox, co)] * w[WI(co, ci, ky, kx)];
        }
    }
    for (size_t i = 0; i < acc.size(); i++) dx[i] = (float)acc[i];
    return 0;
}
extern "C" int kt_cuda_conv_bwd_weight(kt_cuda_ctx *c, const kt_conv_shape *s, const float *dy, const float *x, float *dw, void *, size_t) {
    (void)c;
    int64_t Cig = s->Ci / s->groups, Cog = s->Co / s->groups;
    for (int64_t co = 0; co < s->Co; co++) for (int64_t ci = 0; ci < Cig; ci++) for (int64_t ky = 0; ky < s->kh; ky++) for (int64_t kx = 0; kx < s->kw; kx++) {
        int64_t g = co / Cog; double a = 0;
        for (int64_t n = 0; n < s->N; n++) for (int64_t oy = 0; oy < s->Ho; oy++) for (int64_t ox = 0; ox < s->Wo; ox++) {
            int64_t iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
            a += (double)dy[Y(n, oy, ox, co)] * x[X(n, iy, ix, g * Cig + ci)];
        }
        dw[WI(co, ci, ky, kx)] = (float)a;
    }
    return 0;
}
