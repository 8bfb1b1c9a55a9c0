/* The training state saved beside a run's weights so `--resume` continues exactly: AdamW moments
 * per parameter, step counters, schedule position, RNG streams, loss scale, data position.
 *
 * File layout (a safetensors file, atomic save):
 *   "adam_m.<param name>", "adam_v.<param name>"  F32, the parameter's own (our) shape
 *   "state.step", "state.epoch", "state.batch", "state.fold", "state.sched_step",
 *   "state.sched_total", "state.loss_scale_good_steps"          I64 scalars
 *   "state.loss_scale", "state.best_metric"                      F64 scalars
 *   "rng.<stream name>"                                          I64 [4] (xoshiro state, bit-cast)
 *   "array.<name>"                                               I64 [n] (e.g. the epoch's data order)
 *   metadata "kind" = "keratrack-train-state", "version" = "1", "params_hash" (hex of
 *   kt_params_hash of the weights saved with it), "n_params", "config" (the run's settings, JSON). */
#ifndef KT_TRAIN_STATE_H
#define KT_TRAIN_STATE_H

#include <stdint.h>

#include "base/rng.h"
#include "base/status.h"
#include "checkpoints/model_io.h"

#define KT_TS_MAX_RNG 8
#define KT_TS_MAX_ARRAYS 8
#define KT_TS_NAME_MAX 48

typedef struct kt_ts_array {
    char name[KT_TS_NAME_MAX];
    int64_t n;
    int64_t *data;             /* (n) owned by the state */
} kt_ts_array;

typedef struct kt_train_state {
    int64_t step;              /* optimizer steps taken (AdamW's t) */
    int64_t epoch;             /* epoch in progress, 0-based */
    int64_t batch;             /* batches already done in that epoch */
    int64_t fold;              /* K-fold index, -1 when none */
    int64_t sched_step;        /* scheduler steps taken */
    int64_t sched_total;       /* the schedule's total steps (a resume with another total is refused by the trainer) */
    double loss_scale;         /* dynamic loss scale; 1 when unused */
    int64_t loss_scale_good_steps; /* steps since the last overflow */
    double best_metric;        /* best validation metric so far (for best-checkpoint keeping) */
    int n_rng;
    char rng_names[KT_TS_MAX_RNG][KT_TS_NAME_MAX];
    kt_rng rng[KT_TS_MAX_RNG];
    int n_arrays;
    kt_ts_array arrays[KT_TS_MAX_ARRAYS];
    char *config_json;         /* owned JSON text of the run's settings, or NULL */
    uint64_t params_hash;      /* kt_params_hash of the weights this state belongs to (set by save) */
} kt_train_state;

void kt_train_state_init(kt_train_state *s);
void kt_train_state_free(kt_train_state *s);
/* Adds or replaces a named RNG stream (copied). */
kt_status kt_train_state_set_rng(kt_train_state *s, const char *name, const kt_rng *r, kt_err *err);
const kt_rng *kt_train_state_get_rng(const kt_train_state *s, const char *name);
/* Adds or replaces a named int64 array (copied). */
kt_status kt_train_state_set_array(kt_train_state *s, const char *name, const int64_t *data, int64_t n, kt_err *err);
const kt_ts_array *kt_train_state_get_array(const kt_train_state *s, const char *name);
kt_status kt_train_state_set_config(kt_train_state *s, const char *json, kt_err *err);

/* Saves s plus the moments m[i], v[i] (each numel(params[i]) f32) of the n parameters. The
 * parameters' current values are hashed into the file so load can refuse a mismatched pair. */
kt_status kt_train_state_save(const char *path, const kt_param_ref *params, int n, float *const *m, float *const *v,
                              const kt_train_state *s, kt_err *err);
/* Loads into s (initialised here) and the caller's m[i], v[i]. Every parameter must have both
 * moments with its shape and no moment may be for an unknown parameter. When check_hash is set,
 * the parameters (already loaded from the weights file) must hash to the saved value. Nothing is
 * copied into m, v on error. */
kt_status kt_train_state_load(const char *path, const kt_param_ref *params, int n, float **m, float **v,
                              int check_hash, kt_train_state *s, kt_err *err);

/* "<dir>/<name>.safetensors" -> "<dir>/<name>.state.safetensors" (the state beside its weights). */
kt_status kt_train_state_path(const char *weights_path, char *out, size_t len, kt_err *err);

#endif
