/* The CPU backend: maps each op to its kernel in kernels/cpu/. */
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "engine/backend.h"
#include "engine/node_geometry.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/dwconv.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fused.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/shape.h"

uint64_t kt_dropout_key(const kt_graph *g, int node_id) {
    return kt_hash_u64(g->seed ^ 0x64726f70ull, g->step * 1000003ull + (uint64_t)node_id);
}

static float *F(const kt_node *n) { return (float *)n->data; }







static int cpu_supports(const kt_backend *be, const kt_node *n) {
    (void)be;
    return n->op > KT_OP_NONE && n->op < KT_OP_COUNT;
}

static size_t cpu_scratch(const kt_backend *be, const kt_node *n) {
    (void)be;
    if (n->fuse_next || n->fuse_colsum) { /* the fused kernels' column-sum partials */
        int64_t C = n->shape[n->ndim - 1];
        return kt_cpu_colsum_scratch(kt_node_rows(n), n->op == KT_OP_LAYERNORM_BWD_X ? 3 * C : (n->op == KT_OP_MUL ? 2 * C : C));
    }
    switch (n->op) {
    case KT_OP_CONV2D:
    case KT_OP_CONV2D_BWD_DATA: {
        kt_conv_shape s = kt_node_conv_geom(n);
        return kt_conv_is_depthwise(&s) ? kt_cpu_dwconv_scratch(&s) : kt_cpu_conv2d_scratch(&s);
    }
    case KT_OP_CONV2D_BWD_WEIGHT: {
        kt_conv_shape s = kt_node_conv_geom(n);
        return kt_conv_is_depthwise(&s) ? kt_cpu_dwconv_bwd_weight_scratch(&s) : kt_cpu_conv2d_scratch(&s);
    }
    case KT_OP_REDUCE_ROWS:
    case KT_OP_MUL_BCAST_BWD:
        return kt_cpu_reduce_rows_scratch(kt_node_rows(n->src[0]), n->src[0]->shape[n->src[0]->ndim - 1]);
    case KT_OP_LAYERNORM_BWD_WB:
        return kt_cpu_layernorm_bwd_wb_scratch(kt_node_rows(n->src[1]), n->shape[1]);
    case KT_OP_BATCHNORM:
    case KT_OP_BATCHNORM_BWD_X:
    case KT_OP_BATCHNORM_BWD_WB: {
        const kt_node *x = n->op == KT_OP_BATCHNORM ? n->src[0] : n->src[1];
        return kt_cpu_batchnorm_scratch(kt_node_rows(x), x->shape[x->ndim - 1]);
    }
    default: return 0;
    }
}

static kt_status cpu_alloc(kt_backend *be, size_t bytes, void **ptr, kt_err *err) {
    (void)be;
    *ptr = NULL;
    if (posix_memalign(ptr, 64, bytes ? bytes : 64) != 0)
        return kt_err_set(err, KT_ERR_NOMEM, "cannot allocate %.1f MiB on the host", (double)bytes / 1048576.0);
    return KT_OK;
}

