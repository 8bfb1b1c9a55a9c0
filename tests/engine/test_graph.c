/* Graph mechanics: shape errors, determinism across runs and thread counts, memory planning,
 * no allocation inside a step, and a small CNN learning a toy task. */
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/graph.h"
#include "gradcheck.h"
#include "kernels/cpu/adamw.h"
#include "kt_test.h"

KT_TEST(test_shape_error_names_both_shapes) {
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_input(&g, "x", KT_F32, 2, (int64_t[]){4, 7});
    kt_node *w = kt_param(&g, "fc.weight", 2, (int64_t[]){3, 5}, 0);
    kt_node *y = kt_linear(&g, x, w, NULL);
    KT_CHECK(y == NULL, "mismatched linear must fail");
    KT_CHECK(kt_graph_status(&g, &err) == KT_ERR_SHAPE, "status %d", g.status);
    KT_CHECK(strstr(err.msg, "(4, 7)") && strstr(err.msg, "(3, 5)"), "message names both shapes: %s", err.msg);
    /* later builders keep the first error and return NULL without crashing */
    KT_CHECK(kt_gelu(&g, y) == NULL, "builder after an error returns NULL");
    KT_CHECK(kt_graph_plan(&g, NULL, NULL, &err) == KT_ERR_SHAPE, "plan reports the build error");
    kt_graph_free(&g);

    kt_graph_init(&g, &err);
    x = kt_input(&g, "x", KT_F32, 4, (int64_t[]){2, 8, 8, 3});
    w = kt_param(&g, "conv.weight", 4, (int64_t[]){16, 4, 3, 3}, 0);
    KT_CHECK(kt_conv2d(&g, x, w, NULL, 1, 1, 1) == NULL, "conv with wrong in-channels must fail");
    kt_graph_status(&g, &err);
    KT_CHECK(strstr(err.msg, "(2, 8, 8, 3)") && strstr(err.msg, "(16, 4, 3, 3)"), "conv message: %s", err.msg);
    kt_graph_free(&g);

    kt_graph_init(&g, &err);
    kt_node *a = kt_input(&g, "a", KT_F32, 2, (int64_t[]){2, 3}), *b = kt_input(&g, "b", KT_F32, 2, (int64_t[]){3, 2});
    KT_CHECK(kt_add(&g, a, b) == NULL, "add of different shapes must fail");
    kt_graph_status(&g, &err);
    KT_CHECK(strstr(err.msg, "(2, 3)") && strstr(err.msg, "(3, 2)"), "add message: %s", err.msg);
    kt_graph_free(&g);

    kt_graph_init(&g, &err);
    KT_CHECK(kt_gelu(&g, NULL) == NULL && kt_graph_status(&g, &err) == KT_ERR_ARG, "NULL input is an error, not a crash");
    kt_graph_free(&g);
}

/* A small CNN (conv-BN-ReLU-maxpool-conv-LN-GELU-GAP-dropout-linear) used by the tests below. */
typedef struct {
    kt_graph g;
    kt_node *x, *y, *logits, *loss;
} small_cnn;

