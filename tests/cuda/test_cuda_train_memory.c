/* `keratrack train --device cuda` with a model and batch too big for the GPU: an error that says so
 * and names what lowers the need (--batch, --recompute), before anything is trained or written
 * beside the run's configuration. First under a cap (KT_CUDA_MEMORY_MIB) at the benchmarks' batch
 * 64 and 224 px, planned in bf16, the CLI's default: what any card plans (runs 6-8). Then too big
 * for any card: on the H200 giant convolutions were refused by cuDNN while planning, before memory
 * was counted (a 2^31-element tensor in run 6; no algorithm under the workspace cap in runs 7 and
 * 8); now our own checks send such a stem to our patch GEMM, so the plan gets as far as memory. */
#include <stdio.h>
#include <string.h>

#include "cuda_twin.h"
#include "datasets/synth.h"
#include "engine/backend_cuda.h"
#include "kt_fixture.h"
#include "kt_test.h"
#include "train/trainer.h"

KT_TEST(test_cuda_train_too_big_for_the_gpu_says_what_to_lower) {
    kt_backend *be = kt_twin_backend();
    kt_err err;
    char data[4096], out[4096];
    snprintf(data, sizeof data, "%s/cuda_oom_data", kt_test_tmpdir());
    snprintf(out, sizeof out, "%s/cuda_oom_run", kt_test_tmpdir());
    kt_synth_opts so;
    kt_synth_opts_default(&so);
    so.out = data, so.classes = 3, so.per_class = 48, so.size = 32, so.overwrite = 1;
    KT_REQUIRE_OK(kt_synth_write(&so, NULL, &err), &err);
    /* convnext_base, batch 64 at 224 px in bf16: 8689 MiB planned (H100 and H200 runs), over a
     * 4096 MiB cap */
    kt_train_config c;
    kt_train_config_default(&c);
    c.data = data, c.out = out, c.arch = "convnext_base", c.folds = 2, c.epochs = 1, c.batch = 64, c.img_size = 224;
    c.backend = be, c.device = "cuda", c.no_plots = 1;
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "bf16", &err), &err);
    KT_REQUIRE_OK(kt_backend_cuda_set_memory_limit(be, 4096, &err), &err);
    kt_status s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_NOMEM, "status %d (%s): %s", (int)s, kt_status_name(s), err.msg);
    KT_CHECK(strstr(err.msg, "convnext_base at batch 64, 224 px does not fit in the GPU's memory") && strstr(err.msg, "--batch") &&
                 strstr(err.msg, "--recompute") && strstr(err.msg, "over the 4096.0 MiB this process may take (KT_CUDA_MEMORY_MIB)"),
             "the message names the model, the fix and the cap: %s", err.msg);
    printf("  %s\n", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
    /* with --recompute already on, only --batch is offered */
    c.recompute = 1;
    s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_NOMEM && strstr(err.msg, "--batch") && !strstr(err.msg, "--recompute"), "with --recompute: %s", err.msg);
    /* no cap, batch 16 at 4096 px: more than any card has (some 600 GB). The stem's output has
     * 2^31 elements, which cuDNN refuses (H200 run 6), so the stem runs as our patch GEMM and the
     * plan reaches the memory it needs; no cuDNN call sees a giant tensor (runs 7, 8) */
    KT_REQUIRE_OK(kt_backend_cuda_set_memory_limit(be, 0, &err), &err);
    c.recompute = 0, c.batch = 16, c.img_size = 4096;
    s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_NOMEM && strstr(err.msg, "convnext_base at batch 16, 4096 px does not fit in the GPU's memory") &&
                 !strstr(err.msg, "KT_CUDA_MEMORY_MIB"),
             "batch 16 at 4096 px: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
    KT_REQUIRE_OK(kt_backend_cuda_set_precision(be, "fp32", &err), &err); /* the other cases' twin backend is strict fp32 */
}