static void cpu_release(kt_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static kt_status cpu_copy(kt_backend *be, void *dst, const void *src, size_t bytes, kt_err *err) {
    (void)be;
    (void)err;
    if (bytes && dst != src) memcpy(dst, src, bytes);
    return KT_OK;
}

static kt_status cpu_memzero(kt_backend *be, void *dst, size_t bytes, kt_err *err) {
    (void)be;
    (void)err;
    memset(dst, 0, bytes);
    return KT_OK;
}

static kt_status cpu_sync(kt_backend *be, kt_err *err) {
    (void)be;
    (void)err;
    return KT_OK;
}

static kt_status cpu_compute(kt_backend *be, const kt_graph *g, kt_node *n, kt_err *err) {
    (void)be;
    kt_node **s = n->src;
    int64_t numel = kt_node_numel(n);
    switch (n->op) {
    case KT_OP_CONV2D: {
        kt_conv_shape cs = kt_node_conv_geom(n);
        const float *b = n->n_src > 2 ? F(s[2]) : NULL;
        if (kt_conv_is_depthwise(&cs)) kt_cpu_dwconv_fwd(&cs, F(s[0]), F(s[1]), b, F(n), n->scratch);
        else kt_cpu_conv2d_fwd(&cs, F(s[0]), F(s[1]), b, F(n), n->scratch);
        break;
    }
    case KT_OP_CONV2D_BWD_DATA: {
        kt_conv_shape cs = kt_node_conv_geom(n);
        if (kt_conv_is_depthwise(&cs)) kt_cpu_dwconv_bwd_data(&cs, F(s[0]), F(s[1]), F(n), n->scratch);
        else kt_cpu_conv2d_bwd_data(&cs, F(s[0]), F(s[1]), F(n), n->scratch);
        break;
    }
    case KT_OP_CONV2D_BWD_WEIGHT: {
        kt_conv_shape cs = kt_node_conv_geom(n);
        if (kt_conv_is_depthwise(&cs)) kt_cpu_dwconv_bwd_weight(&cs, F(s[0]), F(s[1]), F(n), n->scratch);
        else kt_cpu_conv2d_bwd_weight(&cs, F(s[0]), F(s[1]), F(n), n->scratch);
        break;
    }
    case KT_OP_LINEAR: {
        int64_t K = s[1]->shape[1], O = s[1]->shape[0], M = kt_node_numel(s[0]) / K;
        float beta = 0.0f;
        if (n->fuse_next) { /* GEMM, then bias + GELU in one pass writing both outputs */
            kt_cpu_gemm(0, 1, M, O, K, 1.0f, F(s[0]), K, F(s[1]), K, 0.0f, F(n), O);
            if (n->flags & KT_NODE_OUT_SCRATCH) /* inference: nobody reads z + b again, so it is not written back */
                kt_cpu_bias_gelu_out(F(n), F(n->fuse_next), n->n_src > 2 ? F(s[2]) : NULL, M, O);
            else kt_cpu_bias_gelu(F(n), F(n->fuse_next), n->n_src > 2 ? F(s[2]) : NULL, M, O);
            break;
        }
        if (n->n_src > 2) {
            const float *b = F(s[2]);
            float *y = F(n);
#pragma omp parallel for schedule(static) if (M * O > 65536)
            for (int64_t r = 0; r < M; r++) memcpy(y + r * O, b, (size_t)O * sizeof(float));
            beta = 1.0f;
        }
        kt_cpu_gemm(0, 1, M, O, K, 1.0f, F(s[0]), K, F(s[1]), K, beta, F(n), O);
        break;
    }
    case KT_OP_MATMUL: {
        int ta = n->ip[0], tb = n->ip[1], o = n->ndim - 2;
        int64_t M = n->shape[o], N = n->shape[o + 1];
        int64_t K = ta ? s[0]->shape[o] : s[0]->shape[o + 1];
        int64_t batch = o ? n->shape[0] : 1;
        kt_cpu_gemm_batched(ta, tb, batch, M, N, K, F(s[0]), F(s[1]), F(n));
        break;
    }
    case KT_OP_LAYERNORM:
        kt_cpu_layernorm_fwd(F(n), F(s[0]), n->n_src > 1 ? F(s[1]) : NULL, n->n_src > 1 ? F(s[2]) : NULL, kt_node_rows(n),
                             n->shape[n->ndim - 1], n->fp[0]);
        break;
    case KT_OP_LAYERNORM_BWD_X:
        if (n->fuse_next || n->fuse_colsum) {
            kt_cpu_layernorm_bwd_fused(F(n), n->fuse_next ? F(n->fuse_next) : NULL, n->fuse_colsum ? F(n->fuse_colsum) : NULL,
                                       F(s[0]), F(s[1]), n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), n->shape[n->ndim - 1],
                                       n->fp[0], n->scratch);
            break;
        }
        kt_cpu_layernorm_bwd_x(F(n), F(s[0]), F(s[1]), n->n_src > 2 ? F(s[2]) : NULL, kt_node_rows(n), n->shape[n->ndim - 1],
                               n->fp[0]);
        break;
    case KT_OP_LAYERNORM_BWD_WB:
        kt_cpu_layernorm_bwd_wb(F(n), F(s[0]), F(s[1]), kt_node_rows(s[1]), n->shape[1], n->fp[0], n->scratch);
        break;
    case KT_OP_BATCHNORM:
        kt_cpu_batchnorm_fwd(F(n), F(s[0]), F(s[1]), F(s[2]), F(s[3]), F(s[4]), kt_node_rows(n), n->shape[n->ndim - 1], n->fp[0],
                             n->fp[1], g->training, n->scratch);
        break;
    case KT_OP_BATCHNORM_BWD_X:
        kt_cpu_batchnorm_bwd_x(F(n), F(s[0]), F(s[1]), F(s[2]), F(s[4]), kt_node_rows(n), n->shape[n->ndim - 1], n->fp[0],
                               g->training, n->scratch);
        break;
    case KT_OP_BATCHNORM_BWD_WB:
        kt_cpu_batchnorm_bwd_wb(F(n), F(s[0]), F(s[1]), F(s[2]), F(s[3]), kt_node_rows(s[1]), n->shape[1], n->fp[0], g->training,
                                n->scratch);
        break;
    case KT_OP_GELU:
    case KT_OP_RELU:
    case KT_OP_SILU:
    case KT_OP_SIGMOID:
        kt_cpu_act_fwd(kt_node_act(n->op), F(n), F(s[0]), numel);
        break;
    case KT_OP_ACT_BWD:
        if (n->fuse_colsum)
            kt_cpu_act_bwd_colsum(kt_node_act(n->ip[0]), F(n), F(s[0]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1],
                                  F(n->fuse_colsum), n->scratch);
        else kt_cpu_act_bwd(kt_node_act(n->ip[0]), F(n), F(s[0]), F(s[1]), numel);
        break;
    case KT_OP_ADD:
        kt_cpu_add(F(n), F(s[0]), F(s[1]), numel);
        break;
    case KT_OP_MUL:
        if (n->fuse_next) { /* backward of a * gamma: da and dgamma (and the bias sum of da) in one pass */
            kt_cpu_mul_bcast_bwd_both(F(n), F(n->fuse_next), n->fuse_colsum ? F(n->fuse_colsum) : NULL, F(s[0]),
                                      F(n->fuse_next->src[1]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1], n->scratch);
            break;
        }
        if (n->fuse_colsum) {
            kt_cpu_mul_bcast_colsum(F(n), F(s[0]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1], F(n->fuse_colsum), n->scratch);
            break;
        }
        if (kt_node_numel(s[1]) == numel) kt_cpu_mul(F(n), F(s[0]), F(s[1]), numel);
        else kt_cpu_mul_bcast(F(n), F(s[0]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1]);
        break;
    case KT_OP_MUL_BCAST_BWD:
        kt_cpu_mul_bcast_bwd(F(n), F(s[0]), F(s[1]), kt_node_rows(s[0]), n->shape[0], n->scratch);
        break;
    case KT_OP_SCALE:
        kt_cpu_scale(F(n), F(s[0]), n->fp[0], numel);
        break;
    case KT_OP_BIAS:
        kt_cpu_bias(F(n), F(s[0]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1]);
        break;
    case KT_OP_REDUCE_ROWS:
        kt_cpu_reduce_rows(F(n), F(s[0]), kt_node_rows(s[0]), n->shape[0], n->scratch);
        break;
    case KT_OP_AVGPOOL2D: {
        kt_pool_shape ps = kt_node_pool_geom(n, s[0]);
        kt_cpu_avgpool_fwd(&ps, F(s[0]), F(n));
        break;
    }
    case KT_OP_AVGPOOL2D_BWD: {
        kt_pool_shape ps = kt_node_pool_geom(n, n);
        kt_cpu_avgpool_bwd(&ps, F(s[0]), F(n));
        break;
    }
    case KT_OP_MAXPOOL2D: {
        kt_pool_shape ps = kt_node_pool_geom(n, s[0]);
        kt_cpu_maxpool_fwd(&ps, F(s[0]), F(n));
        break;
    }
    case KT_OP_MAXPOOL2D_BWD: {
        kt_pool_shape ps = kt_node_pool_geom(n, n);
        kt_cpu_maxpool_bwd(&ps, F(s[0]), F(s[1]), F(n));
        break;
    }
    case KT_OP_GLOBAL_AVGPOOL:
        kt_cpu_gap_fwd(F(s[0]), F(n), s[0]->shape[0], s[0]->shape[1] * s[0]->shape[2], s[0]->shape[3]);
        break;
    case KT_OP_GLOBAL_AVGPOOL_BWD:
        kt_cpu_gap_bwd(F(s[0]), F(n), n->shape[0], n->shape[1] * n->shape[2], n->shape[3]);
        break;
    case KT_OP_DROPOUT:
    case KT_OP_DROPOUT_BWD: {
        int fwd_id = n->op == KT_OP_DROPOUT ? n->id : n->ip[0];
        if (!g->training || n->fp[0] == 0.0f) kt_cpu_copy(F(n), F(s[0]), numel);
        else kt_cpu_dropout(F(n), F(s[0]), numel, n->fp[0], kt_dropout_key(g, fwd_id));
        break;
    }
    case KT_OP_DROP_PATH:
    case KT_OP_DROP_PATH_BWD: {
        int fwd_id = n->op == KT_OP_DROP_PATH ? n->id : n->ip[0];
        if (!g->training || n->fp[0] == 0.0f) kt_cpu_copy(F(n), F(s[0]), numel);
        else kt_cpu_drop_path(F(n), F(s[0]), n->shape[0], numel / n->shape[0], n->fp[0], kt_dropout_key(g, fwd_id));
        break;
    }
    case KT_OP_SOFTMAX:
        kt_cpu_softmax(F(n), F(s[0]), kt_node_rows(n), n->shape[n->ndim - 1]);
        break;
    case KT_OP_SOFTMAX_BWD:
        kt_cpu_softmax_bwd(F(n), F(s[0]), F(s[1]), kt_node_rows(n), n->shape[n->ndim - 1]);
        break;
    case KT_OP_SOFTMAX_CE: {
        int64_t bad = kt_cpu_softmax_ce(F(n), F(s[0]), (const int32_t *)s[1]->data, s[0]->shape[0], s[0]->shape[1], n->fp[0]);
        if (bad >= 0)
            return kt_err_set(err, KT_ERR_ARG, "label %d of row %lld is outside the %lld classes of %s",
                              ((const int32_t *)s[1]->data)[bad], (long long)bad, (long long)s[0]->shape[1], s[1]->name);
        break;
    }
    case KT_OP_SOFTMAX_CE_BWD:
        kt_cpu_softmax_ce_bwd(F(n), F(s[0]), F(s[1]), (const int32_t *)s[2]->data, n->shape[0], n->shape[1], n->fp[0]);
        break;
    case KT_OP_BCE_LOGITS:
        kt_cpu_bce_logits(F(n), F(s[0]), F(s[1]), kt_node_numel(s[0]));
        break;
    case KT_OP_BCE_LOGITS_BWD:
        kt_cpu_bce_logits_bwd(F(n), F(s[0]), F(s[1]), F(s[2]), numel);
        break;
    case KT_OP_SUM:
        kt_cpu_sum(F(n), F(s[0]), kt_node_numel(s[0]), n->fp[0]);
        break;
    case KT_OP_SUM_BWD:
        kt_cpu_fill_scaled(F(n), F(s[0]), numel, n->fp[0]);
        break;
    case KT_OP_PERMUTE: {
        int perm[KT_MAX_DIMS];
        for (int i = 0; i < n->ndim; i++) perm[i] = n->ip[i];
        kt_cpu_permute(n->data, s[0]->data, s[0]->ndim, s[0]->shape, perm, (int)kt_dtype_size(n->dtype));
        break;
    }
    case KT_OP_CONCAT: {
        const float *xs[KT_MAX_SRC];
        int64_t lens[KT_MAX_SRC], outer, inner;
        kt_node_around_axis(n, n->ip[0], &outer, &inner);
        for (int i = 0; i < n->n_src; i++) {
            xs[i] = F(s[i]);
            lens[i] = s[i]->shape[n->ip[0]];
        }
        kt_cpu_concat(F(n), xs, lens, n->n_src, outer, inner);
        break;
    }
    case KT_OP_SLICE: {
        int64_t outer, inner;
        kt_node_around_axis(s[0], n->ip[0], &outer, &inner);
        kt_cpu_slice(F(n), F(s[0]), outer, s[0]->shape[n->ip[0]], n->ip[1], n->ip[2], inner);
        break;
    }
    case KT_OP_SLICE_BWD: {
        int64_t outer, inner;
        kt_node_around_axis(n, n->ip[0], &outer, &inner);
        kt_cpu_slice_bwd(F(n), F(s[0]), outer, n->shape[n->ip[0]], n->ip[1], n->ip[2], inner);
        break;
    }
    case KT_OP_COPY:
        memcpy(n->data, s[0]->data, kt_node_bytes(n));
        break;
    default:
        return kt_err_set(err, KT_ERR_UNSUPPORTED, "cpu backend: no kernel for op %s", kt_op_name(n->op));
    }
    return KT_OK;
}

