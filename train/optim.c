/* AdamW over ranges of one buffer (decay / no decay) and clipping by global norm, through the
 * backend's sweeps so the same code drives CPU and CUDA memory. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kt_adamw_config_default(kt_adamw_config *c) {
    memset(c, 0, sizeof *c);
    c->lr = 3e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 1e-4f;
}

kt_status kt_adamw_config_validate(const kt_adamw_config *c, kt_err *err) {
    if (!(c->lr >= 0) || !isfinite(c->lr)) return kt_err_set(err, KT_ERR_ARG, "learning rate %g must be finite and >= 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) return kt_err_set(err, KT_ERR_ARG, "beta1 %g must be in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) return kt_err_set(err, KT_ERR_ARG, "beta2 %g must be in [0, 1)", c->beta2);
    if (!(c->eps > 0) || !isfinite(c->eps)) return kt_err_set(err, KT_ERR_ARG, "eps %g must be finite and > 0", c->eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return kt_err_set(err, KT_ERR_ARG, "weight decay %g must be finite and >= 0", c->weight_decay);
    if (!(c->clip_grad_norm >= 0) || !isfinite(c->clip_grad_norm))
        return kt_err_set(err, KT_ERR_ARG, "gradient clipping norm %g must be finite and >= 0 (0 = off)", c->clip_grad_norm);
    return KT_OK;
}

static int cmp_range(const void *a, const void *b) {
    int64_t x = ((const kt_adamw_range *)a)->offset, y = ((const kt_adamw_range *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Turns the exempt list into an ordered cover of [0, n) with merged neighbours. */
static kt_status build_ranges(kt_adamw *o, const kt_adamw_range *exempt, int n_exempt, kt_err *err) {
    kt_adamw_range *ex = NULL;
    int ne = o->c.no_decay ? n_exempt : 0;
    if (ne) {
        ex = malloc((size_t)ne * sizeof *ex);
        if (!ex) return kt_err_set(err, KT_ERR_NOMEM, "no memory for optimizer ranges");
        memcpy(ex, exempt, (size_t)ne * sizeof *ex);
        qsort(ex, (size_t)ne, sizeof *ex, cmp_range);
    }
    o->ranges = malloc((size_t)(2 * ne + 1) * sizeof *o->ranges);
    if (!o->ranges) {
        free(ex);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for optimizer ranges");
    }
    int64_t pos = 0;
    o->n_ranges = 0;
#define PUSH(off, cnt, dec)                                                                                   \
    do {                                                                                                      \
        if ((cnt) > 0) {                                                                                      \
            kt_adamw_range *last = o->n_ranges ? &o->ranges[o->n_ranges - 1] : NULL;                          \
            if (last && last->decay == (dec)) last->numel += (cnt);                                           \
            else o->ranges[o->n_ranges++] = (kt_adamw_range){.offset = (off), .numel = (cnt), .decay = (dec)}; \
        }                                                                                                     \
    } while (0)
    for (int i = 0; i < ne; i++) {
        if (ex[i].offset < pos || ex[i].numel < 0 || ex[i].offset + ex[i].numel > o->n) {
            kt_status s = kt_err_set(err, KT_ERR_ARG,
                                     "weight-decay exemption [%lld, %lld) overlaps another or lies outside the %lld parameters",
                                     (long long)ex[i].offset, (long long)(ex[i].offset + ex[i].numel), (long long)o->n);
            free(ex);
            return s;
        }
        PUSH(pos, ex[i].offset - pos, 1);
        PUSH(ex[i].offset, ex[i].numel, 0);
        pos = ex[i].offset + ex[i].numel;
    }
    PUSH(pos, o->n - pos, 1);
#undef PUSH
    free(ex);
    return KT_OK;
}

kt_status kt_adamw_init(kt_adamw *o, kt_backend *be, int64_t n, const kt_adamw_range *exempt, int n_exempt,
                        const kt_adamw_config *c, kt_err *err) {
    memset(o, 0, sizeof *o);
    kt_status s = kt_adamw_config_validate(c, err);
    if (s) return s;
    if (n < 0) return kt_err_set(err, KT_ERR_ARG, "optimizer over %lld elements", (long long)n);
    o->c = *c;
    o->be = be ? be : kt_backend_cpu();
    o->n = n;
    o->last_grad_norm = NAN;
    s = build_ranges(o, exempt, n_exempt, err);
    size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    if (!s) s = o->be->alloc(o->be, bytes, (void **)&o->m, err);
    if (!s) s = o->be->alloc(o->be, bytes, (void **)&o->v, err);
    if (!s) s = o->be->memzero(o->be, o->m, bytes, err);
    if (!s) s = o->be->memzero(o->be, o->v, bytes, err);
    if (s) {
        kt_err_prefix(err, "AdamW moments for %lld parameters: ", (long long)n);
        kt_adamw_free(o);
    }
    return s;
}