static void small_cnn_build(small_cnn *m, int N, int H, int classes, float dropout) {
    kt_err err;
    kt_graph_init(&m->g, &err);
    kt_graph *g = &m->g;
    m->x = kt_input(g, "x", KT_F32, 4, (int64_t[]){N, H, H, 3});
    m->y = kt_input(g, "y", KT_I32, 1, (int64_t[]){N});
    kt_node *w1 = kt_param(g, "c1.weight", 4, (int64_t[]){8, 3, 3, 3}, 0);
    kt_node *bw = kt_param(g, "bn.weight", 1, (int64_t[]){8}, 0), *bb = kt_param(g, "bn.bias", 1, (int64_t[]){8}, 0);
    kt_node *rm = kt_param(g, "bn.running_mean", 1, (int64_t[]){8}, KT_NODE_BUFFER);
    kt_node *rv = kt_param(g, "bn.running_var", 1, (int64_t[]){8}, KT_NODE_BUFFER);
    kt_node *w2 = kt_param(g, "c2.weight", 4, (int64_t[]){16, 8, 3, 3}, 0), *b2 = kt_param(g, "c2.bias", 1, (int64_t[]){16}, 0);
    kt_node *lw = kt_param(g, "ln.weight", 1, (int64_t[]){16}, 0), *lb = kt_param(g, "ln.bias", 1, (int64_t[]){16}, 0);
    kt_node *fw = kt_param(g, "fc.weight", 2, (int64_t[]){classes, 16}, 0), *fb = kt_param(g, "fc.bias", 1, (int64_t[]){classes}, 0);
    kt_node *h = kt_conv2d(g, m->x, w1, NULL, 1, 1, 1);
    h = kt_relu(g, kt_batchnorm(g, h, bw, bb, rm, rv, 1e-5f, 0.1f));
    h = kt_maxpool2d(g, h, 2, 2, 0);
    h = kt_gelu(g, kt_layernorm(g, kt_conv2d(g, h, w2, b2, 1, 1, 1), lw, lb, 1e-6f));
    h = kt_dropout(g, kt_global_avgpool(g, h), dropout);
    m->logits = kt_linear(g, h, fw, fb);
    kt_keep(m->logits);
    m->loss = kt_softmax_ce(g, m->logits, m->y, 0.1f);
}

static void init_params(kt_graph *g, unsigned seed) {
    for (int p = 0; p < g->n_params; p++) {
        kt_node *n = g->params[p].node;
        float *d = kt_node_f32(n);
        int64_t k = kt_node_numel(n);
        if (strstr(n->name, "running_var") || (strstr(n->name, "bn.weight")) || strstr(n->name, "ln.weight")) {
            for (int64_t i = 0; i < k; i++) d[i] = 1.0f;
        } else if (strstr(n->name, "bias") || strstr(n->name, "running_mean")) {
            memset(d, 0, (size_t)k * sizeof(float));
        } else {
            float fan_in = (float)(k / n->shape[0]);
            kt_gc_fill(d, k, -sqrtf(3.0f / fan_in), sqrtf(3.0f / fan_in), 0, &seed);
        }
    }
}

/* Toy task: class 0 = bright top half, 1 = bright bottom half, 2 = bright left half, 3 = right half. */
static void toy_batch(float *x, int32_t *y, int N, int H, unsigned *seed) {
    for (int n = 0; n < N; n++) {
        int cls = (int)((*seed = *seed * 1664525u + 1013904223u) >> 30);
        y[n] = cls;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < H; j++) {
                int on = cls == 0 ? i < H / 2 : cls == 1 ? i >= H / 2 : cls == 2 ? j < H / 2 : j >= H / 2;
                for (int c = 0; c < 3; c++) {
                    *seed = *seed * 1664525u + 1013904223u;
                    float noise = ((float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.8f;
                    x[((n * H + i) * H + j) * 3 + c] = (on ? 0.5f : -0.5f) + noise;
                }
            }
    }
}

KT_TEST(test_same_graph_twice_same_result) {
    small_cnn m;
    kt_err err;
    small_cnn_build(&m, 4, 8, 4, 0.2f);
    KT_REQUIRE_OK(kt_graph_backward(&m.g, m.loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&m.g, NULL, NULL, &err), &err);
    init_params(&m.g, 7);
    unsigned seed = 3;
    toy_batch(kt_node_f32(m.x), (int32_t *)m.y->data, 4, 8, &seed);
    int64_t np = m.g.n_param_elems;
    float *g1 = malloc(sizeof(float) * (size_t)np);
    float l1, l2;
    float *state0 = malloc(sizeof(float) * (size_t)m.g.n_buffer_elems);
    memcpy(state0, m.g.state_buf, sizeof(float) * (size_t)m.g.n_buffer_elems);
    KT_CHECK_OK(kt_graph_run(&m.g, &err), &err);
    l1 = kt_node_f32(m.loss)[0];
    memcpy(g1, m.g.grad_buf, sizeof(float) * (size_t)np);
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2); /* a different thread count must not change anything */
    memcpy(m.g.state_buf, state0, sizeof(float) * (size_t)m.g.n_buffer_elems);
    KT_CHECK_OK(kt_graph_run(&m.g, &err), &err);
    omp_set_num_threads(threads);
    l2 = kt_node_f32(m.loss)[0];
    KT_CHECK(l1 == l2, "loss %.9g then %.9g", l1, l2);
    KT_CHECK(memcmp(g1, m.g.grad_buf, sizeof(float) * (size_t)np) == 0, "gradients differ between identical runs");
    /* the next step draws a new dropout mask: loss must change */
    m.g.step++;
    memcpy(m.g.state_buf, state0, sizeof(float) * (size_t)m.g.n_buffer_elems);
    KT_CHECK_OK(kt_graph_run(&m.g, &err), &err);
    KT_CHECK(kt_node_f32(m.loss)[0] != l1, "a new step should draw a new dropout mask");
    free(g1);
    free(state0);
    kt_graph_free(&m.g);
}

