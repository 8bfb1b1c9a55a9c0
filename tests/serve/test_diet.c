/* The diet engine against the report's worked examples (seeds/000 4.7, 4.7.1, 4.7.2) and its edges. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "kt_test.h"
#include "serve/diet.h"
#include "serve/diet_json.h"
#include "serve/timeutil.h"

#define DAY KT_US_PER_DAY

static int load_fixture_lib(kt_meal_lib *lib) {
    char path[4096];
    kt_err err = {0};
    snprintf(path, sizeof path, "%s/tests/serve/fixtures/report_meals.json", kt_test_root());
    if (kt_meal_lib_load(lib, path, &err)) {
        kt_test_fail(__FILE__, __LINE__, "fixture: %s", err.msg);
        return 0;
    }
    return 1;
}

static kt_diet_assessment parse_assessment(const char *json) {
    kt_diet_assessment a;
    kt_err err = {0};
    char field[32];
    cJSON *j = cJSON_Parse(json);
    if (!j || kt_diet_assessment_parse(j, &a, field, &err))
        kt_test_fail(__FILE__, __LINE__, "assessment %s: %s", json, err.msg);
    cJSON_Delete(j);
    return a;
}

static kt_diet_obs obs_stage(int64_t t, const char *stage) {
    kt_diet_obs o = {.time_us = t};
    kt_err err;
    if (kt_diet_stage_severity(stage, &o.severity, &err)) kt_test_fail(__FILE__, __LINE__, "%s", err.msg);
    snprintf(o.stage, sizeof o.stage, "%s", stage);
    return o;
}

static kt_diet_obs obs_sev(int64_t t, double s) { return (kt_diet_obs){.time_us = t, .severity = s}; }

static const char *example_a_json =
    "{\"age\": 30, \"gender\": \"female\", \"weight\": 65, \"height\": 165, \"activity_level\": \"moderate\","
    " \"dietary_restrictions\": [\"vegetarian\"], \"current_diet_pattern\": null, \"health_conditions\": [],"
    " \"medications\": []}";
static const char *example_b_json =
    "{\"age\": 35, \"gender\": \"male\", \"weight\": 75, \"height\": 176, \"activity_level\": \"moderate\","
    " \"dietary_restrictions\": [], \"current_diet_pattern\": \"omnivore\", \"health_conditions\": [],"
    " \"medications\": []}";

static const int64_t T0 = 1711962000LL * 1000000; /* 2024-04-01T09:00:00Z */

/* Example A: female, vegetarian, LEVEL_4 90 days ago -> LEVEL_5 now. */
static int make_example_a(kt_diet_plan *p, const kt_meal_lib *lib, const kt_diet_facts *facts) {
    kt_diet_assessment a = parse_assessment(example_a_json);
    kt_diet_obs h[2] = {obs_stage(T0 - 90 * DAY, "LEVEL_4"), obs_stage(T0, "LEVEL_5")};
    kt_err err = {0};
    if (kt_diet_plan_make(p, &a, h, 2, lib, facts, T0, &err)) {
        kt_test_fail(__FILE__, __LINE__, "plan: %s", err.msg);
        return 0;
    }
    return 1;
}

static int make_example_b(kt_diet_plan *p, const kt_meal_lib *lib, const kt_diet_facts *facts) {
    kt_diet_assessment a = parse_assessment(example_b_json);
    kt_diet_obs h[4] = {obs_sev(T0 - 60 * DAY, 0.42), obs_sev(T0 - 40 * DAY, 0.41), obs_sev(T0 - 20 * DAY, 0.40),
                        obs_sev(T0, 0.40)};
    kt_err err = {0};
    if (kt_diet_plan_make(p, &a, h, 4, lib, facts, T0, &err)) {
        kt_test_fail(__FILE__, __LINE__, "plan: %s", err.msg);
        return 0;
    }
    return 1;
}

/* The report prints values rounded to its shown digits: check to half a unit of the last digit. */
#define CHECK_PRINTED(v, printed, digits) KT_CHECK_NEAR(v, printed, 0.5 * pow(10.0, -(digits)) + 1e-9)

KT_TEST(test_diet_stage_severity_map) {
    const char *st[] = {"LEVEL_2", "LEVEL_3", "LEVEL_4", "LEVEL_5", "LEVEL_6", "LEVEL_7"};
    const double sv[] = {0.2, 0.4, 0.6, 0.8, 0.9, 1.0};
    kt_err err = {0};
    for (int i = 0; i < 6; i++) {
        double s = -1;
        KT_CHECK_OK(kt_diet_stage_severity(st[i], &s, &err), &err);
        KT_CHECK_NEAR(s, sv[i], 0);
    }
    const char *bad[] = {"LEVEL_1", "LEVEL_9", "level_5", "", "LEVEL_5 "};
    for (int i = 0; i < 5; i++) {
        double s;
        KT_CHECK(kt_diet_stage_severity(bad[i], &s, &err) == KT_ERR_NOTFOUND, "'%s' accepted", bad[i]);
        KT_CHECK(strstr(err.msg, "unknown hair-loss stage") && strstr(err.msg, "LEVEL_2"), "message: %s", err.msg);
    }
}

