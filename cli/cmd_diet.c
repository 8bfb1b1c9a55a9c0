/* keratrack diet: the diet engine without a server (assessment JSON + prediction history CSV). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "cli/commands.h"
#include "serve/diet.h"
#include "serve/diet_json.h"
#include "serve/timeutil.h"

static void help(void) {
    puts("usage: keratrack diet --assessment FILE.json --history FILE.csv [--json] [--meals FILE.json]\n"
         "                      [--now ISO-TIME]\n\n"
         "Runs the Keratrack diet engine (report section 4.5) and prints the plan: hair severity and\n"
         "trend, daily nutrient targets T_n = b_n x m_n x (1 + s) x u beside the amount capped at the\n"
         "adult tolerable upper intake level, the 7-day meal plan, snacks, supplements, foods to avoid,\n"
         "confidence and the next review date.\n\n"
         "  --assessment FILE  JSON as POST /diet/assessment takes: {\"age\": 30, \"gender\": \"female\",\n"
         "                     \"weight\": 65, \"height\": 165, \"activity_level\": \"moderate\",\n"
         "                     \"dietary_restrictions\": [\"vegetarian\"], \"current_diet_pattern\": null,\n"
         "                     \"health_conditions\": [], \"medications\": []}\n"
         "  --history FILE     CSV, one prediction a line: timestamp,stage[,confidence], e.g.\n"
         "                     2024-03-01T10:00:00Z,LEVEL_4,0.91  (stage: LEVEL_2..LEVEL_7, or a severity\n"
         "                     in [0,1]); an optional header line 'timestamp,stage,confidence'; the 6\n"
         "                     newest lines are used; an empty file means no history\n"
         "  --json             print the bundle as JSON (the shape GET /diet/recommendations returns)\n"
         "  --meals FILE       use this meal library instead of the built-in one (serve/data/meals.json\n"
         "                     shows the format: {\"meals\": [...], \"snacks\": [...]})\n"
         "  --now TIME         stamp the plan with this time instead of now (reproducible output)\n\n"
         "Exit status: 0 ok, 1 bad input file (the message names file, line and field), 2 usage error.");
}

static void amount(double v, const char *unit, char *buf, size_t cap) {
    char num[32];
    snprintf(num, sizeof num, "%.3f", v);
    char *e = num + strlen(num) - 1;
    while (*e == '0') *e-- = '\0';
    if (*e == '.') *e = '\0';
    snprintf(buf, cap, "%s %s", num, unit);
}

static void print_text(const kt_diet_plan *p, const kt_diet_facts *facts) {
    const kt_hair_analysis *h = &p->hair;
    printf("Hair analysis\n  severity s = %.2f%s%s%s, trend %s", h->severity, h->stage[0] ? " (" : "", h->stage,
           h->stage[0] ? ")" : "", kt_trend_name(h->trend));
    if (h->trend != KT_TREND_INSUFFICIENT_DATA) printf(", r = %+.4f per month over %d days", h->rate, h->days);
    printf(" (%d prediction%s used)\n", h->n_used, h->n_used == 1 ? "" : "s");
    printf("  h = 1 + s = %.2f, u = %.1f, h x u = %.2f\n\n", p->h, p->u, p->h * p->u);

    printf("Daily targets (T_n = b_n x m_n x h x u)\n");
    printf("  %-10s %-10s %6s %14s %14s %16s %12s\n", "nutrient", "base b_n", "m_n", "T_n daily", "T_n/3 meal",
           "recommended", "upper limit");
    int any_cap = 0;
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        const kt_nutrient_target *t = &p->targets[n];
        const char *u = kt_nutrient_unit((kt_nutrient)n);
        char b[32], T[32], m[32], r[40], ul[32];
        amount(t->base, u, b, sizeof b);
        amount(t->target, u, T, sizeof T);
        amount(t->per_meal, u, m, sizeof m);
        amount(t->recommended, u, r, sizeof r);
        if (t->capped) strcat(r, " *");
        if (t->upper_limit > 0) amount(t->upper_limit, u, ul, sizeof ul);
        else snprintf(ul, sizeof ul, "none set");
        any_cap |= t->capped;
        printf("  %-10s %-10s %6g %14s %14s %16s %12s\n", kt_nutrient_label((kt_nutrient)n), b, t->multiplier, T, m, r, ul);
    }
    if (any_cap) printf("  * capped at the adult tolerable upper intake level (see warnings)\n");

    printf("\n7-day meal plan (score against T_n/3; 'fallback' = no allowed meal fits the slot)\n");
    for (int d = 0; d < KT_DIET_DAYS; d++) {
        printf("  day %d", d + 1);
        for (int s = 0; s < KT_SLOT_COUNT; s++) {
            const kt_meal_pick *k = &p->days[d][s];
            printf("%s%s: %s (%g%s)", s ? " | " : "  ", kt_slot_name(s), k->meal->name, k->score,
                   k->fallback ? ", fallback" : "");
        }
        putchar('\n');
    }
    printf("  snacks: ");
    for (int i = 0; i < p->n_snacks; i++) printf("%s%s", i ? "; " : "", p->snacks[i]->text);
    printf("%s\n\nSupplements\n", p->n_snacks ? "" : "(none fit the restrictions)");
    if (!p->n_supplements) printf("  none at this severity\n");
    for (int i = 0; i < p->n_supplements; i++)
        printf("  %s: %s, %s (%s)\n", p->supplements[i].name, p->supplements[i].dosage, p->supplements[i].timing,
               p->supplements[i].reason);
    printf("\nFoods to avoid\n");
    for (int i = 0; facts && i < facts->n_foods_to_avoid; i++) printf("  %s\n", facts->foods_to_avoid[i]);
    if (p->n_warnings) printf("\nWarnings\n");
    for (int i = 0; i < p->n_warnings; i++) printf("  %s\n", p->warnings[i]);
    char when[40];
    kt_time_format_date(p->next_review_us, when, sizeof when);
    printf("\nConfidence %.2f (c_d = %.3f, c_a = %.1f)\nNext review %s\n\n%s\n", p->confidence, p->c_d, p->c_a, when,
           p->reasoning);
}

int kt_cmd_diet(int argc, char **argv) {
    const char *assess_path = NULL, *hist_path = NULL, *meals_path = NULL, *now_str = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--assessment") || !strcmp(a, "--history") || !strcmp(a, "--meals") || !strcmp(a, "--now")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "keratrack diet: %s needs a value\n  see keratrack diet --help\n", a);
                return 2;
            }
            const char **dst = !strcmp(a, "--assessment") ? &assess_path
                               : !strcmp(a, "--history")  ? &hist_path
                               : !strcmp(a, "--meals")    ? &meals_path
                                                          : &now_str;
            *dst = argv[++i];
        } else {
            fprintf(stderr, "keratrack diet: unknown option '%s'\n  see keratrack diet --help\n", a);
            return 2;
        }
    }
    if (!assess_path || !hist_path) {
        fprintf(stderr, "keratrack diet: --assessment and --history are required\n  see keratrack diet --help\n");
        return 2;
    }
    kt_err err = {0};
    int64_t now = kt_time_now_us();
    if (now_str && kt_time_parse_iso(now_str, &now, &err)) {
        fprintf(stderr, "keratrack diet: --now: %s\n", err.msg);
        return 2;
    }

    int rc = 1;
    char *atext = NULL, *htext = NULL;
    size_t alen = 0, hlen = 0;
    cJSON *aj = NULL;
    kt_diet_obs *obs = NULL;
    int n_obs = 0;
    kt_meal_lib lib = {0};
    kt_diet_facts facts = {0};
    kt_diet_assessment as;
    kt_diet_plan *plan = calloc(1, sizeof *plan);
    char msg[KT_ERR_MSG_MAX + 64], field[32];
    if (!plan) return kt_cli_fail("diet", "out of memory", "");

    if (kt_file_read(assess_path, &atext, &alen, &err)) {
        kt_cli_fail("diet", err.msg, "check the --assessment path");
        goto out;
    }
    const char *end = NULL;
    aj = cJSON_ParseWithLengthOpts(atext, alen, &end, 0);
    if (!aj) {
        snprintf(msg, sizeof msg, "%s: not valid JSON (near byte %zu)", assess_path, end ? (size_t)(end - atext) : 0);
        kt_cli_fail("diet", msg, "the assessment must be one JSON object; see keratrack diet --help");
        goto out;
    }
    if (kt_diet_assessment_parse(aj, &as, field, &err)) {
        snprintf(msg, sizeof msg, "%s: %s", assess_path, err.msg);
        kt_cli_fail("diet", msg, "fix that field; see keratrack diet --help for the expected fields");
        goto out;
    }
    if (kt_file_read(hist_path, &htext, &hlen, &err) ||
        kt_diet_history_parse_csv(htext, hlen, hist_path, &obs, &n_obs, &err)) {
        kt_cli_fail("diet", err.msg, "the history is CSV: timestamp,stage[,confidence]; see keratrack diet --help");
        goto out;
    }
    kt_status st = meals_path ? kt_meal_lib_load(&lib, meals_path, &err) : kt_meal_lib_load_default(&lib, &err);
    if (st) {
        kt_cli_fail("diet", err.msg, "see serve/data/meals.json for the meal library format");
        goto out;
    }
    if (kt_diet_facts_load_default(&facts, &err)) {
        kt_cli_fail("diet", err.msg, "this build's embedded data is broken; rebuild keratrack");
        goto out;
    }
    if (kt_diet_plan_make(plan, &as, obs, n_obs, &lib, &facts, now, &err)) {
        kt_cli_fail("diet", err.msg, "relax the dietary restrictions or pass a larger --meals library");
        goto out;
    }
    if (json) {
        cJSON *o = kt_diet_plan_to_json(plan, &facts);
        char *s = o ? cJSON_Print(o) : NULL;
        if (!s) {
            cJSON_Delete(o);
            kt_cli_fail("diet", "out of memory", "");
            goto out;
        }
        puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        print_text(plan, &facts);
    }
    rc = 0;
out:
    free(atext);
    free(htext);
    cJSON_Delete(aj);
    free(obs);
    kt_meal_lib_free(&lib);
    kt_diet_facts_free(&facts);
    free(plan);
    return rc;
}