KT_TEST(test_planner_reuses_memory) {
    small_cnn m;
    kt_err err;
    small_cnn_build(&m, 8, 16, 4, 0.0f);
    KT_REQUIRE_OK(kt_graph_backward(&m.g, m.loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&m.g, NULL, NULL, &err), &err);
    kt_plan_stats st;
    kt_graph_plan_stats(&m.g, &st);
    KT_CHECK(st.arena_bytes < st.naive_bytes / 2, "arena %zu bytes vs %zu for one buffer per node", st.arena_bytes, st.naive_bytes);
    /* every trainable parameter's gradient sits in the gradient buffer at the parameter's offset */
    for (int p = 0; p < m.g.n_params; p++) {
        kt_node *n = m.g.params[p].node;
        if (n->flags & KT_NODE_BUFFER) continue;
        KT_CHECK(n->grad && (float *)n->grad->data == m.g.grad_buf + m.g.params[p].offset, "gradient of %s not pinned", n->name);
        KT_CHECK((float *)n->data == m.g.param_buf + m.g.params[p].offset, "%s not in the parameter buffer", n->name);
    }
    kt_graph_free(&m.g);
}

/* LayerNorm's weight and bias gradients are the two rows of one (2, C) node: each row is taken by a
 * slice in the parameter's shape that is the parameter's gradient itself, in the gradient buffer,
 * with no copy after it (a reshape view of a (1, C) slice was copied there again: on a GPU two tiny
 * kernels per parameter instead of one), and the values are still the rows. */
KT_TEST(test_layernorm_param_grads_written_in_place) {
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_param(&g, "x", 2, (int64_t[]){5, 6}, 0);
    kt_node *w = kt_param(&g, "ln.weight", 1, (int64_t[]){6}, 0), *b = kt_param(&g, "ln.bias", 1, (int64_t[]){6}, 0);
    kt_node *r = kt_input(&g, "r", KT_F32, 2, (int64_t[]){5, 6});
    kt_node *loss = kt_sum(&g, kt_mul(&g, kt_layernorm(&g, x, w, b, 1e-6f), r), 1.0f);
    KT_REQUIRE_OK(kt_graph_backward(&g, loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&g, NULL, NULL, &err), &err);
    int copies = 0;
    for (int i = g.n_forward; i < g.n_nodes; i++) copies += g.nodes[i]->op == KT_OP_COPY;
    KT_CHECK(copies == 0, "%d copy nodes in backward", copies);
    const kt_node *wb = NULL;
    for (int i = 0; i < g.n_nodes; i++)
        if (g.nodes[i]->op == KT_OP_LAYERNORM_BWD_WB) wb = g.nodes[i];
    KT_REQUIRE(wb, "no LayerNorm weight/bias gradient node");
    for (int p = 0; p < 2; p++) {
        kt_node *pn = p ? b : w, *d = pn->grad;
        KT_CHECK(d && d->op == KT_OP_SLICE && d->src[0] == wb && d->ndim == 1 && d->shape[0] == 6 && !d->view_of,
                 "%s: gradient is not a (6) slice of the (2, 6) node", pn->name);
    }
    float *xv = kt_node_f32(x), *wv = kt_node_f32(w), *bv = kt_node_f32(b), *rv = kt_node_f32(r);
    for (int i = 0; i < 30; i++) xv[i] = (float)((i * 7) % 11) * 0.3f - 1.2f, rv[i] = (float)((i * 5) % 13) * 0.1f - 0.6f;
    for (int i = 0; i < 6; i++) wv[i] = 1.0f + 0.1f * (float)i, bv[i] = 0.05f * (float)i;
    KT_REQUIRE_OK(kt_graph_run(&g, &err), &err);
    /* bias gradient = column sums of r; weight gradient = column sums of r * xhat */
    for (int c = 0; c < 6; c++) {
        double db = 0;
        for (int i = 0; i < 5; i++) db += rv[i * 6 + c];
        KT_CHECK(fabs(kt_node_f32(b->grad)[c] - db) < 1e-5, "bias gradient %d: %g vs %g", c, kt_node_f32(b->grad)[c], db);
        KT_CHECK(kt_node_f32(w->grad)[c] == kt_node_f32(wb)[c] && kt_node_f32(b->grad)[c] == kt_node_f32(wb)[6 + c],
                 "gradient %d is not its row of the (2, 6) node", c);
    }
    kt_graph_free(&g);
}

