/* Training state for exact resume: roundtrip of moments, counters, RNG streams and arrays, and
 * refusal of a state that does not belong to the model or to the weights loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/train_state.h"
#include "ckpt_testutil.h"
#include "kt_test.h"

typedef struct {
    ckt_model m;
    float **mom, **vel;
    float *store;
} opt_fixture;

static void fixture_init(opt_fixture *o, int n_classes, uint64_t seed) {
    ckt_atto_init(&o->m, n_classes, seed);
    int64_t total = kt_params_count(o->m.p, o->m.n);
    o->store = malloc((size_t)total * 2 * sizeof(float));
    o->mom = malloc((size_t)o->m.n * sizeof(float *));
    o->vel = malloc((size_t)o->m.n * sizeof(float *));
    float *at = o->store;
    for (int i = 0; i < o->m.n; i++) {
        int64_t k = kt_param_numel(&o->m.p[i]);
        o->mom[i] = at;
        o->vel[i] = at + k;
        for (int64_t j = 0; j < k; j++) {
            o->mom[i][j] = (float)seed * 1e-3f + (float)j * 1e-6f;
            o->vel[i][j] = (float)i * 1e-4f + (float)j * 1e-9f;
        }
        at += 2 * k;
    }
}

static void fixture_free(opt_fixture *o) {
    ckt_model_free(&o->m);
    free(o->store);
    free(o->mom);
    free(o->vel);
}

static void fill_state(kt_train_state *s) {
    kt_train_state_init(s);
    s->step = 1234;
    s->epoch = 3;
    s->batch = 17;
    s->fold = 2;
    s->sched_step = 1234;
    s->sched_total = 4000;
    s->loss_scale = 32768.0;
    s->loss_scale_good_steps = 999;
    s->best_metric = 0.875;
    kt_rng r;
    kt_rng_seed(&r, 42);
    kt_rng_u64(&r);
    kt_err err;
    kt_train_state_set_rng(s, "shuffle", &r, &err);
    kt_rng_seed(&r, 7);
    kt_train_state_set_rng(s, "augment", &r, &err);
    int64_t order[5] = {4, 0, 3, 1, 2};
    kt_train_state_set_array(s, "order", order, 5, &err);
    kt_train_state_set_config(s, "{\"model\":\"convnext_atto\",\"lr\":0.0003}", &err);
}

KT_TEST(test_train_state_roundtrip) {
    opt_fixture a, b;
    fixture_init(&a, 6, 1);
    fixture_init(&b, 6, 2);
    memcpy(b.m.storage, a.m.storage, (size_t)kt_params_count(a.m.p, a.m.n) * 4); /* same weights */
    kt_train_state s, r;
    fill_state(&s);
    kt_err err;
    char path[4096], wpath[4096];
    snprintf(wpath, sizeof wpath, "%s/last.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_train_state_path(wpath, path, sizeof path, &err), &err);
    KT_CHECK(strstr(path, "/last.state.safetensors") != NULL, "%s", path);
    KT_REQUIRE_OK(kt_train_state_save(path, a.m.p, a.m.n, a.mom, a.vel, &s, &err), &err);
    KT_REQUIRE_OK(kt_train_state_load(path, b.m.p, b.m.n, b.mom, b.vel, 1, &r, &err), &err);
    int64_t total = kt_params_count(a.m.p, a.m.n);
    KT_CHECK(memcmp(a.store, b.store, (size_t)total * 2 * 4) == 0, "moments restored bit-exactly");
    KT_CHECK(r.step == 1234 && r.epoch == 3 && r.batch == 17 && r.fold == 2 && r.sched_step == 1234 &&
             r.sched_total == 4000 && r.loss_scale == 32768.0 && r.loss_scale_good_steps == 999 && r.best_metric == 0.875);
    const kt_rng *g1 = kt_train_state_get_rng(&r, "shuffle"), *g0 = kt_train_state_get_rng(&s, "shuffle");
    KT_REQUIRE(g1 && g0);
    kt_rng x = *g0, y = *g1;
    KT_CHECK(kt_rng_u64(&x) == kt_rng_u64(&y), "the restored stream continues identically");
    KT_CHECK(kt_train_state_get_rng(&r, "augment") != NULL);
    const kt_ts_array *o = kt_train_state_get_array(&r, "order");
    KT_CHECK(o && o->n == 5 && o->data[0] == 4 && o->data[4] == 2);
    KT_CHECK(r.config_json && strstr(r.config_json, "convnext_atto"));
    kt_train_state_free(&r);
    kt_train_state_free(&s);
    fixture_free(&a);
    fixture_free(&b);
}

