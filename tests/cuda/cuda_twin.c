/* Twin graphs on the CPU and CUDA backends (see cuda_twin.h). */
#include "cuda_twin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend_cuda.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

static kt_backend *the_backend;

static void drop_backend(void) {
    if (the_backend) the_backend->destroy(the_backend);
    the_backend = NULL;
}

kt_backend *kt_twin_backend(void) {
    if (the_backend) return the_backend;
#ifdef KT_HAVE_CUDA
    if (!kt_backend_cuda_available()) {
        kt_cuda_info ci;
        kt_cuda_query(&ci);
        kt_test_skip("no CUDA device: %s", ci.error[0] ? ci.error : "none found");
    }
#endif
    kt_err err;
    kt_status s = kt_backend_cuda_create(&the_backend, 0, &err);
    if (s == KT_ERR_UNSUPPORTED) kt_test_skip("no CUDA device: this build has no CUDA backend (%s)", err.msg);
    if (s) kt_test_skip("no CUDA device: %s", err.msg);
    atexit(drop_backend);
    return the_backend;
}

#ifdef KT_HAVE_CUDA
static kt_cuda_ctx *the_ctx;

static void drop_ctx(void) {
    kt_cuda_ctx_destroy(the_ctx);
    the_ctx = NULL;
}

kt_cuda_ctx *kt_twin_ctx(void) {
    if (the_ctx) return the_ctx;
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    if (!ci.device_count) kt_test_skip("no CUDA device: %s", ci.error[0] ? ci.error : "none found");
    char msg[512];
    if (kt_cuda_ctx_create(&the_ctx, 0, msg, sizeof msg)) kt_test_skip("no CUDA device: %s", msg);
    atexit(drop_ctx);
    return the_ctx;
}

void *kt_twin_put(const void *h, size_t bytes) {
    void *d = NULL;
    char msg[256];
    if (kt_cuda_malloc(&d, bytes, msg, sizeof msg) ||
        (h ? kt_cuda_memcpy_h2d(d, h, bytes, msg, sizeof msg) : kt_cuda_memset(d, 0xff, bytes, msg, sizeof msg))) {
        kt_test_fail(__FILE__, __LINE__, "device buffer: %s", msg);
        kt_cuda_free(d);
        return NULL;
    }
    return d;
}

int kt_twin_get(void *h, const void *d, size_t bytes) {
    char msg[256];
    if (kt_cuda_sync(msg, sizeof msg) || kt_cuda_memcpy_d2h(h, d, bytes, msg, sizeof msg)) {
        kt_test_fail(__FILE__, __LINE__, "reading back: %s", msg);
        return 1;
    }
    return 0;
}

int kt_twin_gpus(kt_cuda_info *ci) {
    kt_cuda_query(ci);
    if (strcmp(ci->name, "host emulator")) return 0;
    if (setenv("KT_EMU_DEVICES", "2", 1)) kt_test_skip("setenv KT_EMU_DEVICES failed");
    kt_cuda_query(ci);
    return 1;
}

void kt_twin_gpus_done(int emulated) {
    if (emulated) unsetenv("KT_EMU_DEVICES");
}
#endif

void kt_twin_fill(float *p, int64_t n, float lo, float hi, float min_abs, unsigned *seed) {
    for (int64_t i = 0; i < n; i++) {
        float v;
        do {
            *seed = *seed * 1664525u + 1013904223u;
            v = lo + (hi - lo) * ((float)((*seed >> 8) & 0xffffff) / 16777216.0f);
        } while (fabsf(v) < min_abs);
        p[i] = v;
    }
}