/* linear + bias -> GELU -> sum, planned on a copy of the CPU backend offering the fusions in mask:
 * the number of nodes the plan computes inside another's kernel, and the loss and gradients */
static int fused_plan(unsigned mask, float *loss, float *grads, int64_t *n_grads, char *peak, size_t peak_len) {
    kt_backend be = *kt_backend_cpu();
    be.fusions = mask;
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_param(&g, "x", 2, (int64_t[]){6, 12}, 0), *w = kt_param(&g, "w", 2, (int64_t[]){8, 12}, 0);
    kt_node *b = kt_param(&g, "b", 1, (int64_t[]){8}, 0);
    kt_node *l = kt_sum(&g, kt_gelu(&g, kt_linear(&g, x, w, b)), 1.0f);
    kt_keep(l);
    int fused = -1;
    if (!kt_graph_backward(&g, l, &err) && !kt_graph_plan(&g, &be, NULL, &err)) {
        for (int64_t i = 0; i < g.n_param_elems; i++) g.param_buf[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
        if (!kt_graph_run(&g, &err)) {
            fused = 0;
            for (int i = 0; i < g.n_nodes; i++) fused += g.nodes[i]->fused;
            *loss = kt_node_f32(l)[0];
            *n_grads = g.n_param_elems;
            memcpy(grads, g.grad_buf, (size_t)g.n_param_elems * sizeof(float));
            FILE *f = fmemopen(peak, peak_len, "w");
            if (f) {
                kt_graph_print_peak(&g, f, 8);
                fclose(f);
            }
        }
    }
    kt_graph_free(&g);
    return fused;
}

/* The planner fuses only what the backend's kernels compute (kt_backend::fusions), and a plan with
 * or without a fusion computes the same step. */
KT_TEST(test_planner_fusions_follow_the_backend) {
    const unsigned masks[] = {kt_backend_cpu()->fusions, 0, KT_FUSE_LINEAR_GELU, KT_FUSE_ACT_BWD_COLSUM};
    const int want[] = {2, 0, 1, 1}; /* GELU inside the linear; fc bias gradient inside GELU's backward */
    float loss[4], grads[4][6 * 12 + 8 * 12 + 8];
    int64_t ng = 0;
    char peak[1024];
    for (int k = 0; k < 4; k++) {
        int fused = fused_plan(masks[k], &loss[k], grads[k], &ng, peak, sizeof peak);
        KT_CHECK(fused == want[k], "fusions 0x%x: %d nodes fused, want %d", masks[k], fused, want[k]);
        if (fused < 0) continue;
        KT_CHECK(fabsf(loss[k] - loss[0]) <= 1e-5f * fabsf(loss[0]), "fusions 0x%x: loss %.9g vs %.9g", masks[k], loss[k], loss[0]);
        double worst = 0;
        for (int64_t i = 0; i < ng; i++) worst = fmax(worst, fabs(grads[k][i] - grads[0][i]));
        KT_CHECK(worst <= 1e-5, "fusions 0x%x: gradients differ by %g", masks[k], worst);
    }
    /* the breakdown names the peak and the forward tensors kept for backward */
    KT_CHECK(strstr(peak, "peak at node") && strstr(peak, "forward") && strstr(peak, "linear"), "peak breakdown: %s", peak);
}

/* The fusions whose first output is never written (a backend's KT_FUSE_SCALE_ADD,
 * KT_FUSE_DWCONV_BWD_ADD) are chosen only where the follower add is that output's sole reader and,
 * for the gradient add, only after a depthwise data gradient. Planned, not run: the CPU's kernels do
 * not compute these pairs. */
static int count_pairs(kt_graph *g, kt_op first) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        k += g->nodes[i]->op == first && g->nodes[i]->fuse_next && g->nodes[i]->fuse_next->op == KT_OP_ADD && g->nodes[i]->fuse_next->fused;
    return k;
}

