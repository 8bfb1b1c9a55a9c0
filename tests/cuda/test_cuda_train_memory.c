/* `keratrack train --device cuda` with a model and batch too big for the GPU: an error that says so
 * and names what lowers the need (--batch, --recompute), before anything is trained or written
 * beside the run's configuration. One batch more and the stem's output passes cuDNN's limit of
 * 2^31-1 elements a tensor, which cuDNN refuses before memory is counted (H200 run 6): that error
 * names the tensor and what shrinks it. */
#include <stdio.h>
#include <string.h>

#include "cuda_twin.h"
#include "datasets/synth.h"
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
    so.out = data, so.classes = 3, so.per_class = 12, so.size = 32, so.overwrite = 1;
    KT_REQUIRE_OK(kt_synth_write(&so, NULL, &err), &err);
    /* convnext_base at 4096 px, batch 15: about 700 GB of activations, more than any GPU has; the
     * stem's output (15, 1024, 1024, 128) stays under cuDNN's 2^31 elements */
    kt_train_config c;
    kt_train_config_default(&c);
    c.data = data, c.out = out, c.arch = "convnext_base", c.folds = 2, c.epochs = 1, c.batch = 15, c.img_size = 4096;
    c.backend = be, c.device = "cuda", c.no_plots = 1;
    kt_status s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_NOMEM, "status %d (%s): %s", (int)s, kt_status_name(s), err.msg);
    KT_CHECK(strstr(err.msg, "convnext_base at batch 15, 4096 px does not fit in the GPU's memory") && strstr(err.msg, "--batch") &&
                 strstr(err.msg, "--recompute") && strstr(err.msg, "MiB"),
             "the message names the model, the fix and the size: %s", err.msg);
    printf("  %s\n", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
    /* with --recompute already on, only --batch is offered */
    c.recompute = 1;
    s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_NOMEM && strstr(err.msg, "--batch") && !strstr(err.msg, "--recompute"), "with --recompute: %s", err.msg);
    /* batch 16: the stem's output has exactly 2^31 elements */
    c.recompute = 0, c.batch = 16;
    s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s != KT_OK && strstr(err.msg, "output (16, 1024, 1024, 128) has 2147483648 elements, more than cuDNN takes in one tensor") &&
                 strstr(err.msg, "smaller batch or image size"),
             "batch 16: status %d: %s", (int)s, err.msg);
    printf("  %s\n", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
}