KT_TEST(test_diet_example_a) {
    kt_meal_lib lib;
    kt_diet_facts facts;
    kt_err err = {0};
    KT_REQUIRE(load_fixture_lib(&lib));
    KT_REQUIRE_OK(kt_diet_facts_load_default(&facts, &err), &err);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p && make_example_a(p, &lib, &facts));

    /* Step 1: s = 0.8, r = (0.8 - 0.6) / 90 x 30 = 0.0667 -> worsening. */
    KT_CHECK_NEAR(p->hair.severity, 0.8, 1e-12);
    CHECK_PRINTED(p->hair.rate, 0.0667, 4);
    KT_CHECK(p->hair.days == 90);
    KT_CHECK(p->hair.trend == KT_TREND_WORSENING);
    KT_CHECK(!strcmp(p->hair.stage, "LEVEL_5"));
    /* Step 2: h = 1.8, u = 1.2, h x u = 2.16. */
    KT_CHECK_NEAR(p->h, 1.8, 1e-12);
    KT_CHECK_NEAR(p->u, 1.2, 1e-12);
    KT_CHECK_NEAR(p->h * p->u, 2.16, 1e-12);
    /* Step 4: daily targets as printed, and exactly b x m x h x u. */
    const double daily[KT_NUT_COUNT] = {146.02, 58.32, 6480, 25.92, 4.752, 2592, 194.40};
    const int ddig[KT_NUT_COUNT] = {2, 2, 0, 2, 3, 0, 2};
    const double exact[KT_NUT_COUNT] = {146.016, 58.32, 6480, 25.92, 4.752, 2592, 194.4};
    const double meal[KT_NUT_COUNT] = {48.67, 19.44, 2160, 8.64, 1.584, 864, 64.80};
    const int mdig[KT_NUT_COUNT] = {2, 2, 0, 2, 3, 0, 2};
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        CHECK_PRINTED(p->targets[n].target, daily[n], ddig[n]);
        KT_CHECK_NEAR(p->targets[n].target, exact[n], 1e-9 * exact[n]);
        CHECK_PRINTED(p->targets[n].per_meal, meal[n], mdig[n]);
    }
    /* Iron 58.32 mg is above the adult UL 45 mg: reported as is, recommended 45 with a warning. */
    KT_CHECK(p->targets[KT_NUT_IRON].capped == 1);
    KT_CHECK_NEAR(p->targets[KT_NUT_IRON].recommended, 45.0, 0);
    KT_CHECK_NEAR(p->targets[KT_NUT_IRON].upper_limit, 45.0, 0);
    int iron_warned = 0;
    for (int i = 0; i < p->n_warnings; i++)
        iron_warned |= strstr(p->warnings[i], "Iron") && strstr(p->warnings[i], "58.32") && strstr(p->warnings[i], "45");
    KT_CHECK(iron_warned, "no iron cap warning among %d warnings", p->n_warnings);
    for (int n = 0; n < KT_NUT_COUNT; n++)
        if (n != KT_NUT_IRON) {
            KT_CHECK(!p->targets[n].capped, "%s capped", kt_nutrient_name((kt_nutrient)n));
            KT_CHECK_NEAR(p->targets[n].recommended, p->targets[n].target, 0);
        }
    KT_CHECK(p->n_warnings == 1, "%d warnings", p->n_warnings);
    /* Steps 5-6: salmon is filtered out; breakfast 0.5, lunch 1.0, dinner falls back to breakfast. */
    for (int d = 0; d < KT_DIET_DAYS; d++) {
        KT_CHECK(!strcmp(p->days[d][KT_SLOT_BREAKFAST].meal->id, "high_protein_breakfast"));
        KT_CHECK_NEAR(p->days[d][KT_SLOT_BREAKFAST].score, 0.5, 0);
        KT_CHECK(!p->days[d][KT_SLOT_BREAKFAST].fallback);
        KT_CHECK(!strcmp(p->days[d][KT_SLOT_LUNCH].meal->id, "iron_rich_lunch"));
        KT_CHECK_NEAR(p->days[d][KT_SLOT_LUNCH].score, 1.0, 0);
        KT_CHECK(!strcmp(p->days[d][KT_SLOT_DINNER].meal->id, "high_protein_breakfast"));
        KT_CHECK(p->days[d][KT_SLOT_DINNER].fallback == 1);
    }
    /* The thresholds the report quotes: 0.5 x 48.67 = 24.34, 0.8 x 48.67 = 38.94, 0.8 x 64.80 = 51.84. */
    CHECK_PRINTED(0.5 * p->targets[KT_NUT_PROTEIN].per_meal, 24.34, 2);
    CHECK_PRINTED(0.8 * p->targets[KT_NUT_PROTEIN].per_meal, 38.94, 2);
    CHECK_PRINTED(0.8 * p->targets[KT_NUT_VITAMIN_C].per_meal, 51.84, 2);
    /* Step 7: walnuts, Greek yogurt, pumpkin seeds. */
    KT_REQUIRE(p->n_snacks == 3);
    KT_CHECK(strstr(p->snacks[0]->text, "walnuts"));
    KT_CHECK(strstr(p->snacks[1]->text, "Greek yogurt"));
    KT_CHECK(strstr(p->snacks[2]->text, "Pumpkin seeds"));
    /* Step 8: s > 0.6 and s > 0.7: biotin, iron + C, omega-3 (algae oil: vegetarian), zinc. */
    KT_REQUIRE(p->n_supplements == 4);
    KT_CHECK(!strcmp(p->supplements[0].name, "Biotin Complex") && strstr(p->supplements[0].dosage, "5000 mcg"));
    KT_CHECK(!strcmp(p->supplements[1].name, "Iron + Vitamin C") && strstr(p->supplements[1].dosage, "25 mg") &&
             strstr(p->supplements[1].dosage, "100 mg"));
    KT_CHECK(strstr(p->supplements[2].name, "Algae") && strstr(p->supplements[2].dosage, "1000 mg EPA/DHA"));
    KT_CHECK(!strcmp(p->supplements[3].name, "Zinc Picolinate") && strstr(p->supplements[3].dosage, "15 mg"));
    /* Step 9: Np = 2, K = 9 -> c_d = 0.33, c_a = 0.9, C = 0.86. */
    CHECK_PRINTED(p->c_d, 0.33, 2);
    KT_CHECK_NEAR(p->c_a, 0.9, 1e-12);
    CHECK_PRINTED(p->confidence, 0.86, 2);
    KT_CHECK(p->next_review_us == T0 + 30 * DAY);
    free(p);
    kt_meal_lib_free(&lib);
    kt_diet_facts_free(&facts);
}

