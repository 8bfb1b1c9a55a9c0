#!/usr/bin/env bash
# keratrack diet end to end: the report's Example A and B through the CLI (text and --json), and bad
# input files answered with errors naming file, line and field (exit 1) or usage errors (exit 2).
# usage: test_diet_cli.sh <keratrack> <source-dir> <build-dir>
set -u
kt=$1; src=$2; fx=$src/tests/serve/fixtures
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <haystack-file> <needle>
  if ! grep -qF -- "$3" "$2"; then echo "FAIL: $1: '$3' not in output:"; sed 's/^/    /' "$2" | head -40; fail=1; fi
}

"$kt" diet --assessment "$fx/example_a_assessment.json" --history "$fx/example_a_history.csv" \
  --meals "$fx/report_meals.json" --now 2024-04-01T09:00:00Z >"$tmp/a.txt" 2>&1 || { echo "FAIL: example A exit $?"; fail=1; }
for s in "severity s = 0.80 (LEVEL_5), trend worsening" "+0.0667 per month over 90 days" "h x u = 2.16" \
         "146.016 g" "48.672 g" "58.32 mg" "19.44 mg" "45 mg *" "6480 mcg" "2160 mcg" "25.92 mg" "8.64 mg" \
         "4.752 g" "1.584 g" "2592 IU" "864 IU" "194.4 mg" "64.8 mg" \
         "breakfast: Hair-Healthy Scrambled Eggs (0.5)" "lunch: Lentil and Spinach Salad (1)" \
         "dinner: Hair-Healthy Scrambled Eggs (0.5, fallback)" \
         "snacks: Handful of walnuts (omega-3); Greek yogurt with berries (protein, biotin); Pumpkin seeds (zinc, iron)" \
         "Biotin Complex: 5000 mcg daily" "Iron + Vitamin C" "Omega-3 Algae Oil" "Zinc Picolinate: 15 mg" \
         "Confidence 0.86" "Next review 2024-05-01" "exceeds the adult tolerable upper intake level"; do
  check "example A" "$tmp/a.txt" "$s"
done

"$kt" diet --assessment "$fx/example_b_assessment.json" --history "$fx/example_b_history.csv" \
  --meals "$fx/report_meals.json" --json >"$tmp/b.json" 2>&1 || { echo "FAIL: example B exit $?"; fail=1; }
for s in '"trend":	"stable"' '"progression_rate":	-0.01' '"daily_target":	109.2' '"daily_target":	16.8' \
         '"daily_target":	4200' '"daily_target":	23.1' '"daily_target":	4.48' '"daily_target":	1680' \
         '"daily_target":	151.2' '"per_meal_target":	36.4' '"per_meal_target":	1.493' '"name":	"Zinc Picolinate"' \
         '"confidence_score":	0.933' '"day_7":' '"capped":	false'; do
  check "example B json" "$tmp/b.json" "$s"
done
if grep -q '"capped":	true' "$tmp/b.json"; then echo "FAIL: example B has a capped nutrient"; fail=1; fi
if grep -q 'Biotin Complex' "$tmp/b.json"; then echo "FAIL: example B got the high-severity bundle"; fail=1; fi

# The plan goes to stdout, its only output: a full disk is an error, not a truncated file and exit 0.
if [[ -w /dev/full ]]; then
  "$kt" diet --assessment "$fx/example_b_assessment.json" --history "$fx/example_b_history.csv" \
    --meals "$fx/report_meals.json" --json >/dev/full 2>"$tmp/full.err"
  rc=$?
  [[ $rc -eq 1 ]] || { echo "FAIL: writing to /dev/full exited $rc"; fail=1; }
  check "stdout on a full disk" "$tmp/full.err" "cannot write the output: No space left on device"
fi

# Bad inputs: exit 1 and a message naming file, line and field.
printf '2024-01-01,LEVEL_4\n2024-02-01,LEVEL_9\n' >"$tmp/bad_stage.csv"
"$kt" diet --assessment "$fx/example_a_assessment.json" --history "$tmp/bad_stage.csv" >"$tmp/e1" 2>&1
[[ $? -eq 1 ]] || { echo "FAIL: unknown stage did not exit 1"; fail=1; }
check "unknown stage" "$tmp/e1" "bad_stage.csv line 2, field 'stage': unknown hair-loss stage 'LEVEL_9'"
printf 'timestamp,stage\nnot-a-date,LEVEL_4\n' >"$tmp/bad_time.csv"
"$kt" diet --assessment "$fx/example_a_assessment.json" --history "$tmp/bad_time.csv" >"$tmp/e2" 2>&1
check "bad timestamp" "$tmp/e2" "bad_time.csv line 2, field 'timestamp'"
printf '{"age": 30, "gender": "female", "weight": 999, "height": 165, "activity_level": "moderate"}' >"$tmp/heavy.json"
"$kt" diet --assessment "$tmp/heavy.json" --history "$fx/example_a_history.csv" >"$tmp/e3" 2>&1
[[ $? -eq 1 ]] || { echo "FAIL: out-of-range weight did not exit 1"; fail=1; }
check "weight" "$tmp/e3" "heavy.json: field 'weight'"
printf '{"age": 30,' >"$tmp/trunc.json"
"$kt" diet --assessment "$tmp/trunc.json" --history "$fx/example_a_history.csv" >"$tmp/e4" 2>&1
check "truncated json" "$tmp/e4" "trunc.json: not valid JSON"
printf '{"meals": [{"id": "x_lunch", "name": "X", "ingredients": [], "nutrients": {"iron": "lots"}, "suitable_for": []}]}' >"$tmp/meals.json"
"$kt" diet --assessment "$fx/example_a_assessment.json" --history "$fx/example_a_history.csv" --meals "$tmp/meals.json" >"$tmp/e5" 2>&1
check "bad meal library" "$tmp/e5" "meals.json: meal 'x_lunch': nutrients.iron must be a number"
"$kt" diet --assessment "$tmp/missing.json" --history "$fx/example_a_history.csv" >"$tmp/e6" 2>&1
check "missing file" "$tmp/e6" "missing.json"
"$kt" diet --history x.csv >"$tmp/e7" 2>&1
[[ $? -eq 2 ]] || { echo "FAIL: missing --assessment is not a usage error"; fail=1; }
"$kt" diet --help >"$tmp/help" 2>&1 || { echo "FAIL: --help exit"; fail=1; }
check "help" "$tmp/help" "--assessment FILE"
[[ $fail -eq 0 ]] && echo "test_diet_cli: ok"
exit $fail
