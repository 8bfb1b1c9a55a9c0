"""Compares two `keratrack predict --csv` outputs of the same images (e.g. exact decoding against
--fast-decode): the largest and mean change of any class probability, how many images keep their
top class, and, given a Roboflow _classes.csv of the images, each file's accuracy.
usage: python3 bench/compare_predict_csv.py A.csv B.csv [_classes.csv]   (standard library only)"""
import csv
import os
import sys

a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
if [r["image"] for r in a] != [r["image"] for r in b]:
    sys.exit("compare_predict_csv: the two files list other images (or in another order)")
classes = [c for c in a[0] if c not in ("image", "predicted_stage", "confidence")]
diffs = [abs(float(x[c]) - float(y[c])) for x, y in zip(a, b) for c in classes]
same = sum(x["predicted_stage"] == y["predicted_stage"] for x, y in zip(a, b))
print(f"{len(a)} images, {len(classes)} classes: max |dp| {max(diffs):.4f}, mean |dp| {sum(diffs) / len(diffs):.5f}, "
      f"same top class {same}/{len(a)}")
if len(sys.argv) > 3:
    rows = list(csv.reader(open(sys.argv[3])))
    names = [h.strip() for h in rows[0][1:]]
    label = {}
    for r in rows[1:]:
        v = [float(x) for x in r[1:]]
        label[r[0].strip()] = names[v.index(max(v))]
    for name, rs in (("first", a), ("second", b)):
        acc = sum(r["predicted_stage"] == label[os.path.basename(r["image"])] for r in rs) / len(rs)
        print(f"accuracy of the {name} file: {acc:.4f}")