KT_TEST(test_planner_dead_output_fusions_need_a_sole_reader) {
    kt_backend be = *kt_backend_cpu();
    be.fusions = KT_FUSE_SCALE_ADD | KT_FUSE_DWCONV_BWD_ADD;
    for (int variant = 0; variant < 3; variant++) {
        kt_graph g;
        kt_err err;
        KT_REQUIRE_OK(kt_graph_init(&g, &err), &err);
        kt_node *x0 = kt_param(&g, "x0", 4, (int64_t[]){2, 5, 6, 8}, 0), *s = kt_param(&g, "s", 1, (int64_t[]){8}, 0);
        kt_node *gamma = kt_param(&g, "gamma", 1, (int64_t[]){8}, 0);
        /* variant 2: a dense 3x3 conv where the block has its depthwise one */
        kt_node *w = variant == 2 ? kt_param(&g, "w", 4, (int64_t[]){8, 8, 3, 3}, 0) : kt_param(&g, "w", 4, (int64_t[]){8, 1, 3, 3}, 0);
        kt_node *x = kt_mul(&g, x0, s);
        kt_node *h = kt_mul(&g, kt_conv2d(&g, x, w, NULL, 1, 1, variant == 2 ? 1 : 8), gamma); /* layer scale */
        kt_node *out = kt_add(&g, h, x);                                                         /* residual */
        kt_node *l = kt_sum(&g, out, 1.0f);
        if (variant == 1) l = kt_add(&g, l, kt_sum(&g, h, 1.0f)); /* a second reader of the scaled branch */
        kt_keep(l);
        KT_REQUIRE_OK(kt_graph_backward(&g, l, &err), &err);
        KT_REQUIRE_OK(kt_graph_plan(&g, &be, NULL, &err), &err);
        int scale_adds = count_pairs(&g, KT_OP_MUL), grad_adds = count_pairs(&g, KT_OP_CONV2D_BWD_DATA);
        KT_CHECK(scale_adds == (variant == 1 ? 0 : 1), "variant %d: %d layer-scale + residual-add pairs", variant, scale_adds);
        KT_CHECK(grad_adds == (variant == 2 ? 0 : 1), "variant %d: %d data-gradient + gradient-add pairs (depthwise only)", variant,
                 grad_adds);
        kt_graph_free(&g);
    }
}

/* A depthwise conv with a trainable weight reads its input in backward through a saved-input node
 * (kt_node::saved_input), which the CPU plans as a view of the input: same memory, no extra node
 * run, the same gradient; a dense conv and a depthwise conv with a frozen weight have none. */