/* Section 4.7.1: every cell of the numeric summary table. */
KT_TEST(test_diet_example_a_table) {
    kt_meal_lib lib;
    kt_diet_facts facts;
    kt_err err = {0};
    KT_REQUIRE(load_fixture_lib(&lib));
    KT_REQUIRE_OK(kt_diet_facts_load_default(&facts, &err), &err);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p && make_example_a(p, &lib, &facts));
    const double base[KT_NUT_COUNT] = {52.00, 18.00, 30.00, 8.00, 1.10, 600, 75.00};
    const double m[KT_NUT_COUNT] = {1.3, 1.5, 100, 1.5, 2.0, 2.0, 1.2};
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        CHECK_PRINTED(p->targets[n].base, base[n], 2);
        KT_CHECK_NEAR(p->targets[n].multiplier, m[n], 0);
        KT_CHECK_NEAR(kt_diet_base_need((kt_nutrient)n, KT_SEX_FEMALE, 65), base[n], 1e-12);
    }
    CHECK_PRINTED(p->h, 1.8, 1);
    CHECK_PRINTED(p->u, 1.2, 1);
    free(p);
    kt_meal_lib_free(&lib);
    kt_diet_facts_free(&facts);
}

/* Section 4.7.2: male, severity 0.42 -> 0.40 over 60 days, Np = 4, K = 10. */
KT_TEST(test_diet_example_b) {
    kt_meal_lib lib;
    kt_diet_facts facts;
    kt_err err = {0};
    KT_REQUIRE(load_fixture_lib(&lib));
    KT_REQUIRE_OK(kt_diet_facts_load_default(&facts, &err), &err);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p && make_example_b(p, &lib, &facts));
    CHECK_PRINTED(p->hair.rate, -0.01, 2);
    KT_CHECK_NEAR(p->hair.rate, -0.01, 1e-12);
    KT_CHECK(p->hair.days == 60);
    KT_CHECK(p->hair.trend == KT_TREND_STABLE);
    KT_CHECK_NEAR(p->hair.severity, 0.40, 0);
    KT_CHECK_NEAR(p->h, 1.4, 1e-12);
    KT_CHECK_NEAR(p->u, 1.0, 0);
    const double base[KT_NUT_COUNT] = {60.0, 8, 30, 11, 1.6, 600, 90};
    const double daily[KT_NUT_COUNT] = {109.20, 16.80, 4200, 23.10, 4.48, 1680, 151.20};
    const int ddig[KT_NUT_COUNT] = {2, 2, 0, 2, 2, 0, 2};
    const double meal[KT_NUT_COUNT] = {36.40, 5.60, 1400, 7.70, 1.49, 560, 50.40};
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        KT_CHECK_NEAR(p->targets[n].base, base[n], 1e-12);
        CHECK_PRINTED(p->targets[n].target, daily[n], ddig[n]);
        CHECK_PRINTED(p->targets[n].per_meal, meal[n], 2);
        KT_CHECK(!p->targets[n].capped, "%s capped", kt_nutrient_name((kt_nutrient)n));
    }
    KT_CHECK(p->n_warnings == 0);
    /* Male -> zinc only; no high-severity bundle at s <= 0.6. */
    KT_REQUIRE(p->n_supplements == 1);
    KT_CHECK(!strcmp(p->supplements[0].name, "Zinc Picolinate"));
    /* c_d = 0.67, c_a = 1.0, C = 0.93. */
    CHECK_PRINTED(p->c_d, 0.67, 2);
    KT_CHECK_NEAR(p->c_a, 1.0, 0);
    CHECK_PRINTED(p->confidence, 0.93, 2);
    /* No restrictions: the salmon dinner is offered (not a fallback). */
    KT_CHECK(!strcmp(p->days[0][KT_SLOT_DINNER].meal->id, "omega3_dinner") && !p->days[0][KT_SLOT_DINNER].fallback);
    free(p);
    kt_meal_lib_free(&lib);
    kt_diet_facts_free(&facts);
}

