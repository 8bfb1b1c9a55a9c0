/* Shared state of one training run between the trainer's parts: setup and fold loop (trainer.c),
 * one fold's epochs (trainer_fold.c), the resumable state (trainer_state.c), final reports
 * (trainer_report.c). Not a public interface. */
#ifndef KT_TRAINER_INTERNAL_H
#define KT_TRAINER_INTERNAL_H

#include <stdint.h>

#include "checkpoints/train_state.h"
#include "datasets/folds.h"
#include "datasets/roboflow.h"
#include "nets/model.h"
#include "train/optim.h"
#include "train/report_log.h"
#include "train/loss_scale.h"
#include "train/trainer.h"

/* ImageNet normalisation (the seed's preprocessing), stored in every checkpoint. */
extern const float kt_train_mean[3], kt_train_std[3];

typedef struct kt_run {
    const kt_train_config *c;
    kt_dataset ds;
    kt_folds folds;
    int C;                     /* classes */
    int multilabel;
    int eval_batch;
    char dir[4096];            /* out/{arch}: log, reports, resume state */
    char resume_w[4200];       /* out/{arch}/resume.safetensors */
    char resume_s[4200];       /* out/{arch}/resume.state.safetensors */
    char resume_p[4200];       /* out/{arch}/resume.prev.safetensors: the weights the state on disk may still belong to */
    char *config_json;         /* the settings that decide the results (compared on resume) */

    kt_model train;            /* training graph (owns the parameters) */
    kt_model eval;             /* evaluation graph sharing train's parameters */
    int n_trainable;
    kt_param_ref *trainable;   /* (n_trainable) train.refs without BatchNorm state: what has moments */

    kt_epoch_record *recs;     /* (n_recs) every finished epoch of every fold so far */
    int n_recs, cap_recs;

    /* resume: the saved position (fold, epoch, batch) when continuing a run */
    int have_state;
    kt_train_state st;
    float *st_m, *st_v;        /* (n_param_elems) moments read from the state, host */

    int complete;              /* --resume found this model's run already finished */
    kt_train_result done;      /* its recorded results */
    int64_t steps;             /* optimizer steps run by this call (for stop_after_steps) */
    uint64_t final_hash;       /* parameters' hash after the latest fold finished in this call */
    int folds_done;
    int wait_hinted;           /* the log has said once that the model waits on the loader */
} kt_run;

/* Seeds derived from the run's seed for fold f (0-based): model init, data order/augmentation,
 * dropout and drop-path masks. */
uint64_t kt_run_seed(const kt_run *r, int f, uint64_t purpose);
#define KT_SEED_INIT 0x696e6974ull
#define KT_SEED_DATA 0x64617461ull
#define KT_SEED_DROP 0x64726f70ull

/* 1 when a stop was requested (signal or stop_after_steps). */
int kt_run_should_stop(const kt_run *r);

/* Paths: out/{arch}_fold{f+1}_best.safetensors. */
void kt_run_best_path(const kt_run *r, int f, char *buf, size_t n);

/* trainer_fold.c: trains fold f from the start or from the loaded state. */
kt_status kt_run_fold(kt_run *r, int f, kt_err *err);

/* trainer_state.c */
/* The JSON of the settings that decide the results. */
kt_status kt_run_config_json(kt_run *r, kt_err *err);
/* Where a run stands: the next batch to run and the fold's schedule and best metric. */
typedef struct kt_run_pos {
    int fold, epoch;          /* 0-based; fold == K: every fold is done */
    int64_t batch;            /* batches of that epoch already done */
    int64_t sched_step;       /* scheduler steps taken in the fold */
    int64_t sched_total;      /* the fold's schedule length (epochs x batches) */
    double best;              /* best validation score of the fold so far (-1: none) */
    int best_epoch;           /* 1-based epoch of it (0: none) */
} kt_run_pos;

/* Saves weights + state at pos with the partial-epoch sums acc (n_acc values, doubles bit-cast) and,
 * when ls is given, the loss scaler's scale, good-step count and skipped-step count. */
kt_status kt_run_state_save(kt_run *r, const kt_adamw *opt, const kt_loss_scaler *ls, const kt_run_pos *pos,
                            const int64_t *acc, int n_acc, kt_err *err);
/* Loads the state of a run in r->dir into r->st (have_state = 1), refusing another configuration;
 * absent state: have_state = 0 and KT_OK. The weights are loaded only when the position is inside
 * a fold (loaded into r->train). */
kt_status kt_run_state_load(kt_run *r, kt_err *err);
/* Once the run is complete: removes the resume files and writes out/{arch}/run_complete.json (the
 * settings and the results), so that a later --resume (e.g. of --models A B interrupted in B) knows
 * this model is done instead of starting it again. */
kt_status kt_run_mark_complete(kt_run *r, const kt_train_result *res, kt_err *err);
/* 1 when out/{arch}/run_complete.json records a finished run with this run's settings; fills res. */
int kt_run_find_complete(kt_run *r, kt_train_result *res);
/* Removes the folder's completion record (a new run begins there). */
void kt_run_forget_complete(kt_run *r);

/* trainer_report.c: OOF / TEST (/ VALID holdout) probabilities from the best checkpoints,
 * the CSVs, the reports and the learning curves. */
kt_status kt_run_reports(kt_run *r, kt_train_result *res, kt_err *err);

/* Appends an epoch record and rewrites metrics.jsonl. */
kt_status kt_run_log_epoch(kt_run *r, const kt_epoch_record *rec, kt_err *err);

#endif