double kt_twin_rel_err(const float *got, const float *ref, int64_t n) {
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(ref[i]) || isinf(got[i]) != isinf(ref[i])) return INFINITY;
        worst = fmax(worst, fabs((double)got[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return worst / (scale > 0 ? scale : 1e-30);
}

typedef struct side {
    kt_graph g;
    kt_node *out, *R, *loss;
} side;

static int build_side(side *s, kt_twin_build_fn build, void *arg, const kt_twin_opts *o, kt_backend *be, kt_err *err) {
    if (kt_graph_init(&s->g, err)) return 1;
    s->g.training = o->training;
    s->out = build(&s->g, arg);
    if (kt_graph_status(&s->g, err)) return 1;
    kt_keep(s->out);
    s->R = kt_input(&s->g, "R", KT_F32, s->out->ndim, s->out->shape);
    s->loss = kt_sum(&s->g, kt_mul(&s->g, s->out, s->R), 1.0f);
    kt_keep(s->loss);
    if (kt_graph_status(&s->g, err)) return 1;
    if ((s->loss->flags & KT_NODE_REQUIRES_GRAD) && kt_graph_backward(&s->g, s->loss, err)) return 1;
    return kt_graph_plan(&s->g, be, NULL, err) != KT_OK;
}

/* Host values of leaf node i: the same for both twins. */
static void leaf_values(const kt_node *n, const kt_node *R, const kt_twin_opts *o, void *buf) {
    int64_t k = kt_node_numel(n);
    unsigned seed = o->seed + 7919u * (unsigned)n->id + 1u;
    if (n->dtype == KT_I32) {
        int64_t classes = n->ip[0] > 0 ? n->ip[0] : 2;
        for (int64_t i = 0; i < k; i++) ((int32_t *)buf)[i] = (int32_t)((i * 7 + 3) % classes);
    } else if (n->op == KT_OP_PARAM && (n->flags & KT_NODE_BUFFER)) {
        int is_var = strstr(n->name, "var") != NULL;
        for (int64_t i = 0; i < k; i++) ((float *)buf)[i] = is_var ? 0.5f + 0.1f * (float)(i % 5) : 0.1f * (float)(i % 3);
    } else if (n == R) {
        kt_twin_fill(buf, k, -1.0f, 1.0f, 0.0f, &seed);
    } else {
        kt_twin_fill(buf, k, o->lo, o->hi, o->min_abs, &seed);
    }
}

int kt_twin_poison(kt_graph *g, kt_err *err) {
#ifdef KT_HAVE_CUDA
    char msg[256];
    size_t gb = g->grad_buf ? (size_t)g->n_param_elems * sizeof(float) : 0;
    if (kt_cuda_memset(g->arena, 0xff, g->arena_bytes, msg, sizeof msg) || (gb && kt_cuda_memset(g->grad_buf, 0xff, gb, msg, sizeof msg)) ||
        kt_cuda_memset(g->inputs_buf, 0xff, g->inputs_bytes, msg, sizeof msg)) {
        kt_err_set(err, KT_ERR_CUDA, "poisoning: %s", msg);
        return 1;
    }
    if (g->loss_grad) {
        float one = 1.0f;
        if (g->backend->upload(g->backend, g->loss_grad->data, &one, sizeof one, err)) return 1;
    }
    return 0;
#else
    (void)g;
    return kt_err_set(err, KT_ERR_UNSUPPORTED, "no CUDA in this build") != KT_OK;
#endif
}

static int feed(side *cpu, side *gpu, const kt_twin_opts *o, kt_err *err) {
    kt_backend *be = gpu->g.backend;
    for (int i = 0; i < cpu->g.n_forward; i++) {
        kt_node *c = cpu->g.nodes[i], *d = gpu->g.nodes[i];
        if (c->op != KT_OP_INPUT && c->op != KT_OP_PARAM) continue;
        leaf_values(c, cpu->R, o, c->data);
        if (be->upload(be, d->data, c->data, kt_node_bytes(c), err)) return 1;
    }
    if (gpu->g.loss_grad) {
        float one = 1.0f;
        if (be->upload(be, gpu->g.loss_grad->data, &one, sizeof one, err)) return 1;
    }
    return 0;
}

typedef struct tensor_pair {
    const char *name;
    const kt_node *cpu, *gpu;
    const float *cpu_data;
    const float *gpu_data; /* device */
    int64_t n;
} tensor_pair;

/* Tensors compared: out, loss, each parameter gradient, each state buffer. */
static int list_tensors(side *cpu, side *gpu, tensor_pair *t, int cap) {
    int k = 0;
    t[k++] = (tensor_pair){"output", cpu->out, gpu->out, cpu->out->data, gpu->out->data, kt_node_numel(cpu->out)};
    t[k++] = (tensor_pair){"loss", cpu->loss, gpu->loss, cpu->loss->data, gpu->loss->data, 1};
    for (int p = 0; p < cpu->g.n_params && k < cap; p++) {
        kt_node *cn = cpu->g.params[p].node, *gn = gpu->g.params[p].node;
        if (cn->flags & KT_NODE_BUFFER) t[k++] = (tensor_pair){cn->name, cn, gn, cn->data, gn->data, kt_node_numel(cn)};
        else if (cn->grad && gn->grad)
            t[k++] = (tensor_pair){cn->grad->name, cn->grad, gn->grad, cn->grad->data, gn->grad->data, kt_node_numel(cn)};
    }
    return k;
}

int kt_twin_check(kt_twin_build_fn build, void *arg, const kt_twin_opts *o) {
    kt_backend *be = kt_twin_backend();
    side cpu, gpu;
    kt_err err;
    int bad = 0;
    memset(&cpu, 0, sizeof cpu);
    memset(&gpu, 0, sizeof gpu);
    int planned = !build_side(&cpu, build, arg, o, NULL, &err) && !kt_backend_cuda_set_precision(be, o->precision ? o->precision : "fp32", &err) &&
                  !build_side(&gpu, build, arg, o, be, &err);
    kt_err err2;
    kt_backend_cuda_set_precision(be, "fp32", &err2); /* the plan keeps its precision; the next twin starts from fp32 */
    if (!planned || kt_twin_poison(&gpu.g, &err) || feed(&cpu, &gpu, o, &err) || kt_graph_run(&cpu.g, &err) || kt_graph_run(&gpu.g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: %s", o->label, err.msg);
        kt_graph_free(&cpu.g);
        kt_graph_free(&gpu.g);
        return 1;
    }
    int fused = 0, stored = 0; /* the plan under test was made (else its kernels never ran) */
    for (int i = 0; i < gpu.g.n_nodes; i++) {
        fused += gpu.g.nodes[i]->fused;
        stored += (gpu.g.nodes[i]->flags & KT_NODE_STORED_BF16) && !gpu.g.nodes[i]->view_of;
    }
    if (o->gpu_fused > 0 && fused != o->gpu_fused) {
        kt_test_fail(__FILE__, __LINE__, "%s: the GPU plan fused %d nodes, expected %d", o->label, fused, o->gpu_fused);
        bad++;
    }
    if (o->gpu_stored16 > 0 && stored != o->gpu_stored16) {
        kt_test_fail(__FILE__, __LINE__, "%s: the GPU plan stores %d nodes in 16 bits, expected %d", o->label, stored, o->gpu_stored16);
        bad++;
    }
    tensor_pair t[64];
    int nt = list_tensors(&cpu, &gpu, t, 64);
    float *first[64] = {0};
    for (int i = 0; i < nt; i++) {
        first[i] = malloc((size_t)t[i].n * sizeof(float));
        if (!first[i] || be->download(be, first[i], t[i].gpu_data, (size_t)t[i].n * sizeof(float), &err)) {
            kt_test_fail(__FILE__, __LINE__, "%s: reading %s back: %s", o->label, t[i].name, first[i] ? err.msg : "no memory");
            bad++;
            continue;
        }
        double rel = kt_twin_rel_err(first[i], t[i].cpu_data, t[i].n);
        if (t[i].cpu == cpu.loss) { /* a sum of signed terms: its error scales with the terms, not with the (cancelled) sum */
            double terms = 0;
            const float *ov = cpu.out->data, *rv = cpu.R->data;
            for (int64_t k = 0; k < kt_node_numel(cpu.out); k++) terms += fabs((double)ov[k] * rv[k]);
            rel = isnan(first[i][0]) ? INFINITY : fabs((double)first[i][0] - t[i].cpu_data[0]) / (terms > 0 ? terms : 1e-30);
        }
        if (!(rel <= o->tol)) {
            kt_test_fail(__FILE__, __LINE__, "%s: %s differs from the CPU by %.3g of its scale (bound %.1g)", o->label, t[i].name, rel,
                         o->tol);
            bad++;
        }
    }
    /* a second run must give the same bits (state buffers move on with each training run: skip them) */
    if (!bad && kt_graph_run(&gpu.g, &err)) {
        kt_test_fail(__FILE__, __LINE__, "%s: second GPU run: %s", o->label, err.msg);
        bad++;
    }
    for (int i = 0; i < nt && !bad; i++) {
        if (t[i].cpu->op == KT_OP_PARAM) continue;
        float *again = malloc((size_t)t[i].n * sizeof(float));
        if (again && !be->download(be, again, t[i].gpu_data, (size_t)t[i].n * sizeof(float), &err) &&
            memcmp(again, first[i], (size_t)t[i].n * sizeof(float)) != 0) {
            kt_test_fail(__FILE__, __LINE__, "%s: %s is not bitwise the same on a second GPU run", o->label, t[i].name);
            bad++;
        }
        free(again);
    }
    for (int i = 0; i < nt; i++) free(first[i]);
    kt_graph_free(&cpu.g);
    kt_graph_free(&gpu.g);
    return bad;
}