KT_TEST(test_diet_insufficient_history) {
    kt_meal_lib lib;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_meal_lib_load_default(&lib, &err), &err);
    kt_diet_assessment a = parse_assessment(example_b_json);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p);
    for (int n = 0; n < 2; n++) {
        kt_diet_obs one = obs_stage(T0, "LEVEL_7");
        KT_REQUIRE_OK(kt_diet_plan_make(p, &a, &one, n, &lib, NULL, T0, &err), &err);
        KT_CHECK(p->hair.n_used == n);
        KT_CHECK_NEAR(p->hair.severity, 0.5, 0); /* not LEVEL_7's 1.0: fewer than 2 predictions */
        KT_CHECK_NEAR(p->hair.rate, 0, 0);
        KT_CHECK(p->hair.trend == KT_TREND_INSUFFICIENT_DATA);
        KT_CHECK_NEAR(p->h, 1.5, 0);
        KT_CHECK_NEAR(p->u, 1.0, 0);
        KT_CHECK_NEAR(p->c_d, n / 6.0, 1e-12);
        KT_CHECK(!strcmp(kt_trend_name(p->hair.trend), "insufficient_data"));
    }
    free(p);
    kt_meal_lib_free(&lib);
}

KT_TEST(test_diet_improving_trend) {
    kt_diet_obs h[2] = {obs_stage(T0, "LEVEL_4"), obs_stage(T0 - 60 * DAY, "LEVEL_6")}; /* newest first */
    kt_hair_analysis ha;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_diet_analyze(h, 2, &ha, &err), &err);
    KT_CHECK(ha.trend == KT_TREND_IMPROVING);
    KT_CHECK_NEAR(ha.rate, (0.6 - 0.9) / 60 * 30, 1e-12);
    KT_CHECK_NEAR(ha.severity, 0.6, 0);
    KT_CHECK(!strcmp(ha.stage, "LEVEL_4"));
    /* Female at s = 0.6 (not > 0.6) and improving: u = 1, no supplements. */
    kt_meal_lib lib;
    KT_REQUIRE_OK(kt_meal_lib_load_default(&lib, &err), &err);
    kt_diet_assessment a = parse_assessment(example_a_json);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p);
    KT_REQUIRE_OK(kt_diet_plan_make(p, &a, h, 2, &lib, NULL, T0, &err), &err);
    KT_CHECK_NEAR(p->u, 1.0, 0);
    KT_CHECK(p->n_supplements == 0, "%d supplements", p->n_supplements);
    free(p);
    kt_meal_lib_free(&lib);
}

/* The report's u uses r > 0, not the trend label: r = 0.03 is "stable" yet u = 1.2. */
KT_TEST(test_diet_urgency_follows_rate_sign) {
    kt_diet_obs h[2] = {obs_sev(T0 - 200 * DAY, 0.6), obs_sev(T0, 0.8)}; /* r = 0.2/200*30 = 0.03 */
    kt_hair_analysis ha;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_diet_analyze(h, 2, &ha, &err), &err);
    KT_CHECK(ha.trend == KT_TREND_STABLE);
    kt_meal_lib lib;
    KT_REQUIRE_OK(kt_meal_lib_load_default(&lib, &err), &err);
    kt_diet_assessment a = parse_assessment(example_b_json);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p);
    KT_REQUIRE_OK(kt_diet_plan_make(p, &a, h, 2, &lib, NULL, T0, &err), &err);
    KT_CHECK_NEAR(p->u, 1.2, 0);
    /* Same day: days = max(1, 0) = 1. */
    kt_diet_obs same[2] = {obs_sev(T0 - 3600LL * 1000000, 0.4), obs_sev(T0, 0.6)};
    KT_REQUIRE_OK(kt_diet_analyze(same, 2, &ha, &err), &err);
    KT_CHECK(ha.days == 0);
    KT_CHECK_NEAR(ha.rate, 0.2 * 30, 1e-12);
    free(p);
    kt_meal_lib_free(&lib);
}

