#!/usr/bin/python3
"""Golden numbers for train/metrics.c, train/calibration.c and train/report.c, from scikit-learn
(Debian's python3-sklearn 1.2) and PyTorch (python3-torch 1.13). Writes tests/golden/metrics/*.json.

Run from the repository root:  /usr/bin/python3 tests/reference/metrics_ref.py
ctest never runs this script; it only reads the JSON files it wrote.

Definitions this file pins (the C code must agree, see train/metrics.h):
- predictions are argmax with the first maximum winning (numpy.argmax);
- top-k follows sklearn.metrics.top_k_accuracy_score (multiclass path: among tied scores the
  higher class index ranks first);
- log_loss is sklearn.metrics.log_loss on float64 input (clip to [eps, 1-eps], eps = 2.22e-16,
  then each row renormalised);
- brier_score is the multiclass Brier score: mean over samples of the sum over classes of
  (p_ic - [y_i == c])^2, range [0, 2]; computed here as the sum over classes of
  sklearn.metrics.brier_score_loss(one-vs-rest), which is the same quantity;
- ROC-AUC / AP are one-vs-rest per class with sklearn's binary functions; a class without
  positives (AUC: or without negatives) is undefined (null) and left out of the macro mean;
- ECE uses 15 equal-width bins with sklearn.calibration.calibration_curve's binning
  (bin = searchsorted(linspace(0, 1, 16)[1:-1], p), i.e. (lo, hi] with the first bin [0, hi]):
  ECE = sum_m |B_m|/N |acc(B_m) - conf(B_m)|. Per class: one-vs-rest on p[:, c]; top label: the
  max probability against argmax correctness; ece_mean = mean of the per-class values;
- multi-label predictions are p >= threshold (0.5).
"""
import json
import math
import os
import sys
import warnings

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score,
                             brier_score_loss, classification_report, cohen_kappa_score,
                             confusion_matrix, f1_score, hamming_loss, log_loss,
                             matthews_corrcoef, precision_recall_fscore_support, roc_auc_score,
                             top_k_accuracy_score)

warnings.filterwarnings("ignore")
ECE_BINS = 15
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "metrics")


def f32(a):
    """Values the C side can hold exactly as float (the report API takes float probabilities)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def clean(x):
    """NaN -> None (JSON null), numpy -> python."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    x = float(x)
    return None if math.isnan(x) else x


def ece_binary(y, p, n_bins=ECE_BINS):
    """ECE of binary targets y against scores p with calibration_curve's bins and counts."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], p), minlength=n_bins)
    nz = counts[counts != 0]
    assert len(nz) == len(prob_true)
    ece = float(np.sum(nz / len(p) * np.abs(prob_true - prob_pred)))
    return ece, counts, prob_true, prob_pred


def ovr_auc_ap(y_bin, p):
    """sklearn's binary AUC and AP; None where undefined (the skip rule in train/metrics.h)."""
    pos = int(y_bin.sum())
    neg = len(y_bin) - pos
    auc = roc_auc_score(y_bin, p) if pos > 0 and neg > 0 else float("nan")
    ap = average_precision_score(y_bin, p) if pos > 0 else float("nan")
    return auc, ap