static kt_status cpu_adamw(kt_backend *be, float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                           float beta2, float eps, float wd, int64_t step, kt_err *err) {
    (void)be;
    (void)err;
    kt_adamw_hp hp = {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = wd, .step = step};
    kt_cpu_adamw(p, g, m, v, n, &hp);
    return KT_OK;
}

static kt_status cpu_sumsq(kt_backend *be, const float *x, int64_t n, double *out, kt_err *err) {
    (void)be;
    (void)err;
    *out = kt_cpu_sumsq(x, n);
    return KT_OK;
}

static kt_status cpu_scale(kt_backend *be, float *x, int64_t n, float s, kt_err *err) {
    (void)be;
    (void)err;
    kt_cpu_scale(x, x, s, n);
    return KT_OK;
}

/* A linear computing its GELU whose own output the GELU alone reads (inference) keeps its
 * pre-activation as GEMM scratch (KT_NODE_OUT_SCRATCH): bias + GELU then skip writing z + b back,
 * 77 MB a layer at convnext_tiny's first stage, batch 16. */
static void cpu_prepare(kt_backend *be, kt_graph *g) {
    (void)be;
    for (int i = 0; i < g->n_nodes; i++) {
        kt_node *n = g->nodes[i];
        if (n->op == KT_OP_LINEAR && n->fuse_next && n->fuse_next->op == KT_OP_GELU &&
            !(n->flags & (KT_NODE_KEEP | KT_NODE_KEEP_GRAD)) && kt_node_read_only_by(g, n, n->fuse_next))
            n->flags |= KT_NODE_OUT_SCRATCH;
    }
}

static kt_backend cpu_backend = {
    .name = "cpu",
    .device = KT_CPU,
    .fusions = KT_FUSE_LINEAR_GELU | KT_FUSE_LAYERNORM_BWD | KT_FUSE_LAYERSCALE_BWD | KT_FUSE_ACT_BWD_COLSUM | KT_FUSE_OTHER_COLSUM |
               KT_FUSE_SCALE_COLSUM,
    .supports = cpu_supports,
    .prepare = cpu_prepare,
    .scratch_bytes = cpu_scratch,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .memzero = cpu_memzero,
    .compute = cpu_compute,
    .adamw = cpu_adamw,
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .sync = cpu_sync,
    .destroy = NULL,
    .ctx = NULL,
};

kt_backend *kt_backend_cpu(void) { return &cpu_backend; }