KT_TEST(test_diet_uses_six_newest_predictions) {
    /* 8 predictions a week apart, shuffled; the two oldest (LEVEL_7) must not count. */
    kt_diet_obs h[8];
    const char *stages[8] = {"LEVEL_7", "LEVEL_7", "LEVEL_2", "LEVEL_3", "LEVEL_3", "LEVEL_4", "LEVEL_4", "LEVEL_5"};
    int order[8] = {5, 0, 7, 2, 6, 1, 4, 3};
    for (int i = 0; i < 8; i++) h[i] = obs_stage(T0 - (7 - order[i]) * 7 * DAY, stages[order[i]]);
    kt_hair_analysis ha;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_diet_analyze(h, 8, &ha, &err), &err);
    KT_CHECK(ha.n_used == 6);
    KT_CHECK(ha.days == 35);
    KT_CHECK_NEAR(ha.rate, (0.8 - 0.2) / 35 * 30, 1e-12);
    KT_CHECK(!strcmp(ha.stage, "LEVEL_5"));
    kt_diet_obs badsev = obs_sev(T0, 1.5);
    KT_CHECK(kt_diet_analyze(&badsev, 1, &ha, &err) == KT_ERR_ARG);
}

static int slot_has(const kt_meal_lib *lib, const char *slot, unsigned tags) {
    for (int i = 0; i < lib->n_meals; i++)
        if (strstr(lib->meals[i].id, slot) && (lib->meals[i].tags & tags) == tags) return 1;
    return 0;
}

KT_TEST(test_diet_library_covers_every_restriction) {
    kt_meal_lib lib;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_meal_lib_load_default(&lib, &err), &err);
    const unsigned combos[] = {0, KT_TAG_VEGETARIAN, KT_TAG_VEGAN, KT_TAG_GLUTEN_FREE, KT_TAG_DAIRY_FREE,
                               KT_TAG_NUT_FREE, KT_TAG_PESCATARIAN, KT_TAG_VEGAN | KT_TAG_GLUTEN_FREE,
                               KT_TAG_VEGAN | KT_TAG_GLUTEN_FREE | KT_TAG_NUT_FREE,
                               KT_TAG_VEGETARIAN | KT_TAG_GLUTEN_FREE | KT_TAG_DAIRY_FREE};
    for (int s = 0; s < KT_SLOT_COUNT; s++) {
        int n = 0;
        for (int i = 0; i < lib.n_meals; i++) n += strstr(lib.meals[i].id, kt_slot_name(s)) != NULL;
        KT_CHECK(n >= 5, "only %d %s meals", n, kt_slot_name(s));
        for (size_t c = 0; c < sizeof combos / sizeof combos[0]; c++)
            KT_CHECK(slot_has(&lib, kt_slot_name(s), combos[c]), "no %s for tags 0x%x", kt_slot_name(s), combos[c]);
    }
    kt_diet_facts facts;
    KT_REQUIRE_OK(kt_diet_facts_load_default(&facts, &err), &err);
    const double ul[KT_NUT_COUNT] = {0, 45, 0, 40, 0, 4000, 2000};
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        KT_CHECK_NEAR(facts.nutrients[n].upper_limit, ul[n], 0);
        KT_CHECK(ul[n] == 0 || strstr(facts.nutrients[n].upper_limit_source, "National Academies"),
                 "%s: UL without a citation", kt_nutrient_name((kt_nutrient)n));
        KT_CHECK(facts.nutrients[n].n_sources >= 4);
    }
    kt_diet_facts_free(&facts);
    kt_meal_lib_free(&lib);
}

KT_TEST(test_diet_vegan_gluten_free_filtering) {
    kt_meal_lib lib;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_meal_lib_load_default(&lib, &err), &err);
    kt_diet_assessment a = parse_assessment(
        "{\"age\": 41, \"gender\": \"female\", \"weight\": 58, \"height\": 160, \"activity_level\": \"active\","
        " \"dietary_restrictions\": [\"Vegan\", \"gluten-free\"]}");
    KT_CHECK(a.required_tags == (KT_TAG_VEGAN | KT_TAG_GLUTEN_FREE), "tags 0x%x", a.required_tags);
    KT_CHECK(a.completeness == 7, "K = %d", a.completeness);
    kt_diet_obs h[3] = {obs_stage(T0 - 40 * DAY, "LEVEL_5"), obs_stage(T0 - 20 * DAY, "LEVEL_6"),
                        obs_stage(T0, "LEVEL_6")};
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p);
    KT_REQUIRE_OK(kt_diet_plan_make(p, &a, h, 3, &lib, NULL, T0, &err), &err);
    int distinct_dinners = 0;
    for (int d = 0; d < KT_DIET_DAYS; d++)
        for (int s = 0; s < KT_SLOT_COUNT; s++) {
            const kt_meal_pick *k = &p->days[d][s];
            KT_CHECK((k->meal->tags & (KT_TAG_VEGAN | KT_TAG_GLUTEN_FREE)) == (KT_TAG_VEGAN | KT_TAG_GLUTEN_FREE),
                     "day %d %s: %s is not vegan + gluten-free", d + 1, kt_slot_name(s), k->meal->id);
            KT_CHECK(strstr(k->meal->id, kt_slot_name(s)) && !k->fallback, "%s", k->meal->id);
            if (s == KT_SLOT_DINNER && d < 3) distinct_dinners += d == 0 || k->meal != p->days[0][s].meal;
        }
    KT_CHECK(distinct_dinners == 3, "the plan should rotate the 3 best dinners");
    /* Day 1 is the argmax: no allowed dinner scores higher. */
    for (int i = 0; i < lib.n_meals; i++)
        if (strstr(lib.meals[i].id, "dinner") &&
            (lib.meals[i].tags & a.required_tags) == a.required_tags)
            KT_CHECK(kt_diet_meal_score(&lib.meals[i], p->targets) <= p->days[0][KT_SLOT_DINNER].score);
    KT_REQUIRE(p->n_snacks == 3);
    for (int i = 0; i < 3; i++) KT_CHECK(!strstr(p->snacks[i]->text, "yogurt"), "%s offered to a vegan", p->snacks[i]->text);
    KT_CHECK(strstr(p->supplements[2].name, "Algae"));
    /* nut-free + vegan drops walnuts and almond butter as well. */
    kt_diet_assessment b = parse_assessment(
        "{\"age\": 41, \"gender\": \"male\", \"weight\": 70, \"height\": 175, \"activity_level\": \"active\","
        " \"dietary_restrictions\": [\"vegan\", \"nut free\"]}");
    KT_REQUIRE_OK(kt_diet_plan_make(p, &b, h, 3, &lib, NULL, T0, &err), &err);
    KT_CHECK(p->n_snacks == 2, "%d snacks", p->n_snacks);
    for (int i = 0; i < p->n_snacks; i++)
        KT_CHECK(!strstr(p->snacks[i]->text, "walnut") && !strstr(p->snacks[i]->text, "almond"));
    KT_CHECK(!strcmp(p->supplements[2].name, "Omega-3 Algae Oil"));
    free(p);
    kt_meal_lib_free(&lib);
}