def single_label_case(name, probs, labels, note):
    probs = f32(probs)
    labels = np.asarray(labels, dtype=np.int64)
    n, c = probs.shape
    classes = list(range(c))
    names = ["class_%d" % i for i in classes]
    if name == "random_c6":  # real-export quirks: spaces and dashes in names
        names = ["LEVEL_2", "LEVEL_3", "Terry-s nail", "Bluish Nail", "LEVEL_6", "LEVEL_7"]
    pred = np.argmax(probs, axis=1)
    onehot = np.eye(c)[labels]

    per_auc, per_ap, per_ece = [], [], []
    for k in classes:
        yb = (labels == k).astype(np.int64)
        auc, ap = ovr_auc_ap(yb, probs[:, k])
        per_auc.append(auc)
        per_ap.append(ap)
        per_ece.append(ece_binary(yb, probs[:, k])[0])
    correct = (pred == labels).astype(np.int64)
    ece_top, counts_top, _, _ = ece_binary(correct, probs.max(axis=1))

    topk = []
    for k in range(1, min(5, c) + 1):
        if c > 2:
            topk.append(top_k_accuracy_score(labels, probs, k=k, labels=classes))
        else:  # force sklearn's multiclass (rank) path with a never-winning third column
            padded = np.hstack([probs, np.full((n, 1), -1.0)])
            topk.append(top_k_accuracy_score(labels, padded, k=k, labels=[0, 1, 2]))

    brier = sum(brier_score_loss(onehot[:, k], probs[:, k], pos_label=1) for k in classes)
    assert abs(brier - np.mean(np.sum((probs - onehot) ** 2, axis=1))) < 1e-12

    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(labels, pred, labels=classes, average="macro",
                                                    zero_division=0)
    wp, wr, wf, _ = precision_recall_fscore_support(labels, pred, labels=classes,
                                                    average="weighted", zero_division=0)
    with np.errstate(all="ignore"):
        kappa = cohen_kappa_score(labels, pred, labels=classes)
        kappa_q = cohen_kappa_score(labels, pred, labels=classes, weights="quadratic")
    out = {
        "name": name, "note": note, "n": n, "c": c, "class_names": names,
        "probs": probs.ravel().tolist(), "labels": labels.tolist(),
        "accuracy": accuracy_score(labels, pred),
        "balanced_accuracy": balanced_accuracy_score(labels, pred),
        "cohen_kappa": kappa, "cohen_kappa_quadratic": kappa_q,
        "matthews_corrcoef": matthews_corrcoef(labels, pred),
        "log_loss": log_loss(labels, probs, labels=classes),
        "brier_score": brier,
        "roc_auc_macro": np.nanmean(per_auc) if not np.all(np.isnan(per_auc)) else float("nan"),
        "average_precision_macro": np.nanmean(per_ap) if not np.all(np.isnan(per_ap)) else float("nan"),
        "topk": topk,
        "per_class_auc": per_auc, "per_class_ap": per_ap,
        "ece_bins": ECE_BINS, "ece_per_class": per_ece, "ece_mean": float(np.mean(per_ece)),
        "ece_top_label": ece_top, "ece_top_label_counts": counts_top.tolist(),
        "confusion_matrix": confusion_matrix(labels, pred, labels=classes).tolist(),
        "precision": p, "recall": r, "f1": f, "support": s.tolist(),
        "macro_precision": mp, "macro_recall": mr, "macro_f1": mf,
        "weighted_precision": wp, "weighted_recall": wr, "weighted_f1": wf,
        "classification_report": classification_report(labels, pred, labels=classes,
                                                        target_names=names, digits=2,
                                                        zero_division=0),
        "classification_report_digits4": classification_report(labels, pred, labels=classes,
                                                                target_names=names, digits=4,
                                                                zero_division=0),
    }
    return {k: (clean(v) if isinstance(v, (float, np.floating, list, np.ndarray)) and k not in
                ("class_names",) else v) for k, v in out.items()}


