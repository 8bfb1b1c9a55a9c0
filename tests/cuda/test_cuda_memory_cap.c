/* KT_CUDA_MEMORY_MIB: a cap on what the backend's graphs take on the GPU (sharing a card). Past it an
 * allocation fails as on a full card, naming the cap; freeing gives the room back; a value that is
 * not a whole number of MiB above 0 refuses the backend, naming the variable. */
#include <stdlib.h>
#include <string.h>

#include "cuda_twin.h"
#include "engine/backend_cuda.h"
#include "kt_test.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

KT_TEST(test_cuda_memory_cap_from_env) {
    kt_twin_backend(); /* skips without a device */
#ifdef KT_HAVE_CUDA
    kt_err err;
    kt_backend *be = NULL;
    KT_REQUIRE(setenv("KT_CUDA_MEMORY_MIB", "3", 1) == 0, "setenv");
    kt_status s = kt_backend_cuda_create(&be, 0, &err);
    unsetenv("KT_CUDA_MEMORY_MIB");
    KT_REQUIRE_OK(s, &err);
    kt_cuda_ctx *c = (kt_cuda_ctx *)be->ctx;
    KT_CHECK(kt_cuda_ctx_memory_limit(c) == (size_t)3 << 20, "cap %zu bytes", kt_cuda_ctx_memory_limit(c));
    void *a = NULL, *b = NULL;
    KT_CHECK(kt_cuda_ctx_alloc(c, &a, (size_t)2 << 20) == 0 && a, "2 of 3 MiB: %s", kt_cuda_ctx_error(c));
    KT_CHECK(kt_cuda_ctx_memory_used(c) == (size_t)2 << 20, "in use %zu", kt_cuda_ctx_memory_used(c));
    KT_CHECK(kt_cuda_ctx_alloc(c, &b, (size_t)2 << 20) != 0 && !b, "2 more MiB passed the 3 MiB cap");
    const char *m = kt_cuda_ctx_error(c);
    KT_CHECK(strstr(m, "cannot allocate 2.0 MiB") && strstr(m, "over the 3.0 MiB this process may take (KT_CUDA_MEMORY_MIB)") &&
                 strstr(m, "2.0 MiB of it in use"),
             "the refusal names the cap and what is in use: %s", m);
    /* through the backend: KT_ERR_NOMEM, the status a full card gives */
    void *p = NULL;
    s = be->alloc(be, (size_t)2 << 20, &p, &err);
    KT_CHECK(s == KT_ERR_NOMEM && !p && strstr(err.msg, "KT_CUDA_MEMORY_MIB"), "backend alloc past the cap: %d %s", (int)s, err.msg);
    kt_cuda_ctx_free(c, a);
    KT_CHECK(kt_cuda_ctx_memory_used(c) == 0, "in use after the free: %zu", kt_cuda_ctx_memory_used(c));
    KT_CHECK(kt_cuda_ctx_alloc(c, &b, (size_t)3 << 20) == 0 && b, "the freed room is not given back: %s", kt_cuda_ctx_error(c));
    kt_cuda_ctx_free(c, b);
    /* the backend's setter lifts it */
    KT_REQUIRE_OK(kt_backend_cuda_set_memory_limit(be, 0, &err), &err);
    KT_CHECK(kt_cuda_ctx_alloc(c, &b, (size_t)8 << 20) == 0 && b, "no cap: %s", kt_cuda_ctx_error(c));
    kt_cuda_ctx_free(c, b);
    be->destroy(be);

    static const char *bad[] = {"0", "-4", "12x", "lots", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        KT_REQUIRE(setenv("KT_CUDA_MEMORY_MIB", bad[i], 1) == 0, "setenv");
        be = NULL;
        s = kt_backend_cuda_create(&be, 0, &err);
        unsetenv("KT_CUDA_MEMORY_MIB");
        KT_CHECK(s != KT_OK && !be && strstr(err.msg, "KT_CUDA_MEMORY_MIB=") && strstr(err.msg, bad[i]) && strstr(err.msg, "whole number of MiB"),
                 "KT_CUDA_MEMORY_MIB=%s: status %d: %s", bad[i], (int)s, err.msg);
        if (be) be->destroy(be);
    }
#endif
}
