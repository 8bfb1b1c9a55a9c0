/* The planner fusions by name (kt_fusions_parse / kt_fusions_label): what kt_gpu_bench --without and
 * the CUDA backend's KT_CUDA_WITHOUT accept, and the error a wrong name gets. */
#include <string.h>

#include "engine/backend.h"
#include "kt_test.h"

KT_TEST(test_fusion_names_parse_and_label) {
    kt_err err;
    unsigned bits = 123;
    KT_CHECK_OK(kt_fusions_parse("scale_add,dwconv_bwd_add", &bits, &err), &err);
    KT_CHECK(bits == (KT_FUSE_SCALE_ADD | KT_FUSE_DWCONV_BWD_ADD), "two names: bits %#x", bits);
    KT_CHECK_OK(kt_fusions_parse("layernorm_colsum", &bits, &err), &err);
    KT_CHECK(bits == KT_FUSE_OTHER_COLSUM, "layernorm_colsum is KT_FUSE_OTHER_COLSUM: %#x", bits);
    KT_CHECK(kt_fusions_parse("", &bits, &err) == KT_OK && bits == 0, "empty list: no fusion");
    KT_CHECK(kt_fusions_parse(NULL, &bits, &err) == KT_OK && bits == 0, "no list: no fusion");
    /* every name, back and forth */
    char all[256];
    kt_fusions_label(~0u, all, sizeof all);
    KT_CHECK(!strcmp(all, "linear_gelu,layernorm_bwd,layerscale_bwd,act_bwd_colsum,layernorm_colsum,scale_colsum,scale_add,dwconv_bwd_add"),
             "all names: %s", all);
    KT_CHECK_OK(kt_fusions_parse(all, &bits, &err), &err);
    KT_CHECK(bits == 0xffu, "all names give all eight bits: %#x", bits);
    char two[64];
    kt_fusions_label(KT_FUSE_LINEAR_GELU | KT_FUSE_SCALE_ADD, two, sizeof two);
    KT_CHECK(!strcmp(two, "linear_gelu,scale_add"), "label: %s", two);
    char small[8];
    kt_fusions_label(~0u, small, sizeof small);
    KT_CHECK(strlen(small) == 7 && !strncmp(small, "linear_", 7), "truncated to its buffer: %s", small);
    /* a wrong name (a prefix of a right one, too) is named, with the known ones listed */
    KT_CHECK(kt_fusions_parse("scale_add,layernorm", &bits, &err) == KT_ERR_ARG && strstr(err.msg, "'layernorm'") &&
                 strstr(err.msg, "known: linear_gelu,"),
             "unknown name: %s", err.msg);
    KT_CHECK(kt_fusions_parse("scale_add,", &bits, &err) == KT_OK && bits == KT_FUSE_SCALE_ADD, "a trailing comma is allowed");
    KT_CHECK(kt_fusions_parse(",scale_add", &bits, &err) == KT_ERR_ARG && strstr(err.msg, "''"), "an empty name: %s", err.msg);
}
