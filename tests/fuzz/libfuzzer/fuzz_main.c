/* libFuzzer entry point for one target of fuzz_targets.h, chosen at build time (KT_FUZZ_TARGET, set
 * by CMake per executable fuzz_<target>). Built only with -DKT_FUZZ=ON and clang. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_targets.h"

#define KT_FUZZ_CAT(a, b) a##b
#define KT_FUZZ_FN(t) KT_FUZZ_CAT(kt_fuzz_, t)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return KT_FUZZ_FN(KT_FUZZ_TARGET)(data, size); }