KT_TEST(test_depthwise_saved_input_is_a_view_on_cpu) {
    kt_graph g;
    kt_err err;
    KT_REQUIRE_OK(kt_graph_init(&g, &err), &err);
    kt_node *x0 = kt_param(&g, "x0", 4, (int64_t[]){2, 5, 6, 8}, 0), *s = kt_param(&g, "s", 1, (int64_t[]){8}, 0);
    kt_node *w = kt_param(&g, "dw.w", 4, (int64_t[]){8, 1, 3, 3}, 0), *wd = kt_param(&g, "dense.w", 4, (int64_t[]){8, 8, 3, 3}, 0);
    kt_node *x = kt_mul(&g, x0, s); /* a computed input (arena memory), as a block input is */
    int before = g.n_nodes;
    kt_node *y = kt_conv2d(&g, x, w, NULL, 1, 1, 8);
    KT_REQUIRE(y && y->saved_input, "depthwise conv without a saved input");
    kt_node *sv = y->saved_input;
    KT_CHECK(g.n_nodes == before + 2 && sv->id == y->id + 1, "the saved input is the node right after the conv");
    KT_CHECK(sv->op == KT_OP_COPY && (sv->flags & KT_NODE_SAVED_INPUT) && sv->view_of == x && sv->src[0] == x && sv->dtype == x->dtype,
             "saved input: a COPY view of x");
    KT_CHECK(!(sv->flags & KT_NODE_REQUIRES_GRAD), "no gradient flows through the saved input");
    kt_node *z = kt_conv2d(&g, y, wd, NULL, 1, 1, 1);
    KT_CHECK(z && !z->saved_input, "a dense conv has no saved input");
    kt_node *l = kt_sum(&g, kt_gelu(&g, z), 1.0f);
    kt_keep(l);
    KT_REQUIRE_OK(kt_graph_backward(&g, l, &err), &err);
    int readers = 0;
    for (int i = g.n_forward; i < g.n_nodes; i++) {
        const kt_node *n = g.nodes[i];
        for (int k = 0; k < n->n_src; k++) readers += n->src[k] == sv;
        if (n->op == KT_OP_CONV2D_BWD_WEIGHT && n->grad_of == w->param_index)
            KT_CHECK(n->src[1] == sv, "the depthwise weight gradient reads %s, not the saved input", n->src[1]->name);
    }
    KT_CHECK(readers == 1, "%d backward readers of the saved input (want the weight gradient only)", readers);
    const kt_node *dy = NULL;
    for (int i = g.n_forward; i < g.n_nodes; i++)
        if (g.nodes[i]->op == KT_OP_CONV2D_BWD_WEIGHT && g.nodes[i]->grad_of == w->param_index) dy = g.nodes[i]->src[0];
    KT_REQUIRE(dy, "weight gradient node");
    kt_keep(x); /* read back below: not reused */
    kt_keep((kt_node *)dy);
    KT_REQUIRE_OK(kt_graph_plan(&g, NULL, NULL, &err), &err);
    KT_CHECK(sv->data == x->data && sv->view_of == x, "on the CPU the saved input shares x's memory");
    for (int64_t i = 0; i < g.n_param_elems; i++) g.param_buf[i] = (float)((i * 29) % 17) / 8.0f - 1.0f;
    KT_REQUIRE_OK(kt_graph_run(&g, &err), &err);
    /* the weight gradient against a direct sum: dw[c,ky,kx] = sum dy[n,oy,ox,c] x[n,oy+ky-1,ox+kx-1,c] */
    const float *xv = kt_node_f32(x), *gw = (const float *)w->grad->data;
    const float *dv = kt_node_f32(dy);
    double worst = 0;
    for (int c = 0; c < 8; c++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                double sum = 0;
                for (int n = 0; n < 2; n++)
                    for (int oy = 0; oy < 5; oy++)
                        for (int ox = 0; ox < 6; ox++) {
                            int iy = oy + ky - 1, ix = ox + kx - 1;
                            if (iy >= 0 && iy < 5 && ix >= 0 && ix < 6)
                                sum += (double)dv[((n * 5 + oy) * 6 + ox) * 8 + c] * xv[((n * 5 + iy) * 6 + ix) * 8 + c];
                        }
                worst = fmax(worst, fabs(gw[(c * 3 + ky) * 3 + kx] - sum) / (1.0 + fabs(sum)));
            }
    KT_CHECK(worst < 1e-5, "depthwise weight gradient through the saved input off by %g", worst);
    kt_graph_free(&g);

    /* a frozen depthwise weight (no gradient): nothing saved */
    KT_REQUIRE_OK(kt_graph_init(&g, &err), &err);
    kt_node *xi = kt_input(&g, "x", KT_F32, 4, (int64_t[]){1, 4, 4, 8});
    kt_node *wf = kt_input(&g, "w", KT_F32, 4, (int64_t[]){8, 1, 3, 3});
    kt_node *yf = kt_conv2d(&g, xi, wf, NULL, 1, 1, 8);
    KT_CHECK(yf && !yf->saved_input && g.n_nodes == 3, "a depthwise conv with a frozen weight saves nothing");
    kt_graph_free(&g);
}

