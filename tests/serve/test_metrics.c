/* Server metrics: nearest-rank quantiles over the sliding window, counters, Prometheus text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kt_test.h"
#include "serve/metrics.h"

KT_TEST(test_metrics_quantiles_and_text) {
    kt_metrics *m = kt_metrics_new();
    KT_REQUIRE(m);
    long long n = -1;
    KT_CHECK(isnan(kt_metrics_inference_quantile(m, 0.5, &n)) && n == 0);
    /* 1..100 ms in shuffled order: p50 = 50 ms, p99 = 99 ms, p100 = 100 ms (nearest rank). */
    for (int i = 0; i < 100; i++) kt_metrics_inference(m, ((i * 37) % 100 + 1) / 1000.0);
    KT_CHECK_NEAR(kt_metrics_inference_quantile(m, 0.5, &n), 0.050, 1e-12);
    KT_CHECK(n == 100);
    KT_CHECK_NEAR(kt_metrics_inference_quantile(m, 0.99, NULL), 0.099, 1e-12);
    KT_CHECK_NEAR(kt_metrics_inference_quantile(m, 1.0, NULL), 0.100, 1e-12);
    /* The window keeps the newest samples only. */
    for (int i = 0; i < KT_METRICS_WINDOW; i++) kt_metrics_inference(m, 1.0);
    KT_CHECK_NEAR(kt_metrics_inference_quantile(m, 0.01, &n), 1.0, 0);
    KT_CHECK(n == 100 + KT_METRICS_WINDOW);
    kt_metrics_request(m, "/history", 200, 0.002);
    kt_metrics_request(m, "/history", 200, 0.004);
    kt_metrics_request(m, "/history", 401, 0.001);
    size_t len = 0;
    char *text = kt_metrics_render(m, &len);
    KT_REQUIRE(text && len == strlen(text));
    KT_CHECK(strstr(text, "keratrack_requests_total{endpoint=\"/history\",status=\"200\"} 2\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_requests_total{endpoint=\"/history\",status=\"401\"} 1\n"));
    KT_CHECK(strstr(text, "keratrack_request_seconds{endpoint=\"/history\",quantile=\"0.5\"} 0.002000\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_request_seconds_count{endpoint=\"/history\"} 3\n"));
    KT_CHECK(strstr(text, "keratrack_inference_seconds{quantile=\"0.99\"} 1.000000\n"));
    KT_CHECK(strstr(text, "# TYPE keratrack_inference_seconds summary\n"));
    free(text);
    kt_metrics_free(m);
}

/* A prediction's stages go to their own series, so /metrics tells decoding, queueing and the model
 * apart: each stage's quantiles from its own samples, labelled by stage. */
KT_TEST(test_metrics_predict_stages) {
    kt_metrics *m = kt_metrics_new();
    KT_REQUIRE(m);
    long long n = -1;
    KT_CHECK(isnan(kt_metrics_stage_quantile(m, 0, 0.5, &n)) && n == 0, "empty decode series");
    for (int i = 1; i <= 10; i++) kt_metrics_predict_stages(m, 0.010 * i, 0.001 * i, 0.100 * i, i <= 5 ? 1 : 4);
    KT_CHECK_NEAR(kt_metrics_stage_quantile(m, 0, 0.5, &n), 0.050, 1e-12);
    KT_CHECK(n == 10, "decode samples %lld", n);
    KT_CHECK_NEAR(kt_metrics_stage_quantile(m, 1, 0.9, NULL), 0.009, 1e-12);
    KT_CHECK_NEAR(kt_metrics_stage_quantile(m, 2, 1.0, NULL), 1.000, 1e-12);
    KT_CHECK_NEAR(kt_metrics_stage_quantile(m, 3, 0.5, NULL), 1.0, 0);
    KT_CHECK_NEAR(kt_metrics_stage_quantile(m, 3, 0.9, NULL), 4.0, 0);
    KT_CHECK(isnan(kt_metrics_stage_quantile(m, 4, 0.5, &n)) && n == 0, "no fifth series");
    long long ni = -1;
    kt_metrics_inference_quantile(m, 0.5, &ni);
    KT_CHECK(ni == 0, "stages are not inference samples (%lld)", ni);
    char *text = kt_metrics_render(m, NULL);
    KT_REQUIRE(text);
    KT_CHECK(strstr(text, "# TYPE keratrack_predict_stage_seconds summary\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_predict_stage_seconds{stage=\"decode\",quantile=\"0.5\"} 0.050000\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_predict_stage_seconds{stage=\"wait\",quantile=\"0.9\"} 0.009000\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_predict_stage_seconds{stage=\"forward\",quantile=\"0.99\"} 1.000000\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_predict_stage_seconds_count{stage=\"forward\"} 10\n"), "%s", text);
    KT_CHECK(strstr(text, "keratrack_predict_batch_size{quantile=\"0.9\"} 4.000000\n"), "%s", text);
    free(text);
    kt_metrics_free(m);
}
