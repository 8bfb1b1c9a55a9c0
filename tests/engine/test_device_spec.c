/* Device names (kt_device_spec_parse): what --device takes in train, eval, predict and serve, the
 * canonical name printed back, and the message a wrong one gets. */
#include <string.h>

#include "engine/device_spec.h"
#include "kt_test.h"

static int parses(const char *text, int allow_auto, kt_device dev, int index, int is_auto, const char *name) {
    kt_device_spec d = {KT_CPU, -7, -7};
    kt_err err = {0};
    char back[32];
    if (kt_device_spec_parse(text, allow_auto, &d, &err) != KT_OK) return 0;
    kt_device_spec_name(&d, back, sizeof back);
    return d.device == dev && d.index == index && d.is_auto == is_auto && !strcmp(back, name);
}

KT_TEST(test_device_spec_accepts_cpu_cuda_and_indices) {
    KT_CHECK(parses("cpu", 0, KT_CPU, 0, 0, "cpu"), "cpu");
    KT_CHECK(parses("cuda", 0, KT_CUDA, 0, 0, "cuda"), "cuda is GPU 0");
    KT_CHECK(parses("cuda:0", 0, KT_CUDA, 0, 0, "cuda"), "cuda:0 is plain cuda");
    KT_CHECK(parses("cuda:1", 0, KT_CUDA, 1, 0, "cuda:1"), "cuda:1");
    KT_CHECK(parses("cuda:07", 0, KT_CUDA, 7, 0, "cuda:7"), "a leading zero");
    KT_CHECK(parses("cuda:1023", 0, KT_CUDA, 1023, 0, "cuda:1023"), "the largest index");
    KT_CHECK(parses("auto", 1, KT_CUDA, 0, 1, "auto"), "auto where allowed");
}

KT_TEST(test_device_spec_refuses_bad_names_saying_what_is_taken) {
    static const char *const bad[] = {"gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda: 1", "cuda:1 ", "cuda:0x1",
                                      "cuda:1024", "cuda:99999999999999999999", "cuda1", "cpu:0", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kt_device_spec d;
        kt_err err = {0};
        kt_status s = kt_device_spec_parse(bad[i], 1, &d, &err);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "device '%s'", bad[i]);
        KT_CHECK(s == KT_ERR_ARG && !strncmp(err.msg, quoted, strlen(quoted)), "'%s': status %d, message: %s", bad[i], (int)s, err.msg);
    }
    kt_device_spec d;
    kt_err err = {0};
    KT_CHECK(kt_device_spec_parse("tpu", 0, &d, &err) == KT_ERR_ARG && strstr(err.msg, "cpu, cuda or cuda:N") && !strstr(err.msg, "auto"),
             "the list names what this caller takes: %s", err.msg);
    KT_CHECK(kt_device_spec_parse("auto", 0, &d, &err) == KT_ERR_ARG && strstr(err.msg, "'auto' is not taken here"),
             "auto where not allowed: %s", err.msg);
    KT_CHECK(kt_device_spec_parse("cuda:1024", 0, &d, &err) == KT_ERR_ARG && strstr(err.msg, "0..1023"), "range named: %s", err.msg);
    KT_CHECK(kt_device_spec_parse("cuda:x", 0, &d, &err) == KT_ERR_ARG && strstr(err.msg, "must be a number"), "not a number: %s", err.msg);
    KT_CHECK(kt_device_spec_parse(NULL, 1, &d, &err) == KT_ERR_ARG, "NULL refused");
}