KT_TEST(test_training_step_allocates_nothing) {
    small_cnn m;
    kt_err err;
    small_cnn_build(&m, 8, 16, 4, 0.1f);
    KT_REQUIRE_OK(kt_graph_backward(&m.g, m.loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&m.g, NULL, NULL, &err), &err);
    init_params(&m.g, 1);
    unsigned seed = 5;
    toy_batch(kt_node_f32(m.x), (int32_t *)m.y->data, 8, 16, &seed);
    int64_t np = m.g.n_param_elems;
    float *mom = calloc((size_t)np * 2, sizeof(float));
    kt_adamw_hp hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 1};
    KT_CHECK_OK(kt_graph_run(&m.g, &err), &err); /* warm-up: OpenMP and OpenBLAS set up their pools */
    struct mallinfo2 before = mallinfo2();
    for (int s = 0; s < 3; s++) {
        m.g.step++;
        kt_graph_run(&m.g, &err);
        hp.step = s + 1;
        kt_cpu_adamw(m.g.param_buf, m.g.grad_buf, mom, mom + np, np, &hp);
    }
    struct mallinfo2 after = mallinfo2();
    KT_CHECK(after.uordblks == before.uordblks && after.hblkhd == before.hblkhd,
             "heap in use changed during steps: %zu -> %zu bytes (mmapped %zu -> %zu)", before.uordblks, after.uordblks,
             before.hblkhd, after.hblkhd);
    free(mom);
    kt_graph_free(&m.g);
}

/* The toy task is learnable: a small CNN of these ops reaches loss < 0.6 (chance is ln 4 = 1.386,
 * and label smoothing 0.1 floors the loss near 0.2) within 150 AdamW steps at batch 16. */
KT_TEST(test_small_cnn_learns_toy_task) {
    small_cnn m;
    kt_err err;
    const int N = 16, H = 12;
    small_cnn_build(&m, N, H, 4, 0.1f);
    KT_REQUIRE_OK(kt_graph_backward(&m.g, m.loss, &err), &err);
    KT_REQUIRE_OK(kt_graph_plan(&m.g, NULL, NULL, &err), &err);
    init_params(&m.g, 11);
    int64_t np = m.g.n_param_elems;
    float *mom = calloc((size_t)np * 2, sizeof(float));
    kt_adamw_hp hp = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    unsigned seed = 99;
    double first = 0, last = 0;
    for (int s = 1; s <= 150; s++) {
        toy_batch(kt_node_f32(m.x), (int32_t *)m.y->data, N, H, &seed);
        m.g.step = (uint64_t)s;
        KT_REQUIRE_OK(kt_graph_run(&m.g, &err), &err);
        float l = kt_node_f32(m.loss)[0];
        if (s <= 10) first += l / 10.0;
        if (s > 140) last += l / 10.0;
        hp.step = s;
        kt_cpu_adamw(m.g.param_buf, m.g.grad_buf, mom, mom + np, np, &hp);
    }
    KT_CHECK(first > 1.1, "initial loss %.3f should be near chance (1.386)", first);
    KT_CHECK(last < 0.6, "loss after 150 steps %.3f (first steps %.3f) should be < 0.6", last, first);
    /* evaluation mode (BatchNorm running stats, no dropout) classifies fresh samples */
    m.g.training = 0;
    toy_batch(kt_node_f32(m.x), (int32_t *)m.y->data, N, H, &seed);
    KT_REQUIRE_OK(kt_graph_forward(&m.g, &err), &err);
    int correct = 0;
    const float *z = kt_node_f32(m.logits);
    for (int n = 0; n < N; n++) {
        int best = 0;
        for (int c = 1; c < 4; c++)
            if (z[n * 4 + c] > z[n * 4 + best]) best = c;
        correct += best == ((int32_t *)m.y->data)[n];
    }
    KT_CHECK(correct >= 14, "eval accuracy %d/16", correct);
    free(mom);
    kt_graph_free(&m.g);
}

