/* Entry points that feed arbitrary bytes to the parsers a user's file or an upload reaches:
 * safetensors files (+ checkpoint metadata, inspection and rewrites), weights loading and --resume
 * training states (fuzz_checkpoints.c); CSV records and Roboflow _classes.csv exports
 * (fuzz_datasets.c); JPEG/PNG decoding and a prediction on the decoded upload (fuzz_images.c); the
 * diet engine's assessment JSON, history CSV and meal library, and requests to the HTTP API
 * (fuzz_serve.c). Each returns normally on any input, good or bad; a broken invariant (a probe and
 * a decode that disagree, an accepted file whose tensors leave the mapping, a rewrite that reads
 * back differently) prints what broke and aborts.
 * Used by test_fuzz_corpus.c (every stored input plus deterministic mutations, in every CI run)
 * and by libfuzzer/fuzz_main.c (coverage-guided runs with clang: tests/fuzz/run_libfuzzer.sh). */
#ifndef KT_FUZZ_TARGETS_H
#define KT_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*kt_fuzz_fn)(const uint8_t *data, size_t len);

int kt_fuzz_safetensors(const uint8_t *data, size_t len);
/* byte 0: strict or fine-tuning load (weights) / check the parameters' hash (train_state); then a
 * safetensors file loaded into two small parameters (a 4-D-stored 1x1 conv weight, a head bias).
 * A failed load that changes a parameter or a moment breaks the invariant. */
int kt_fuzz_weights(const uint8_t *data, size_t len);
int kt_fuzz_train_state(const uint8_t *data, size_t len);
/* Writes a valid weights file and training state for those parameters (the targets' seeds). */
int kt_fuzz_write_seeds(const char *weights_path, const char *state_path);
int kt_fuzz_csv(const uint8_t *data, size_t len);
int kt_fuzz_image(const uint8_t *data, size_t len);
/* JPEG/PNG bytes (up to 1 Mpx) through a predictor, as POST /predict runs them: decode, EXIF,
 * resize and crop, an untrained 4-class smallcnn at 32 px; the probabilities must be a distribution. */
int kt_fuzz_predict(const uint8_t *data, size_t len);
/* assessment JSON, a NUL byte, history CSV: both parsed, and when both are valid a whole plan. */
int kt_fuzz_diet(const uint8_t *data, size_t len);
int kt_fuzz_meals(const uint8_t *data, size_t len);
/* A Roboflow export: byte 0 sets strict and the label kind; then train/_classes.csv, a NUL,
 * valid/_classes.csv (a.jpg, b.jpg, c.png exist in both). Invariants: unique class names, splits
 * that add up, 0/1 targets (one-hot when single-label), no item twice. */
int kt_fuzz_dataset(const uint8_t *data, size_t len);
/* A request to the HTTP API (one server per process with kt_fuzz_predict's model, a signed-in user):
 * byte 0 picks the path, byte 1 the method, Authorization and Content-Type; then the query string,
 * a NUL, the body. No answer, a 5xx or an API error that is not JSON breaks it.
 * KT_FUZZ_VERBOSE=1 prints each request's status. */
int kt_fuzz_http(const uint8_t *data, size_t len);
void kt_fuzz_http_stop(void); /* stops that server and removes its database (also at exit) */

typedef struct kt_fuzz_target {
    const char *name; /* the corpus folder tests/fuzz/corpus/<name>/ */
    kt_fuzz_fn fn;
} kt_fuzz_target;

/* Every target, NULL-terminated; kt_fuzz_find returns NULL for an unknown name. */
extern const kt_fuzz_target kt_fuzz_targets[];
const kt_fuzz_target *kt_fuzz_find(const char *name);

#endif