kt_status kt_adamw_init_graph(kt_adamw *o, const kt_graph *g, const kt_adamw_config *c, kt_err *err) {
    if (!g->planned) return kt_err_set(err, KT_ERR_STATE, "the optimizer needs a planned graph");
    kt_adamw_range *ex = malloc((size_t)(g->n_params + 1) * sizeof *ex);
    if (!ex) return kt_err_set(err, KT_ERR_NOMEM, "no memory for optimizer ranges");
    int ne = 0;
    for (int i = 0; i < g->n_params; i++) {
        const kt_param_entry *p = &g->params[i];
        if (p->node->flags & KT_NODE_BUFFER) continue; /* state, not trained: not in param_buf */
        if (p->node->flags & KT_NODE_NO_DECAY) ex[ne++] = (kt_adamw_range){.offset = p->offset, .numel = p->numel};
    }
    kt_status s = kt_adamw_init(o, g->backend, g->n_param_elems, ex, ne, c, err);
    free(ex);
    return s;
}

void kt_adamw_free(kt_adamw *o) {
    if (!o) return;
    if (o->be) {
        if (o->m) o->be->release(o->be, o->m);
        if (o->v) o->be->release(o->be, o->v);
    }
    free(o->ranges);
    memset(o, 0, sizeof *o);
}

kt_status kt_clip_grad_norm(kt_backend *be, float *g, int64_t n, double max_norm, double *total_norm, kt_err *err) {
    if (!be) be = kt_backend_cpu();
    if (!(max_norm > 0)) return kt_err_set(err, KT_ERR_ARG, "clip norm %g must be > 0", max_norm);
    double ss = 0;
    kt_status s = n ? be->sumsq(be, g, n, &ss, err) : KT_OK;
    if (s) return s;
    /* PyTorch keeps the norm in float32; round it the same way so coef matches */
    float total = (float)sqrt(ss);
    if (total_norm) *total_norm = total;
    if (!isfinite(total))
        return kt_err_set(err, KT_ERR_ARG, "gradient norm is %s: the loss diverged (try a lower --lr or --clip-grad)",
                          isnan(total) ? "NaN" : "infinite");
    float coef = (float)max_norm / (total + 1e-6f);
    if (coef < 1.0f && n) s = be->scale(be, g, n, coef, err);
    return s;
}

kt_status kt_adamw_step(kt_adamw *o, float *p, float *g, double lr, double beta1, kt_err *err) {
    if (!o->be) return kt_err_set(err, KT_ERR_STATE, "optimizer used before kt_adamw_init");
    if (lr < 0) lr = o->c.lr;
    if (beta1 < 0) beta1 = o->c.beta1;
    if (!isfinite(lr) || !(beta1 >= 0 && beta1 < 1))
        return kt_err_set(err, KT_ERR_ARG, "AdamW step with lr %g, beta1 %g", lr, beta1);
    kt_status s = KT_OK;
    if (o->c.clip_grad_norm > 0) {
        s = kt_clip_grad_norm(o->be, g, o->n, o->c.clip_grad_norm, &o->last_grad_norm, err);
        if (s) return s;
    }
    int64_t t = o->step + 1;
    for (int i = 0; i < o->n_ranges && !s; i++) {
        const kt_adamw_range *r = &o->ranges[i];
        s = o->be->adamw(o->be, p + r->offset, g + r->offset, o->m + r->offset, o->v + r->offset, r->numel, (float)lr,
                         (float)beta1, o->c.beta2, o->c.eps, r->decay ? o->c.weight_decay : 0.0f, t, err);
    }
    if (!s) o->step = t;
    return s;
}

kt_status kt_adamw_get_moments(const kt_adamw *o, float *m_host, float *v_host, kt_err *err) {
    size_t bytes = (size_t)o->n * sizeof(float);
    if (!bytes) return KT_OK;
    kt_status s = o->be->download(o->be, m_host, o->m, bytes, err);
    return s ? s : o->be->download(o->be, v_host, o->v, bytes, err);
}

kt_status kt_adamw_set_moments(kt_adamw *o, const float *m_host, const float *v_host, int64_t step, kt_err *err) {
    if (step < 0) return kt_err_set(err, KT_ERR_ARG, "optimizer step %lld < 0", (long long)step);
    size_t bytes = (size_t)o->n * sizeof(float);
    kt_status s = bytes ? o->be->upload(o->be, o->m, m_host, bytes, err) : KT_OK;
    if (!s && bytes) s = o->be->upload(o->be, o->v, v_host, bytes, err);
    if (!s) o->step = step;
    return s;
}
