/* Counters and latency windows behind one mutex (scrapes are rare; updates are a few stores). */
#include "serve/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COUNTERS 256
#define MAX_SERIES 64

typedef struct {
    double samples[KT_METRICS_WINDOW]; /* ring buffer, seconds */
    int next, filled;
    long long count;
    double sum;
} series;

typedef struct {
    const char *endpoint;
    int status;
    long long n;
} counter;

struct kt_metrics {
    pthread_mutex_t mu;
    counter counters[MAX_COUNTERS];
    int n_counters;
    const char *series_name[MAX_SERIES]; /* endpoint of each request series */
    series *req[MAX_SERIES];
    int n_series;
    series infer;
    series stage[4]; /* a prediction's decode, wait and forward (seconds), and its forward's batch */
};

static const char *const STAGE_NAMES[3] = {"decode", "wait", "forward"};

kt_metrics *kt_metrics_new(void) {
    kt_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void kt_metrics_free(kt_metrics *m) {
    if (!m) return;
    for (int i = 0; i < m->n_series; i++) free(m->req[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void add(series *s, double v) {
    s->samples[s->next] = v;
    s->next = (s->next + 1) % KT_METRICS_WINDOW;
    if (s->filled < KT_METRICS_WINDOW) s->filled++;
    s->count++;
    s->sum += v;
}

void kt_metrics_request(kt_metrics *m, const char *endpoint, int status, double seconds) {
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_counters; i++)
        if (m->counters[i].status == status && !strcmp(m->counters[i].endpoint, endpoint)) break;
    if (i == m->n_counters && m->n_counters < MAX_COUNTERS) m->counters[m->n_counters++] = (counter){endpoint, status, 0};
    if (i < m->n_counters) m->counters[i].n++;
    for (i = 0; i < m->n_series; i++)
        if (!strcmp(m->series_name[i], endpoint)) break;
    if (i == m->n_series && m->n_series < MAX_SERIES && (m->req[i] = calloc(1, sizeof(series)))) {
        m->series_name[i] = endpoint;
        m->n_series++;
    }
    if (i < m->n_series) add(m->req[i], seconds);
    pthread_mutex_unlock(&m->mu);
}

void kt_metrics_inference(kt_metrics *m, double seconds) {
    pthread_mutex_lock(&m->mu);
    add(&m->infer, seconds);
    pthread_mutex_unlock(&m->mu);
}

void kt_metrics_predict_stages(kt_metrics *m, double decode, double wait, double forward, int batch) {
    pthread_mutex_lock(&m->mu);
    add(&m->stage[0], decode);
    add(&m->stage[1], wait);
    add(&m->stage[2], forward);
    add(&m->stage[3], batch);
    pthread_mutex_unlock(&m->mu);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank quantiles of the window; sorted is scratch of KT_METRICS_WINDOW doubles. */
static void quantiles(const series *s, const double *qs, int nq, double *out, double *sorted) {
    memcpy(sorted, s->samples, (size_t)s->filled * sizeof *sorted);
    qsort(sorted, (size_t)s->filled, sizeof *sorted, cmp_double);
    for (int k = 0; k < nq; k++) {
        if (!s->filled) {
            out[k] = NAN;
            continue;
        }
        long rank = (long)ceil(qs[k] * s->filled);
        if (rank < 1) rank = 1;
        out[k] = sorted[rank - 1];
    }
}

static double series_quantile(kt_metrics *m, const series *s, double q, long long *count) {
    double *sorted = malloc(KT_METRICS_WINDOW * sizeof *sorted), v = NAN;
    pthread_mutex_lock(&m->mu);
    if (sorted) quantiles(s, &q, 1, &v, sorted);
    if (count) *count = s->count;
    pthread_mutex_unlock(&m->mu);
    free(sorted);
    return v;
}

double kt_metrics_inference_quantile(kt_metrics *m, double q, long long *count) { return series_quantile(m, &m->infer, q, count); }

double kt_metrics_stage_quantile(kt_metrics *m, int stage, double q, long long *count) {
    if (stage < 0 || stage > 3) {
        if (count) *count = 0;
        return NAN;
    }
    return series_quantile(m, &m->stage[stage], q, count);
}

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->buf ? vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap) : -1;
        va_end(ap);
        if (b->buf && n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 8192;
        char *nb = realloc(b->buf, nc);
        if (!nb) return;
        b->buf = nb;
        b->cap = nc;
    }
}

static void put_summary(sbuf *b, const char *name, const char *labels, const series *s, double *scratch) {
    static const double qs[3] = {0.5, 0.9, 0.99};
    double v[3];
    quantiles(s, qs, 3, v, scratch);
    for (int k = 0; k < 3; k++) {
        if (isnan(v[k])) put(b, "%s{%s%squantile=\"%g\"} NaN\n", name, labels, *labels ? "," : "", qs[k]);
        else put(b, "%s{%s%squantile=\"%g\"} %.6f\n", name, labels, *labels ? "," : "", qs[k], v[k]);
    }
    char braced[200];
    snprintf(braced, sizeof braced, *labels ? "{%s}" : "%s", labels);
    put(b, "%s_sum%s %.6f\n%s_count%s %lld\n", name, braced, s->sum, name, braced, s->count);
}

char *kt_metrics_render(kt_metrics *m, size_t *len) {
    sbuf b = {0};
    double *scratch = malloc(KT_METRICS_WINDOW * sizeof *scratch);
    if (!scratch) return NULL;
    pthread_mutex_lock(&m->mu);
    put(&b, "# HELP keratrack_requests_total HTTP requests by endpoint and status.\n"
            "# TYPE keratrack_requests_total counter\n");
    for (int i = 0; i < m->n_counters; i++)
        put(&b, "keratrack_requests_total{endpoint=\"%s\",status=\"%d\"} %lld\n", m->counters[i].endpoint,
            m->counters[i].status, m->counters[i].n);
    put(&b, "# HELP keratrack_request_seconds Request latency (latest %d per endpoint).\n"
            "# TYPE keratrack_request_seconds summary\n",
        KT_METRICS_WINDOW);
    for (int i = 0; i < m->n_series; i++) {
        char labels[160];
        snprintf(labels, sizeof labels, "endpoint=\"%s\"", m->series_name[i]);
        put_summary(&b, "keratrack_request_seconds", labels, m->req[i], scratch);
    }
    put(&b, "# HELP keratrack_inference_seconds Prediction latency per image: decode, wait for the model, forward "
            "(latest %d).\n"
            "# TYPE keratrack_inference_seconds summary\n",
        KT_METRICS_WINDOW);
    put_summary(&b, "keratrack_inference_seconds", "", &m->infer, scratch);
    /* which stage bounds the throughput: decoding (more --threads), the model (a GPU), or the queue */
    put(&b, "# HELP keratrack_predict_stage_seconds A prediction's stages: decode (image to input, beside other "
            "requests), wait (for other requests' forwards), forward (the model) (latest %d each).\n"
            "# TYPE keratrack_predict_stage_seconds summary\n",
        KT_METRICS_WINDOW);
    for (int k = 0; k < 3; k++) {
        char labels[32];
        snprintf(labels, sizeof labels, "stage=\"%s\"", STAGE_NAMES[k]);
        put_summary(&b, "keratrack_predict_stage_seconds", labels, &m->stage[k], scratch);
    }
    put(&b, "# HELP keratrack_predict_batch_size Requests answered by the forward that answered a prediction "
            "(1 unless serve --max-batch groups them; latest %d).\n"
            "# TYPE keratrack_predict_batch_size summary\n",
        KT_METRICS_WINDOW);
    put_summary(&b, "keratrack_predict_batch_size", "", &m->stage[3], scratch);
    pthread_mutex_unlock(&m->mu);
    free(scratch);
    if (len) *len = b.len;
    return b.buf;
}