KT_TEST(test_diet_unmatched_restrictions) {
    kt_meal_lib lib;
    kt_err err = {0};
    KT_REQUIRE(load_fixture_lib(&lib));
    kt_diet_obs h[2] = {obs_stage(T0 - 10 * DAY, "LEVEL_3"), obs_stage(T0, "LEVEL_3")};
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p);
    /* Unknown restriction: a warning, no filtering. */
    kt_diet_assessment a = parse_assessment(
        "{\"age\": 30, \"gender\": \"male\", \"weight\": 80, \"height\": 180, \"activity_level\": \"sedentary\","
        " \"dietary_restrictions\": [\"keto\", \"none\"]}");
    KT_CHECK(a.n_restrictions == 1 && a.unknown_restrictions == 1);
    KT_REQUIRE_OK(kt_diet_plan_make(p, &a, h, 2, &lib, NULL, T0, &err), &err);
    KT_CHECK(p->n_warnings == 1 && strstr(p->warnings[0], "keto"), "%s", p->warnings[0]);
    KT_CHECK(!strcmp(p->days[0][KT_SLOT_DINNER].meal->id, "omega3_dinner"));
    /* Vegan + gluten-free leaves only the lentil salad: it stands in for breakfast and dinner. */
    kt_diet_assessment v = parse_assessment(
        "{\"age\": 30, \"gender\": \"male\", \"weight\": 80, \"height\": 180, \"activity_level\": \"sedentary\","
        " \"dietary_restrictions\": [\"vegan\", \"gluten_free\"]}");
    KT_REQUIRE_OK(kt_diet_plan_make(p, &v, h, 2, &lib, NULL, T0, &err), &err);
    KT_CHECK(p->days[0][KT_SLOT_BREAKFAST].fallback && !strcmp(p->days[0][KT_SLOT_BREAKFAST].meal->id, "iron_rich_lunch"));
    KT_CHECK(p->days[0][KT_SLOT_DINNER].fallback && !strcmp(p->days[0][KT_SLOT_DINNER].meal->id, "iron_rich_lunch"));
    /* Nothing allowed at all: a clear error, not an empty plan. */
    kt_meal_lib one;
    const char *fish = "{\"meals\": [{\"id\": \"fish_dinner\", \"name\": \"Fish\", \"ingredients\": [\"cod\"],"
                       " \"nutrients\": {\"protein\": 30}, \"suitable_for\": [\"pescatarian\"]}]}";
    KT_REQUIRE_OK(kt_meal_lib_parse(&one, fish, strlen(fish), "fish.json", &err), &err);
    KT_CHECK(kt_diet_plan_make(p, &v, h, 2, &one, NULL, T0, &err) == KT_ERR_NOTFOUND);
    KT_CHECK(strstr(err.msg, "vegan"), "%s", err.msg);
    kt_meal_lib_free(&one);
    free(p);
    kt_meal_lib_free(&lib);
}

