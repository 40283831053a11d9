"""Metrics and small fits with no heavy dependencies: ROC-AUC, text overlap (BLEU, ROUGE-L),
kNN label scores, an L2-regularised logistic regression.

Text metrics tokenise by lower-casing and splitting on anything that is not a letter or digit.
BLEU is NLTK's sentence BLEU with smoothing method 1, averaged over sentences (needs `nltk`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9äöüß]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC-AUC by the rank-sum (Mann-Whitney) formula, ties averaged; NaN if one class."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_f1(pred: np.ndarray, true: np.ndarray) -> float:
    """F1 of boolean decisions against boolean truth; NaN when neither has a positive."""
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    d = int(pred.sum() + true.sum())
    return float(2 * (pred & true).sum() / d) if d else float("nan")


def log_loss(p: np.ndarray, y: np.ndarray, eps: float = 1e-9) -> float:
    """Mean binary cross-entropy of probabilities p against outcomes y (p clipped to
    [eps, 1 - eps])."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def macro_auc(y: np.ndarray, scores: np.ndarray) -> tuple[float, list[float]]:
    """y (N, C) {0,1}, scores (N, C) -> (mean AUC over classes with both outcomes, per class)."""
    per = [roc_auc(y[:, c], scores[:, c]) for c in range(y.shape[1])]
    valid = [a for a in per if not np.isnan(a)]
    return (float(np.mean(valid)) if valid else float("nan")), per


def softmax_weights(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of similarity scores over the last axis: closer neighbours weigh more. The one
    definition of neighbour weights (the consensus refiner uses temperature 0.05, the kNN label
    vote 0.1, the findings model the temperature its CV chose). A score of -inf (no neighbour)
    weighs 0; a row with none gets all-zero weights."""
    top = scores.max(axis=-1, keepdims=True)
    w = np.exp((scores - np.where(np.isfinite(top), top, 0.0)) / temperature)
    tot = w.sum(axis=-1, keepdims=True)
    return w / np.where(tot > 0, tot, 1.0)


def knn_label_scores(sims: np.ndarray, neighbour_labels: np.ndarray,
                     temperature: float = 0.1) -> np.ndarray:
    """sims (M, k) similarities, neighbour_labels (M, k, C) {0,1} -> (M, C) weighted vote in [0,1].
    Weights are softmax(sims / temperature), so closer neighbours count more."""
    w = softmax_weights(sims, temperature)
    return (w[..., None] * neighbour_labels).sum(1)


def lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyp: str, ref: str, beta: float = 1.2) -> float:
    """ROUGE-L F-measure (Lin 2004, beta=1.2 as in the COCO caption toolkit)."""
    h, r = tokenize(hyp), tokenize(ref)
    lcs = lcs_len(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return (1 + beta**2) * p * rec / (rec + beta**2 * p)


def bleu(hyps: Sequence[str], refs: Sequence[str], n: int = 4) -> float:
    """Mean sentence BLEU-n (uniform weights up to n) with NLTK smoothing method 1."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smooth = SmoothingFunction().method1
    weights = tuple([1.0 / n] * n)
    vals = [sentence_bleu([tokenize(r)], tokenize(h), weights=weights, smoothing_function=smooth)
            if tokenize(h) and tokenize(r) else 0.0 for h, r in zip(hyps, refs)]
    return float(np.mean(vals)) if vals else float("nan")


def text_scores(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L F1, each averaged over the pairs."""
    out = {f"bleu{n}": bleu(hyps, refs, n) for n in (1, 2, 3, 4)}
    out["rouge_l"] = float(np.mean([rouge_l(h, r) for h, r in zip(hyps, refs)]))
    out["n"] = len(hyps)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression of y (N,) in {0, 1} on x (N, d) by L-BFGS: (weights,
    intercept); the intercept is not penalized."""
    from scipy.optimize import minimize

    n, d = x.shape

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w[:d] + w[d]
        p = 1.0 / (1.0 + np.exp(-z))
        nll = np.logaddexp(0.0, z).sum() - (y * z).sum()
        g = p - y
        return (nll + 0.5 * l2 * w[:d] @ w[:d],
                np.concatenate([x.T @ g + l2 * w[:d], [g.sum()]]))

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 1000})
    return res.x[:d], float(res.x[d])