def multilabel_case(name, probs, targets, note, threshold=0.5):
    probs = f32(probs)
    targets = np.asarray(targets, dtype=np.int64)
    n, L = probs.shape
    names = ["label_%d" % i for i in range(L)]
    pred = (probs >= threshold).astype(np.int64)
    per_auc, per_ap, per_ece = [], [], []
    for k in range(L):
        auc, ap = ovr_auc_ap(targets[:, k], probs[:, k])
        per_auc.append(auc)
        per_ap.append(ap)
        per_ece.append(ece_binary(targets[:, k], probs[:, k])[0])
    p, r, f, s = precision_recall_fscore_support(targets, pred, zero_division=0)
    avg = {}
    for a in ("micro", "macro", "weighted", "samples"):
        ap_, ar_, af_, _ = precision_recall_fscore_support(targets, pred, average=a,
                                                           zero_division=0)
        avg[a] = [ap_, ar_, af_]
    assert abs(avg["micro"][2] - f1_score(targets, pred, average="micro", zero_division=0)) < 1e-15
    out = {
        "name": name, "note": note, "n": n, "c": L, "class_names": names, "threshold": threshold,
        "probs": probs.ravel().tolist(), "targets": targets.ravel().tolist(),
        "precision": p, "recall": r, "f1": f, "support": s.tolist(),
        "micro": avg["micro"], "macro": avg["macro"], "weighted": avg["weighted"],
        "samples": avg["samples"],
        "subset_accuracy": accuracy_score(targets, pred),
        "hamming_loss": hamming_loss(targets, pred),
        "per_label_auc": per_auc, "per_label_ap": per_ap,
        "roc_auc_macro": np.nanmean(per_auc), "average_precision_macro": np.nanmean(per_ap),
        "ece_bins": ECE_BINS, "ece_per_label": per_ece, "ece_mean": float(np.mean(per_ece)),
        "classification_report": classification_report(targets, pred, target_names=names,
                                                        digits=2, zero_division=0),
    }
    return {k: (clean(v) if isinstance(v, (float, np.floating, list, np.ndarray)) and k not in
                ("class_names",) else v) for k, v in out.items()}


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def temperature_case(name, logits, labels, note):
    import torch
    logits = f32(logits)
    labels = np.asarray(labels, dtype=np.int64)
    zt = torch.tensor(logits, dtype=torch.float64)
    yt = torch.tensor(labels)
    nll = torch.nn.CrossEntropyLoss()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(log_t) > 0
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=500, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nll(zt / torch.exp(log_t), yt)
        loss.backward()
        return loss
    for _ in range(5):
        opt.step(closure)
    T = float(torch.exp(log_t).item())
    with torch.no_grad():
        nll_before = float(nll(zt, yt).item())
        nll_after = float(nll(zt / T, yt).item())
        grad = float(torch.autograd.functional.jacobian(
            lambda lt: nll(zt / torch.exp(lt), yt), log_t.detach()).item())
    assert abs(grad) < 1e-9, grad
    pb, pa = softmax(logits), softmax(logits / T)
    top = lambda P: ece_binary((P.argmax(1) == labels).astype(np.int64), P.max(1))[0]
    cls = lambda P: float(np.mean([ece_binary((labels == k).astype(np.int64), P[:, k])[0]
                                   for k in range(P.shape[1])]))
    return {"name": name, "note": note, "n": logits.shape[0], "c": logits.shape[1],
            "logits": logits.ravel().tolist(), "labels": labels.tolist(), "temperature": T,
            "nll_before": nll_before, "nll_after": nll_after,
            "ece_top_before": top(pb), "ece_top_after": top(pa),
            "ece_mean_before": cls(pb), "ece_mean_after": cls(pa)}


