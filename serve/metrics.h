/* Server metrics for GET /metrics: request counts per endpoint and status, and latency percentiles
 * (requests per endpoint, model inference) over a sliding window of the latest samples. */
#ifndef KT_SERVE_METRICS_H
#define KT_SERVE_METRICS_H

#include <stddef.h>

#define KT_METRICS_WINDOW 4096 /* latency samples kept per series (the newest) */

typedef struct kt_metrics kt_metrics;

kt_metrics *kt_metrics_new(void);
void kt_metrics_free(kt_metrics *m);

/* Thread-safe. endpoint is a route pattern ("/history", "/history/{id}", "other"); it must outlive m
 * (route patterns are static strings). */
void kt_metrics_request(kt_metrics *m, const char *endpoint, int status, double seconds);
void kt_metrics_inference(kt_metrics *m, double seconds);
/* One prediction's stages (kt_predict_times): decoding, waiting for the model, the forward, and
 * how many requests that forward answered (1 unless serve --max-batch groups them). */
void kt_metrics_predict_stages(kt_metrics *m, double decode, double wait, double forward, int batch);

/* The latest-window quantile q in [0,1] of the inference series (NAN when empty), and its count. */
double kt_metrics_inference_quantile(kt_metrics *m, double q, long long *count);
/* The same of a stage series: 0 decode, 1 wait, 2 forward, 3 the batch sizes. */
double kt_metrics_stage_quantile(kt_metrics *m, int stage, double q, long long *count);

/* Prometheus text exposition; malloc'd, NUL-terminated, *len without the NUL. */
char *kt_metrics_render(kt_metrics *m, size_t *len);

#endif
