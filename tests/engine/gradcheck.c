/* Gradient-check driver shared by the engine's gradient tests. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kt_test.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffffff) / 16777216.0f;
}

void kt_gc_fill(float *p, int64_t n, float lo, float hi, float min_abs, unsigned *seed) {
    for (int64_t i = 0; i < n; i++) {
        float v;
        do v = lo + (hi - lo) * frand(seed);
        while (fabsf(v) < min_abs);
        p[i] = v;
    }
}

void kt_gc_begin(kt_gc_case *c) {
    memset(c, 0, sizeof *c);
    kt_err err;
    kt_graph_init(&c->g, &err);
    c->lo = -1.0f;
    c->hi = 1.0f;
    c->seed = 12345u;
    c->eps = KT_GC_EPS;
}

void kt_gc_end(kt_gc_case *c) { kt_graph_free(&c->g); }

static double host_loss(kt_gc_case *c, kt_node *R) {
    kt_err err;
    if (kt_graph_forward(&c->g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "forward failed: %s", err.msg);
        return NAN;
    }
    const float *y = kt_node_f32(c->out), *r = kt_node_f32(R);
    double s = 0;
    for (int64_t i = 0; i < kt_node_numel(c->out); i++) s += (double)y[i] * r[i];
    return s;
}

int kt_gc_run(kt_gc_case *c, const char *label) {
    kt_err err;
    kt_graph *g = &c->g;
    if (kt_graph_status(g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: build failed: %s", label, err.msg);
        return 1;
    }
    kt_keep(c->out);
    kt_node *R = kt_input(g, "R", KT_F32, c->out->ndim, c->out->shape);
    kt_node *loss = kt_sum(g, kt_mul(g, c->out, R), 1.0f);
    if (kt_graph_backward(g, loss, &err) || kt_graph_plan(g, NULL, NULL, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: backward/plan failed: %s", label, err.msg);
        return 1;
    }
    unsigned seed = c->seed;
    /* fill every input and parameter (labels are filled by the caller after plan via hooks) */
    for (int i = 0; i < g->n_forward; i++) {
        kt_node *n = g->nodes[i];
        if ((n->op == KT_OP_INPUT || n->op == KT_OP_PARAM) && n->dtype == KT_F32 && n != R && !(n->flags & KT_NODE_BUFFER))
            kt_gc_fill(kt_node_f32(n), kt_node_numel(n), c->lo, c->hi, c->min_abs, &seed);
    }
    kt_gc_fill(kt_node_f32(R), kt_node_numel(R), -1.0f, 1.0f, 0.0f, &seed);
    /* caller-specific fills (labels, running stats) happen through the out->name hook below */
    for (int i = 0; i < g->n_forward; i++) {
        kt_node *n = g->nodes[i];
        if (n->dtype == KT_I32) {
            int32_t *lab = (int32_t *)n->data;
            int64_t classes = n->ip[0] > 0 ? n->ip[0] : 2;
            for (int64_t k = 0; k < kt_node_numel(n); k++) lab[k] = (int32_t)((k * 7 + 3) % classes);
        }
        if (n->op == KT_OP_PARAM && (n->flags & KT_NODE_BUFFER)) {
            float *p = kt_node_f32(n);
            int is_var = strstr(n->name, "var") != NULL;
            for (int64_t k = 0; k < kt_node_numel(n); k++) p[k] = is_var ? 0.5f + 0.1f * (float)(k % 5) : 0.1f * (float)(k % 3);
        }
    }
    if (kt_graph_run(g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: run failed: %s", label, err.msg);
        return 1;
    }
    int bad = 0;
    for (int w = 0; w < c->n_wrt; w++) {
        kt_node *p = c->wrt[w];
        if (!p->grad) {
            kt_test_fail(__FILE__, __LINE__, "%s: %s got no gradient", label, p->name);
            bad++;
            continue;
        }
        int64_t n = kt_node_numel(p);
        float *ana_buf = kt_node_f32(p->grad);
        /* copy the analytic gradient: forward runs below do not touch it, but be safe with in-place */
        float ana_copy[4096];
        int64_t check = n < 24 ? n : 24;
        int64_t idx[24];
        for (int64_t k = 0; k < check; k++) idx[k] = n <= 24 ? k : (int64_t)((k * 2654435761u) % (uint64_t)n);
        for (int64_t k = 0; k < check; k++) ana_copy[k] = ana_buf[idx[k]];
        float *x = kt_node_f32(p);
        for (int64_t k = 0; k < check; k++) {
            float old = x[idx[k]];
            x[idx[k]] = old + c->eps;
            double lp = host_loss(c, R);
            x[idx[k]] = old - c->eps;
            double lm = host_loss(c, R);
            x[idx[k]] = old;
            double num = (lp - lm) / (2.0 * c->eps), ana = ana_copy[k];
            double tol = KT_GC_ATOL + KT_GC_RTOL * fmax(fabs(num), fabs(ana));
            if (!(fabs(num - ana) <= tol)) {
                if (bad < 5)
                    kt_test_fail(__FILE__, __LINE__, "%s: d/d%s[%lld]: numeric %.6g vs analytic %.6g (tol %.3g)", label, p->name,
                                 (long long)idx[k], num, ana, tol);
                bad++;
            }
        }
    }
    return bad;
}