def classifier_probs(rng, labels, c, strength, temp):
    z = rng.normal(0.0, 1.0, (len(labels), c))
    z[np.arange(len(labels)), labels] += strength
    return softmax(z / temp)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240605)
    cases = []

    y = rng.integers(0, 6, 150)
    cases.append(single_label_case("random_c6", classifier_probs(rng, y, 6, 1.6, 0.8), y,
                                   "noisy classifier, 6 classes, names with spaces/dashes"))

    y = np.repeat(np.arange(4), 10)
    P = np.full((40, 4), 0.01)
    P[np.arange(40), y] = 0.97
    P[0] = [1.0, 0.0, 0.0, 0.0]        # exact 0 and 1: log_loss clipping
    P[10] = [0.0, 1.0, 0.0, 0.0]
    cases.append(single_label_case("perfect", P, y, "every argmax right; exact 0/1 rows"))

    y = rng.integers(0, 3, 30)
    P = np.tile([0.5, 0.3, 0.2], (30, 1))
    cases.append(single_label_case("constant", P, y, "the same row for every sample: AUC 0.5"))

    y = rng.choice([0, 1, 2, 4], 60)
    P = classifier_probs(rng, y, 5, 1.0, 1.0)
    P[:8, 3] += 3.0                     # class 3 never true, but predicted on a few rows
    P /= P.sum(1, keepdims=True)
    cases.append(single_label_case("absent_class", P, y,
                                   "class 3 absent from labels but predicted: AUC/AP skipped"))

    y = rng.choice([0, 1, 3], 50)
    P = classifier_probs(rng, y, 4, 1.2, 1.0)
    P[:, 2] = 0.001
    P /= P.sum(1, keepdims=True)
    cases.append(single_label_case("unused_class", P, y,
                                   "class 2 neither true nor predicted: report says micro avg"))

    y = rng.integers(0, 4, 80)
    P = np.round(classifier_probs(rng, y, 4, 1.0, 1.5) * 5) / 5 + 0.05
    P[:6] = 0.25                        # rows where every class ties
    P[6:12] = [0.4, 0.4, 0.1, 0.1]      # argmax tie between class 0 and 1
    P /= P.sum(1, keepdims=True)
    cases.append(single_label_case("ties", P, y, "quantised scores: tied AUC/AP/top-k/argmax"))

    y = rng.integers(0, 2, 50)
    cases.append(single_label_case("binary", classifier_probs(rng, y, 2, 1.5, 1.0), y,
                                   "two classes"))

    for case in cases:
        with open(os.path.join(OUT, "cls_%s.json" % case["name"]), "w") as fp:
            json.dump(case, fp, allow_nan=False)
            fp.write("\n")

    T = rng.integers(0, 2, (120, 5))
    T[:10] = 0                          # rows with no label at all
    P = np.clip(0.35 * T + rng.uniform(0, 0.65, T.shape), 0, 1)
    ml = [multilabel_case("ml_random", P, T, "5 labels, noisy scores, 10 empty rows")]
    T = rng.integers(0, 2, (40, 4))
    T[:, 1] = 0                         # never positive: AUC and AP undefined
    T[:, 2] = 1                         # always positive: AUC undefined, AP 1
    P = np.round(rng.uniform(0, 1, T.shape) * 4) / 4   # many exact 0.5 (threshold ties)
    P[:5] = 0.0
    T[:5] = 0                           # rows with neither true nor predicted labels
    T[:5, 2] = 1
    ml.append(multilabel_case("ml_edge", P, T, "never/always positive labels, scores on 0.5"))
    for case in ml:
        with open(os.path.join(OUT, "%s.json" % case["name"]), "w") as fp:
            json.dump(case, fp, allow_nan=False)
            fp.write("\n")

    temps = []
    y = rng.integers(0, 5, 200)
    Z = rng.normal(0, 1, (200, 5))
    Z[np.arange(200), y] += 1.0
    Z *= 4.0                            # overconfident: T > 1
    temps.append(temperature_case("temp_overconfident", Z, y, "logits scaled up 4x"))
    y = rng.integers(0, 4, 150)
    Z = rng.normal(0, 1, (150, 4))
    Z[np.arange(150), y] += 2.5
    Z *= 0.3                            # underconfident: T < 1
    temps.append(temperature_case("temp_underconfident", Z, y, "logits scaled down"))
    for case in temps:
        with open(os.path.join(OUT, "%s.json" % case["name"]), "w") as fp:
            json.dump(case, fp, allow_nan=False)
            fp.write("\n")
    print("wrote %d files to %s" % (len(cases) + len(ml) + len(temps), os.path.normpath(OUT)))


if __name__ == "__main__":
    sys.exit(main())
