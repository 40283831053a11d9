"""Metrics on hand-made cases with known answers, and against brute-force definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from regen.metrics import (
    bleu,
    knn_label_scores,
    lcs_len,
    log_loss,
    macro_auc,
    roc_auc,
    rouge_l,
    text_scores,
    tokenize,
)


def pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half: the AUC's definition."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brute_lcs(a: list[str], b: list[str]) -> int:
    for k in range(min(len(a), len(b)), 0, -1):
        subs_b = set(itertools.combinations(b, k))
        if any(c in subs_b for c in itertools.combinations(a, k)):
            return k
    return 0


# --- ROC-AUC -----------------------------------------------------------------------------------

def test_roc_auc_perfect_inverted_and_tied() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    assert roc_auc(y, np.full(5, 0.4)) == 0.5


def test_roc_auc_hand_case_with_a_tie() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4, 0.4>0.1) = 3.5/4
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == 0.875


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_pairwise_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 12, 200).astype(float) + 2.0 * y  # many ties, some signal
    assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s), abs=1e-12)


def test_roc_auc_one_class_is_nan() -> None:
    assert math.isnan(roc_auc(np.ones(4), np.arange(4.0)))


def test_log_loss_hand_values_and_clipping() -> None:
    assert log_loss(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(np.log(2))
    assert log_loss(np.array([0.8]), np.array([1])) == pytest.approx(-np.log(0.8))
    # a certain wrong answer costs -log(eps), not infinity
    assert log_loss(np.array([0.0]), np.array([1]), eps=1e-6) == pytest.approx(-np.log(1e-6))


def test_macro_auc_skips_single_outcome_classes() -> None:
    y = np.array([[0, 1, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]])
    s = np.array([[0.1, 0.5, 0.9], [0.9, 0.5, 0.8], [0.2, 0.5, 0.1], [0.8, 0.5, 0.2]])
    mean, per = macro_auc(y, s)
    assert per[0] == 1.0 and math.isnan(per[1]) and per[2] == 0.0
    assert mean == 0.5


# --- text --------------------------------------------------------------------------------------

def test_tokenize() -> None:
    assert tokenize("Sinus-Rhythmus, QT 0.44s; Lagetyp: ÜBERDREHT") == [
        "sinus", "rhythmus", "qt", "0", "44s", "lagetyp", "überdreht"]


def test_rouge_l_identical_and_disjoint() -> None:
    assert rouge_l("sinus rhythm normal ecg", "Sinus rhythm, normal ECG.") == pytest.approx(1.0)
    assert rouge_l("atrial fibrillation", "sinus rhythm") == 0.0
    assert rouge_l("", "sinus rhythm") == 0.0


def test_rouge_l_hand_computed() -> None:
    # hyp a b c d e, ref a c e f: LCS a c e = 3, P = 3/5, R = 3/4, F_beta with beta = 1.2
    p, r, b2 = 3 / 5, 3 / 4, 1.2 ** 2
    assert rouge_l("a b c d e", "a c e f") == pytest.approx((1 + b2) * p * r / (r + b2 * p))
    assert rouge_l("a b c d e", "a c e f") == pytest.approx(2.44 * 0.45 / (0.75 + 0.864))


@pytest.mark.parametrize("seed", range(5))
def test_lcs_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = [str(x) for x in rng.integers(0, 4, 8)]
    b = [str(x) for x in rng.integers(0, 4, 7)]
    assert lcs_len(a, b) == brute_lcs(a, b)


def test_bleu_identical_and_disjoint() -> None:
    ref = "sinus rhythm left axis deviation incomplete right bundle branch block"
    assert bleu([ref], [ref]) == pytest.approx(1.0)
    assert bleu(["atrial fibrillation with rapid ventricular response"], [ref]) < 0.05
    assert bleu([""], [ref]) == 0.0


def test_bleu1_hand_computed() -> None:
    # 5 of the 6 hypothesis unigrams are in the reference, same length: brevity penalty 1
    assert bleu(["the cat sat on the mat"], ["the cat is on the mat"], n=1) == pytest.approx(5 / 6)
    # 3 words against a 6-word reference, all matched: BLEU-1 = exp(1 - 6/3)
    assert bleu(["the cat is"], ["the cat is on the mat"], n=1) == pytest.approx(math.exp(-1))


def test_bleu_is_a_mean_over_pairs() -> None:
    a = bleu(["the cat sat on the mat"], ["the cat is on the mat"], n=1)
    both = bleu(["the cat sat on the mat", "x y"], ["the cat is on the mat", "x y"], n=1)
    assert both == pytest.approx((a + 1.0) / 2)


def test_text_scores_keys() -> None:
    out = text_scores(["sinus rhythm"], ["sinus rhythm"])
    assert set(out) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "n"}
    assert out["rouge_l"] == pytest.approx(1.0) and out["bleu1"] == pytest.approx(1.0)
    assert out["n"] == 1


# --- kNN label scores --------------------------------------------------------------------------

def test_knn_weights_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    sims = rng.uniform(-1, 1, size=(6, 10))
    scores = knn_label_scores(sims, np.ones((6, 10, 4)))
    np.testing.assert_allclose(scores, 1.0)
    labels = rng.integers(0, 2, size=(6, 10, 4)).astype(float)
    out = knn_label_scores(sims, labels)
    assert out.shape == (6, 4) and (out >= 0).all() and (out <= 1).all()


def test_knn_equal_sims_give_the_mean() -> None:
    labels = np.random.default_rng(1).integers(0, 2, size=(3, 5, 4)).astype(float)
    out = knn_label_scores(np.full((3, 5), 0.7), labels)
    np.testing.assert_allclose(out, labels.mean(1))


def test_knn_closer_neighbours_count_more() -> None:
    # softmax(sims / 0.1) of (0.9, 0.1): weights e^8 / (e^8 + 1) and 1 / (e^8 + 1)
    out = knn_label_scores(np.array([[0.9, 0.1]]), np.array([[[1.0, 0.0], [0.0, 1.0]]]))
    w = math.exp(8) / (math.exp(8) + 1)
    np.testing.assert_allclose(out, [[w, 1 - w]])
