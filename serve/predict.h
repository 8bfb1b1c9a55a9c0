/* Inference for the CLI and the server: one checkpoint or a fold ensemble, images in (JPEG/PNG
 * bytes or files), class probabilities out, preprocessed exactly as training's evaluation path. */
#ifndef KT_PREDICT_H
#define KT_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct kt_predictor kt_predictor;

/* Opens n_ckpt checkpoints (all with the same classes) on device "cpu", "cuda", "cuda:N" or "auto"
 * (the first GPU when built with CUDA and one is present; engine/device_spec.h). threads <= 0 keeps the OpenMP default.
 * batch: images per forward pass (>= 1). An error of the device (an unknown name, a GPU that
 * cannot be used) has a message beginning with "device " (kt_predictor_device_error), so callers
 * can point at --device rather than at the checkpoints. */
kt_status kt_predictor_open(kt_predictor **out, const char *const *ckpt_paths, int n_ckpt, const char *device, int threads,
                            kt_err *err);
kt_status kt_predictor_open_batched(kt_predictor **out, const char *const *ckpt_paths, int n_ckpt, const char *device,
                                    int threads, int batch, kt_err *err);
/* 1 when err is a device error of kt_predictor_open (see there). */
int kt_predictor_device_error(const kt_err *err);
int kt_predictor_num_classes(const kt_predictor *p);
const char *kt_predictor_class_name(const kt_predictor *p, int i);
const char *kt_predictor_arch(const kt_predictor *p);
const char *kt_predictor_device(const kt_predictor *p);
int kt_predictor_image_size(const kt_predictor *p); /* model input side in pixels */
/* 1: the checkpoints were trained multi-label (their "task" metadata), so each class probability is
 * its own sigmoid and several classes can be present; 0: one softmax over the classes. */
int kt_predictor_multilabel(const kt_predictor *p);
/* on = 1: decode JPEGs at 1/2..1/8 scale when the image stays at least the model's input size (a
 * 12 MP photo in ~15 ms instead of ~37), at the cost of pixels that are no longer exactly PIL's
 * (probabilities move by ~1e-3; bench/README section 4). Default 0. Set before sharing it. */
void kt_predictor_set_fast_decode(kt_predictor *p, int on);
/* Images are decoded side by side (a batch's, concurrent callers') only while their source pixels
 * add up to at most `pixels` (<= 0: the default, 100 megapixels, the decoder's own limit on one
 * image, about 300 MB of RGB); an image over it alone still decodes, alone. */
void kt_predictor_set_decode_budget(kt_predictor *p, int64_t pixels);
/* The most source pixels that were being decoded at once so far (for tests and tuning). */
int64_t kt_predictor_decode_peak(kt_predictor *p);

/* Decodes JPEG/PNG bytes, preprocesses as in training, runs the (ensemble) forward; probs has
 * num_classes floats (softmax, or sigmoids for a multi-label model, averaged over the ensemble). Thread-safe: concurrent calls decode at
 * once and take turns for the forward. */
kt_status kt_predictor_run_bytes(kt_predictor *p, const void *bytes, size_t len, float *probs, kt_err *err);

/* Where the time of one kt_predictor_run_bytes_timed call went, in seconds. */
typedef struct kt_predict_times {
    double decode;  /* decoding and preprocessing the image (beside other calls) */
    double wait;    /* waiting for other calls' forwards to finish */
    double forward; /* the (ensemble) forward and softmax */
    int batch;      /* requests that forward answered (1 unless batching is on) */
} kt_predict_times;

#define KT_PREDICT_MAX_BATCH 64

/* Request batching for concurrent kt_predictor_run_bytes callers (serve --max-batch): those that
 * arrive while a forward runs queue up, and the next forward answers as many of them as the largest
 * graph they fill (graphs of batch 2, 4, ..., max_batch sharing the parameters are built here; no
 * padding rows are computed; a lone request still runs the batch-1 graph, as without batching). A batched answer can differ
 * from the answer alone in the last bits (another GEMM blocking). Needs a predictor opened with
 * batch 1; call before the predictor is shared. max_batch 1: off (the default). */
kt_status kt_predictor_set_max_batch(kt_predictor *p, int max_batch, kt_err *err);
/* Forwards run for batched requests and the requests they answered, and those queued now. */
void kt_predictor_batch_stats(kt_predictor *p, long long *forwards, long long *answered, int *queued);
/* Tests: hold = 1 keeps queued requests from starting a forward (they pile up), 0 lets them go. */
void kt_predictor_hold_batches(kt_predictor *p, int hold);

/* kt_predictor_run_bytes that also fills *t (t may be NULL); on an error the stages not reached are 0. */
kt_status kt_predictor_run_bytes_timed(kt_predictor *p, const void *bytes, size_t len, float *probs, kt_predict_times *t,
                                       kt_err *err);
/* Files in batches of the predictor's batch size; probs is (n, num_classes). A file that cannot
 * be decoded fails the call with its path named. */
kt_status kt_predictor_run_files(kt_predictor *p, const char *const *paths, int n, float *probs, kt_err *err);
/* Grad-CAM of class cls (-1: the predicted class) for one image, from the first checkpoint of the
 * ensemble: writes a PNG of the image with the heat map over it. *cls_out gets the class used. */
kt_status kt_predictor_gradcam(kt_predictor *p, const char *image_path, int cls, const char *out_png, int *cls_out,
                               kt_err *err);
void kt_predictor_free(kt_predictor *p);

#endif