KT_TEST(test_diet_meal_library_bad_data) {
    const struct {
        const char *json, *expect;
    } cases[] = {
        {"{\"meals\": [", "not valid JSON"},
        {"{\"meals\": []}", "non-empty list"},
        {"{\"meals\": [{\"id\": \"a_lunch\", \"name\": \"A\", \"ingredients\": [], \"nutrients\": {\"iron\": -1},"
         " \"suitable_for\": []}]}",
         "nutrients.iron must be a number >= 0"},
        {"{\"meals\": [{\"id\": \"a_lunch\", \"name\": \"A\", \"ingredients\": [], \"nutrients\": {\"calcium\": 1},"
         " \"suitable_for\": []}]}",
         "unknown nutrient 'calcium'"},
        {"{\"meals\": [{\"id\": \"a_lunch\", \"name\": \"A\", \"ingredients\": [], \"nutrients\": {},"
         " \"suitable_for\": [\"vegan\"]}]}",
         "'vegan' must come with"},
        {"{\"meals\": [{\"id\": \"a_lunch\", \"name\": \"A\", \"ingredients\": [], \"nutrients\": {},"
         " \"suitable_for\": [\"paleo\"]}]}",
         "unknown tag 'paleo'"},
        {"{\"meals\": [{\"id\": \"x\", \"name\": \"A\", \"ingredients\": [], \"nutrients\": {}, \"suitable_for\": []},"
         " {\"id\": \"x\", \"name\": \"B\", \"ingredients\": [], \"nutrients\": {}, \"suitable_for\": []}]}",
         "appears twice"},
        {"{\"meals\": [{\"id\": \"b_dinner\", \"ingredients\": [], \"nutrients\": {}, \"suitable_for\": []}]}",
         "meal 'b_dinner': field 'name'"},
        {"{\"meals\": [{\"id\": \"b_dinner\", \"name\": \"B\", \"ingredients\": [3], \"nutrients\": {},"
         " \"suitable_for\": []}]}",
         "'ingredients' item 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_meal_lib lib;
        kt_err err = {0};
        kt_status st = kt_meal_lib_parse(&lib, cases[i].json, strlen(cases[i].json), "lib.json", &err);
        KT_CHECK(st == KT_ERR_FORMAT, "case %zu accepted", i);
        KT_CHECK(strstr(err.msg, "lib.json") && strstr(err.msg, cases[i].expect), "case %zu: '%s' lacks '%s'", i, err.msg,
                 cases[i].expect);
        KT_CHECK(lib.meals == NULL && lib.n_meals == 0);
    }
}

KT_TEST(test_diet_assessment_validation) {
    const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "age"},
        {"{\"age\": 300, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "age"},
        {"{\"age\": -5, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "age"},
        {"{\"age\": 30.5, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "age"},
        {"{\"age\": \"30\", \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "age"},
        {"{\"age\": 30, \"gender\": \"robot\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\"}", "gender"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 0, \"height\": 170, \"activity_level\": \"active\"}", "weight"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 5000, \"height\": 170, \"activity_level\": \"active\"}", "weight"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 70, \"height\": 3, \"activity_level\": \"active\"}", "height"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"lazy\"}",
         "activity_level"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\","
         " \"dietary_restrictions\": \"vegan\"}",
         "dietary_restrictions"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\","
         " \"medications\": [1, 2]}",
         "medications"},
        {"{\"age\": 30, \"gender\": \"male\", \"weight\": 70, \"height\": 170, \"activity_level\": \"active\","
         " \"current_diet_pattern\": 12}",
         "current_diet_pattern"},
        {"[1, 2]", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        KT_REQUIRE(j, "case %zu is not JSON", i);
        kt_diet_assessment a;
        kt_err err = {0};
        char field[32];
        KT_CHECK(kt_diet_assessment_parse(j, &a, field, &err) == KT_ERR_ARG, "case %zu accepted", i);
        KT_CHECK(!strcmp(field, cases[i].field), "case %zu: field '%s', expected '%s'", i, field, cases[i].field);
        KT_CHECK(strstr(err.msg, cases[i].field), "case %zu: message '%s' does not name the field", i, err.msg);
        cJSON_Delete(j);
    }
    /* K: Example A has 9 of 10 (current_diet_pattern is null), Example B 10. */
    KT_CHECK(parse_assessment(example_a_json).completeness == 9);
    KT_CHECK(parse_assessment(example_b_json).completeness == 10);
}

KT_TEST(test_diet_history_csv) {
    kt_diet_obs *o = NULL;
    int n = 0;
    kt_err err = {0};
    const char *good = "timestamp,stage,confidence\r\n# comment\n\n2024-01-02,LEVEL_4,0.8\n"
                       "\"2024-04-01T09:00:00+02:00\", LEVEL_5 \n2024-04-02 10:00,0.35,\n";
    KT_REQUIRE_OK(kt_diet_history_parse_csv(good, strlen(good), "h.csv", &o, &n, &err), &err);
    KT_REQUIRE(n == 3);
    KT_CHECK(!strcmp(o[1].stage, "LEVEL_5") && o[1].severity == 0.8);
    KT_CHECK(o[1].time_us == (1711962000LL - 2 * 3600) * 1000000);
    KT_CHECK(o[2].severity == 0.35 && !o[2].stage[0]);
    free(o);
    const struct {
        const char *csv, *expect;
    } bad[] = {
        {"2024-01-02,LEVEL_4\n2024-13-01,LEVEL_5\n", "h.csv line 2, field 'timestamp'"},
        {"2024-01-02,LEVEL_4\n\n2024-02-01,LEVEL_9\n", "h.csv line 3, field 'stage': unknown hair-loss stage 'LEVEL_9'"},
        {"2024-01-02,1.5\n", "h.csv line 1, field 'stage': severity 1.5"},
        {"2024-01-02,LEVEL_4,1.7\n", "h.csv line 1, field 'confidence'"},
        {"2024-01-02\n", "h.csv line 1: expected 2 or 3 fields"},
        {"2024-01-02,LEVEL_4,0.5,extra\n", "got 4"},
        {"2023-02-30,LEVEL_4\n", "field 'timestamp'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KT_CHECK(kt_diet_history_parse_csv(bad[i].csv, strlen(bad[i].csv), "h.csv", &o, &n, &err) == KT_ERR_FORMAT,
                 "case %zu accepted", i);
        KT_CHECK(strstr(err.msg, bad[i].expect), "case %zu: '%s' lacks '%s'", i, err.msg, bad[i].expect);
        KT_CHECK(o == NULL);
    }
    KT_REQUIRE_OK(kt_diet_history_parse_csv("", 0, "empty.csv", &o, &n, &err), &err);
    KT_CHECK(n == 0);
    free(o);
}

KT_TEST(test_diet_bundle_json) {
    kt_meal_lib lib;
    kt_diet_facts facts;
    kt_err err = {0};
    KT_REQUIRE(load_fixture_lib(&lib));
    KT_REQUIRE_OK(kt_diet_facts_load_default(&facts, &err), &err);
    kt_diet_plan *p = calloc(1, sizeof *p);
    KT_REQUIRE(p && make_example_a(p, &lib, &facts));
    cJSON *o = kt_diet_plan_to_json(p, &facts);
    KT_REQUIRE(o);
    const cJSON *rn = cJSON_GetObjectItem(o, "recommended_nutrients");
    const cJSON *iron = cJSON_GetObjectItem(rn, "iron");
    KT_CHECK_NEAR(cJSON_GetObjectItem(iron, "daily_target")->valuedouble, 58.32, 0);
    KT_CHECK_NEAR(cJSON_GetObjectItem(iron, "recommended_amount")->valuedouble, 45, 0);
    KT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(iron, "capped")));
    KT_CHECK(cJSON_IsString(cJSON_GetObjectItem(iron, "warning")));
    KT_CHECK(strstr(cJSON_GetObjectItem(iron, "upper_limit_source")->valuestring, "National Academies"));
    KT_CHECK(!strcmp(cJSON_GetObjectItem(iron, "unit")->valuestring, "mg"));
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(iron, "sources")) == 5);
    const cJSON *prot = cJSON_GetObjectItem(rn, "protein");
    KT_CHECK_NEAR(cJSON_GetObjectItem(prot, "daily_target")->valuedouble, 146.016, 0);
    KT_CHECK(cJSON_IsNull(cJSON_GetObjectItem(prot, "upper_limit")));
    KT_CHECK(!cJSON_GetObjectItem(prot, "warning"));
    const cJSON *mp = cJSON_GetObjectItem(o, "meal_plan");
    KT_CHECK(cJSON_GetArraySize(mp) == 7);
    const cJSON *d7 = cJSON_GetObjectItem(mp, "day_7");
    KT_REQUIRE(d7);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(d7, "lunch"), "name")->valuestring,
                     "Lentil and Spinach Salad"));
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(d7, "lunch"), "ingredients")) == 4);
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(d7, "snacks")) == 3);
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "supplements")) == 4);
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "foods_to_avoid")) >= 3);
    KT_CHECK_NEAR(cJSON_GetObjectItem(o, "confidence_score")->valuedouble, 0.857, 0);
    const cJSON *ha = cJSON_GetObjectItem(o, "hair_analysis");
    KT_CHECK(!strcmp(cJSON_GetObjectItem(ha, "trend")->valuestring, "worsening"));
    KT_CHECK_NEAR(cJSON_GetObjectItem(ha, "progression_rate")->valuedouble, 0.067, 0);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(o, "next_review_date")->valuestring, "2024-05-01T09:00:00.000000Z"));
    KT_CHECK(!strcmp(cJSON_GetObjectItem(o, "hair_stage_at_time")->valuestring, "LEVEL_5"));
    cJSON_Delete(o);
    free(p);
    kt_meal_lib_free(&lib);
    kt_diet_facts_free(&facts);
}

KT_TEST(test_time_iso_roundtrip) {
    int64_t us;
    kt_err err = {0};
    char buf[40];
    KT_REQUIRE_OK(kt_time_parse_iso("2024-02-29T23:59:58.5Z", &us, &err), &err);
    kt_time_format_iso(us, buf, sizeof buf);
    KT_CHECK(!strcmp(buf, "2024-02-29T23:59:58.500000Z"), "%s", buf);
    KT_REQUIRE_OK(kt_time_parse_iso("2024-03-01", &us, &err), &err);
    kt_time_format_date(us, buf, sizeof buf);
    KT_CHECK(!strcmp(buf, "2024-03-01"));
    const char *bad[] = {"2023-02-29", "2024-1-01", "yesterday", "2024-01-01T25:00", "2024-01-01T10:00Zjunk", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        KT_CHECK(kt_time_parse_iso(bad[i], &us, &err) == KT_ERR_FORMAT, "'%s' accepted", bad[i]);
}
