/* What the fuzz target files share: the invariant failure and the small model the predict and HTTP
 * targets run. Test code only. */
#ifndef KT_FUZZ_INTERNAL_H
#define KT_FUZZ_INTERNAL_H

struct kt_predictor;

/* A broken invariant: prints "fuzz <target>: <what>" and aborts, so the fuzzer (or ctest) keeps the
 * input. */
__attribute__((format(printf, 2, 3), noreturn)) void kt_fuzz_broken(const char *target, const char *fmt, ...);
/* An untrained 4-class smallcnn at 32 px (classes LEVEL_2..LEVEL_5), saved as a checkpoint and opened
 * as the server opens one; made on first use, freed at exit. */
struct kt_predictor *kt_fuzz_model(void);
/* The same checkpoint opened as `serve --max-batch 4` opens it (requests through the batching queue). */
struct kt_predictor *kt_fuzz_model_batched(void);

#endif
