/* ConvNeXt family: configs, parameter counts equal to timm's, FLOPs, names, recomputation. */
#include <math.h>
#include <string.h>

#include "kt_test.h"
#include "nets/convnext.h"
#include "nets/model.h"

static int64_t graph_params(const char *arch, int classes) {
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_input(&g, "x", KT_F32, 4, (int64_t[]){1, 64, 64, 3});
    kt_convnext_opts o = {.num_classes = classes, .ls_init = 1e-6f};
    kt_convnext_build(&g, kt_convnext_find(arch), &o, x);
    int64_t n = kt_graph_status(&g, &err) ? -1 : g.n_param_elems;
    kt_graph_free(&g);
    return n;
}

KT_TEST(test_convnext_param_counts_match_timm) {
    /* numbers from timm (issue 3): sum(p.numel() for p in model.parameters()) */
    KT_CHECK(graph_params("convnext_base", 6) == 87572614, "base/6: %lld", (long long)graph_params("convnext_base", 6));
    KT_CHECK(graph_params("convnext_atto", 6) == 3376446, "atto/6: %lld", (long long)graph_params("convnext_atto", 6));
    KT_CHECK(graph_params("convnext_tiny", 1000) == 28589128, "tiny/1000: %lld", (long long)graph_params("tiny", 1000));
    int n;
    const kt_convnext_cfg *all = kt_convnext_list(&n);
    KT_CHECK(n == 8, "eight configs (atto..large), got %d", n);
    for (int i = 0; i < n; i++)
        KT_CHECK(kt_convnext_param_count(&all[i], 6) == graph_params(all[i].name, 6), "closed-form count of %s", all[i].name);
}

KT_TEST(test_convnext_flops) {
    /* forward GFLOPs at 224 (2 per multiply-add, convs + linears), as ../shared/PERFORMANCE.md lists */
    KT_CHECK_NEAR(kt_convnext_flops(kt_convnext_find("atto"), 1000, 224, 224) / 1e9, 1.09, 0.01);
    KT_CHECK_NEAR(kt_convnext_flops(kt_convnext_find("tiny"), 1000, 224, 224) / 1e9, 8.91, 0.01);
    KT_CHECK_NEAR(kt_convnext_flops(kt_convnext_find("base"), 1000, 224, 224) / 1e9, 30.71, 0.01);
}

KT_TEST(test_convnext_timm_names) {
    kt_graph g;
    kt_err err;
    kt_graph_init(&g, &err);
    kt_node *x = kt_input(&g, "x", KT_F32, 4, (int64_t[]){1, 32, 32, 3});
    kt_convnext_opts o = {.num_classes = 6, .ls_init = 1e-6f};
    kt_convnext_build(&g, kt_convnext_find("convnext_tiny"), &o, x);
    const char *names[] = {"stem.0.weight", "stem.1.bias", "stages.1.downsample.0.weight", "stages.1.downsample.1.weight",
                           "stages.2.blocks.8.conv_dw.weight", "stages.2.blocks.5.mlp.fc1.weight", "stages.3.blocks.2.gamma",
                           "head.norm.weight", "head.fc.weight", "head.fc.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) KT_CHECK(kt_param_find(&g, names[i]), "missing %s", names[i]);
    KT_CHECK(!kt_param_find(&g, "stages.0.downsample.0.weight"), "stage 0 has no downsample in timm");
    kt_graph_free(&g);
}

KT_TEST(test_convnext_rejects_bad_sizes) {
    kt_model m;
    kt_err err;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = 3, .batch = 1, .img_h = 100, .img_w = 96};
    KT_CHECK(kt_model_create(&m, &o, NULL, &err) == KT_ERR_ARG && strstr(err.msg, "100x96"), "size error: %s", err.msg);
    o.arch = "convnext_huge";
    o.img_h = 96;
    KT_CHECK(kt_model_create(&m, &o, NULL, &err) == KT_ERR_ARG && strstr(err.msg, "convnext_huge") && strstr(err.msg, "convnext_atto"),
             "unknown arch error lists known ones: %s", err.msg);
}

/* Recomputing GELU and LayerNorm in backward gives bit-identical gradients with less memory. */
KT_TEST(test_convnext_recompute_same_gradients_less_memory) {
    kt_model a, b;
    kt_err err;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = 4, .batch = 2, .img_h = 64, .img_w = 64, .train = 1,
                       .label_smoothing = 0.1f, .drop_path_rate = 0.1f};
    KT_REQUIRE_OK(kt_model_create(&a, &o, NULL, &err), &err);
    o.recompute = 1;
    KT_REQUIRE_OK(kt_model_create(&b, &o, NULL, &err), &err);
    kt_model_init_weights(&a, 3, &err);
    kt_model_init_weights(&b, 3, &err);
    for (int64_t i = 0; i < kt_node_numel(a.input); i++) kt_node_f32(a.input)[i] = kt_node_f32(b.input)[i] = sinf((float)i * 0.37f);
    for (int i = 0; i < 2; i++) ((int32_t *)a.labels->data)[i] = ((int32_t *)b.labels->data)[i] = i + 1;
    KT_CHECK_OK(kt_graph_run(&a.g, &err), &err);
    KT_CHECK_OK(kt_graph_run(&b.g, &err), &err);
    KT_CHECK(memcmp(a.g.grad_buf, b.g.grad_buf, sizeof(float) * (size_t)a.g.n_param_elems) == 0, "gradients differ");
    KT_CHECK(b.g.arena_bytes < a.g.arena_bytes, "recompute arena %zu >= %zu", b.g.arena_bytes, a.g.arena_bytes);
    printf("activation arena: %.1f MiB stored, %.1f MiB with recomputation\n", a.g.arena_bytes / 1048576.0,
           b.g.arena_bytes / 1048576.0);
    kt_model_free(&a);
    kt_model_free(&b);
}