KT_TEST(test_train_state_rejects_mismatches) {
    opt_fixture a, b;
    fixture_init(&a, 6, 1);
    fixture_init(&b, 6, 2);
    kt_train_state s, r;
    fill_state(&s);
    kt_err err;
    char path[4096];
    snprintf(path, sizeof path, "%s/x.state.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_train_state_save(path, a.m.p, a.m.n, a.mom, a.vel, &s, &err), &err);
    float keep = b.mom[5][0];
    /* other weights than the ones saved with it */
    KT_CHECK(kt_train_state_load(path, b.m.p, b.m.n, b.mom, b.vel, 1, &r, &err) == KT_ERR_STATE &&
                 strstr(err.msg, "not the ones this state was saved with"), "%s", err.msg);
    KT_CHECK(b.mom[5][0] == keep, "nothing copied on error");
    /* another class count: head moments do not fit */
    opt_fixture c;
    fixture_init(&c, 4, 3);
    KT_CHECK(kt_train_state_load(path, c.m.p, c.m.n, c.mom, c.vel, 0, &r, &err) == KT_ERR_SHAPE &&
                 strstr(err.msg, "'adam_m.head.fc.weight'"), "%s", err.msg);
    fixture_free(&c);
    /* a model with one parameter fewer (same count check fires first) */
    KT_CHECK(kt_train_state_load(path, b.m.p, b.m.n - 1, b.mom, b.vel, 0, &r, &err) == KT_ERR_SHAPE &&
                 strstr(err.msg, "128 parameters, the model has 127"), "%s", err.msg);
    /* a renamed parameter: its moment is missing */
    const char *old = b.m.p[7].name;
    b.m.p[7].name = "stages.0.blocks.0.renamed";
    KT_CHECK(kt_train_state_load(path, b.m.p, b.m.n, b.mom, b.vel, 0, &r, &err) == KT_ERR_FORMAT &&
                 strstr(err.msg, "no 'adam_m.stages.0.blocks.0.renamed'"), "%s", err.msg);
    b.m.p[7].name = old;
    /* weights are not a training state */
    char wpath[4096];
    snprintf(wpath, sizeof wpath, "%s/w.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_model_save(wpath, a.m.p, a.m.n, KT_ST_F32, NULL, &err), &err);
    KT_CHECK(kt_train_state_load(wpath, b.m.p, b.m.n, b.mom, b.vel, 0, &r, &err) == KT_ERR_FORMAT &&
                 strstr(err.msg, "not a training state"), "%s", err.msg);
    /* a config that is not JSON, found after the moments were checked: still nothing copied */
    {
        char *bytes = NULL;
        size_t len = 0;
        KT_REQUIRE_OK(kt_file_read(path, &bytes, &len, &err), &err);
        char *at = memmem(bytes, len, "0.0003}", 7);
        KT_REQUIRE(at, "the config's text in the header");
        at[6] = ','; /* same length: the header stays valid, the config does not */
        char cpath[4096];
        snprintf(cpath, sizeof cpath, "%s/badconfig.state.safetensors", kt_test_tmpdir());
        FILE *f = fopen(cpath, "wb");
        KT_REQUIRE(f && fwrite(bytes, 1, len, f) == len && fclose(f) == 0, "writing %s", cpath);
        free(bytes);
        int64_t total = kt_params_count(b.m.p, b.m.n);
        float *before = malloc((size_t)total * 2 * sizeof(float));
        memcpy(before, b.store, (size_t)total * 2 * sizeof(float));
        KT_CHECK(kt_train_state_load(cpath, b.m.p, b.m.n, b.mom, b.vel, 0, &r, &err) != KT_OK &&
                     strstr(err.msg, "config"), "%s", err.msg);
        KT_CHECK(memcmp(before, b.store, (size_t)total * 2 * sizeof(float)) == 0,
                 "a state refused for its config leaves the moments untouched");
        free(before);
    }
    /* without the hash check the right-shaped state loads */
    KT_CHECK_OK(kt_train_state_load(path, b.m.p, b.m.n, b.mom, b.vel, 0, &r, &err), &err);
    kt_train_state_free(&r);
    /* a missing scalar */
    const char *bad = ckt_write_raw("nostep.safetensors",
                                    "{\"__metadata__\":{\"kind\":\"keratrack-train-state\",\"n_params\":\"0\","
                                    "\"params_hash\":\"0\"}}",
                                    -1, 0);
    KT_CHECK(kt_train_state_load(bad, b.m.p, 0, b.mom, b.vel, 0, &r, &err) == KT_ERR_FORMAT &&
                 strstr(err.msg, "lacks 'state.step'"), "%s", err.msg);
    kt_train_state_free(&s);
    fixture_free(&a);
    fixture_free(&b);
}

KT_TEST(test_train_state_params_hash_sensitivity) {
    ckt_model a;
    ckt_atto_init(&a, 6, 1);
    uint64_t h0 = kt_params_hash(a.p, a.n);
    a.p[a.n - 1].data[0] = nextafterf(a.p[a.n - 1].data[0], 1.0f); /* one ulp in the last parameter */
    KT_CHECK(kt_params_hash(a.p, a.n) != h0);
    a.p[a.n - 1].data[0] = nextafterf(a.p[a.n - 1].data[0], -1.0f);
    KT_CHECK(kt_params_hash(a.p, a.n) == h0);
    ckt_model_free(&a);
}