/* Inference: a linear computing its GELU whose pre-activation nobody else reads is marked
 * KT_NODE_OUT_SCRATCH on the CPU (its bias + GELU pass skips writing z + b back) and gives the same
 * output bits as the plan without the fusion; with a backward, or a second reader, it is not marked. */
static kt_node *linear_gelu_graph(kt_graph *g, int second_reader, kt_node **lin) {
    kt_err err;
    kt_graph_init(g, &err);
    kt_node *x = kt_input(g, "x", KT_F32, 2, (int64_t[]){5, 12});
    kt_node *w = kt_param(g, "w", 2, (int64_t[]){16, 12}, 0), *b = kt_param(g, "b", 1, (int64_t[]){16}, 0);
    *lin = kt_linear(g, x, w, b);
    kt_node *y = kt_gelu(g, *lin);
    if (second_reader) y = kt_add(g, y, *lin);
    kt_keep(y);
    return y;
}

static void fill_linear_gelu(kt_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        kt_node *n = g->nodes[i];
        if (n->op != KT_OP_INPUT && n->op != KT_OP_PARAM) continue;
        float *d = kt_node_f32(n);
        for (int64_t k = 0; k < kt_node_numel(n); k++) d[k] = sinf((float)(k * 7 + i * 3) * 0.37f) * (n->op == KT_OP_PARAM ? 0.5f : 2.0f);
    }
}

KT_TEST(test_cpu_inference_linear_gelu_skips_its_pre_activation) {
    kt_err err;
    kt_backend plain = *kt_backend_cpu();
    plain.fusions = 0;
    float out[2][5 * 16];
    for (int k = 0; k < 2; k++) {
        kt_graph g;
        kt_node *lin, *y = linear_gelu_graph(&g, 0, &lin);
        KT_REQUIRE_OK(kt_graph_plan(&g, k ? &plain : NULL, NULL, &err), &err);
        KT_CHECK(!!(lin->flags & KT_NODE_OUT_SCRATCH) == (k == 0), "plan %d: pre-activation %s", k,
                 lin->flags & KT_NODE_OUT_SCRATCH ? "marked" : "not marked");
        fill_linear_gelu(&g);
        KT_REQUIRE_OK(kt_graph_forward(&g, &err), &err);
        memcpy(out[k], kt_node_f32(y), sizeof out[k]);
        kt_graph_free(&g);
    }
    KT_CHECK(!memcmp(out[0], out[1], sizeof out[0]), "GELU output differs from the unfused plan");
    /* a second reader of the pre-activation, or a backward (GELU's gradient reads it): not marked */
    for (int k = 0; k < 2; k++) {
        kt_graph g;
        kt_node *lin, *y = linear_gelu_graph(&g, k == 0, &lin);
        if (k == 1) KT_REQUIRE_OK(kt_graph_backward(&g, kt_sum(&g, y, 1.0f), &err), &err);
        KT_REQUIRE_OK(kt_graph_plan(&g, NULL, NULL, &err), &err);
        KT_CHECK(!(lin->flags & KT_NODE_OUT_SCRATCH), "%s: pre-activation marked", k ? "with a backward" : "with a second reader");
        if (k == 1) KT_CHECK(lin->fuse_next != NULL, "with a backward: GELU not fused into the linear");
        kt_graph_free(&g);
    }
}
