"""Findings written in words: zero-shot scores and search by meaning, through the encoder's
ECG-report alignment.

The encoder was trained (soft-CLIP, `regen.train.text_alignment`) with a head that maps an ECG
embedding into all-MiniLM-L6-v2's report space. So any text can be scored against an ECG
without labels for it:

* **text path**: cosine between the ECG's text projection and the text's prompt ensemble (each
  phrasing in `TEMPLATES`, MiniLM-embedded, averaged and renormalised: CLIP's prompt
  ensembling). The templates were fixed before any measurement.
* **neighbours path**: the similarity-weighted mean, over the ECG's voting neighbours (k and
  temperature of the build's findings model, chosen by CV in the corpus), of how well each
  neighbour's *report* matches the text. It needs the build's text index.

Cosines of different texts are not comparable, so each raw score becomes a **percentile**
against a reference sample of corpus ECGs (each scored with its own neighbours, itself and its
patient left out): "this ECG matches the text better than 93 % of corpus ECGs". With both
paths the score is the mean of the two percentiles. It ranks ECGs for one text; it is not a
probability (no labels were used to make it one), and outputs say so.

The text index (`text-{language}.npz` beside an index build) holds the corpus reports' MiniLM
embeddings, the ids they belong to, and the reference sample; it is versioned with its build,
written atomically, and made by `regen index rebuild` (or on first use for older builds).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from regen.errors import ConfigError, QuestionError
from regen.findings import Targets, report_text, save_arrays
from regen.metrics import softmax_weights

# Prompt ensemble: each phrasing of a label is embedded in each template; fixed a priori (the
# corpus's reports are terse statements, so the bare phrase and short carriers around it).
TEMPLATES = ("{}", "{}.", "ecg: {}", "{} present", "consistent with {}")
REF_SIZE = 2000            # corpus ECGs in the percentile reference sample (all when fewer)
VERSION = 1
MAX_LABELS = 64
MAX_LABEL_CHARS = 300
PATHS = ("auto", "text", "text+neighbours")


def phrasings(label: str) -> list[str]:
    """The phrasings of one label: alternatives separated by "|" ("atrial fibrillation|afib")."""
    parts = [" ".join(p.lower().split()) for p in label.split("|")]
    return [p for p in parts if p]


def check_labels(labels: Sequence[str]) -> list[str]:
    """Labels as given, checked: 1-64 non-empty texts of at most 300 characters, no repeats."""
    out = [str(x).strip() for x in labels]
    if not out:
        raise QuestionError("no labels given; pass texts like \"atrial fibrillation; left "
                            "bundle branch block\"")
    if len(out) > MAX_LABELS:
        raise QuestionError(f"{len(out)} labels given; at most {MAX_LABELS} per call")
    for lab in out:
        if not phrasings(lab):
            raise QuestionError(f"an empty label in {labels!r}; remove it")
        if len(lab) > MAX_LABEL_CHARS:
            raise QuestionError(f"label {lab[:40]!r}... has {len(lab)} characters; at most "
                                f"{MAX_LABEL_CHARS}")
    if len(set(out)) != len(out):
        raise QuestionError(f"labels repeat in {out!r}; give each once")
    return out


def split_labels(text: str) -> list[str]:
    """The CLI's --labels: labels separated by ";" (or newlines)."""
    return [p.strip() for p in text.replace("\n", ";").split(";") if p.strip()]


@lru_cache(maxsize=4096)
def _label_vector(label: str) -> np.ndarray:
    from regen.text import embed_texts

    texts = [t.format(p) for p in phrasings(label) for t in TEMPLATES]
    v = embed_texts(texts).mean(0)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def label_vectors(labels: Sequence[str]) -> np.ndarray:
    """(L, 384) unit-norm prompt-ensemble embeddings; cached per label text."""
    return np.stack([_label_vector(lab) for lab in labels])


def text_projection(encoder: object, z: np.ndarray) -> np.ndarray:
    """Unit-norm ECG embeddings (N, dim) -> (N, 384) unit-norm points in the report space.

    The text head was trained on the encoder's LayerNorm output, whose norm is sqrt(dim) (its
    gain is ~1 and bias ~0), so the unit vectors the index stores are rescaled by sqrt(dim);
    on PTB-XL folds 1-8 this agrees with projecting the raw output at cosine >= 0.999.
    """
    import torch

    model = getattr(encoder, "model", None)
    head = getattr(model, "text_head", None)
    if head is None:
        raise ConfigError("this encoder has no text head (it was trained without report "
                          "texts), so it cannot score text labels; use the shipped encoder or "
                          "retrain with reports (`regen train` with a corpus that has them)")
    dim = int(z.shape[1])
    with torch.inference_mode():
        t = head(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)) * math.sqrt(dim))
        t = torch.nn.functional.normalize(t, dim=-1)
    return t.numpy().astype(np.float32)


def percentile(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per column: the share of `ref` rows below `x` (ties count half). x (M, L), ref (R, L)
    with each column sorted."""
    out = np.empty(x.shape, dtype=np.float64)
    for j in range(x.shape[1]):
        r = ref[:, j]
        lo = np.searchsorted(r, x[:, j], side="left")
        hi = np.searchsorted(r, x[:, j], side="right")
        out[:, j] = (lo + hi) / (2.0 * len(r))
    return out


@dataclass
class TextIndex:
    """A build's corpus reports in MiniLM space, keyed like the ECG index, with the reference
    sample for percentiles: `ref_rows` (M,) rows, their voters `ref_vrows` / `ref_vsims` (M, k)
    and their ECG text projections `ref_proj` (M, 384)."""

    ids: np.ndarray
    keys: np.ndarray
    patients: np.ndarray
    reports: np.ndarray            # (N, 384) float32 unit-norm; zero rows: no report
    ref_rows: np.ndarray
    ref_vrows: np.ndarray
    ref_vsims: np.ndarray
    ref_proj: np.ndarray
    k: int
    temperature: float
    encoder: str

    def __post_init__(self) -> None:
        self.targets = Targets(self.ids, np.zeros((len(self.ids), 0), bool),
                               np.zeros((len(self.ids), 0), bool), self.keys, self.patients)
        self._faiss: object | None = None
        self._ref_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- persistence ----------------------------------------------------------------------
    @staticmethod
    def file(build_dir: Path, language: str) -> Path:
        return build_dir / f"text-{language}.npz"

    def save(self, path: Path) -> None:
        save_arrays(path, version=np.array(VERSION), ids=self.ids, keys=self.keys,
                    patients=np.asarray(self.patients, dtype=str), reports=self.reports,
                    ref_rows=self.ref_rows, ref_vrows=self.ref_vrows, ref_vsims=self.ref_vsims,
                    ref_proj=self.ref_proj, k=np.array(self.k),
                    temperature=np.array(self.temperature), encoder=np.array(self.encoder))

    @classmethod
    def load(cls, path: Path) -> TextIndex:
        a = np.load(path, allow_pickle=False)
        if int(a["version"]) != VERSION:
            raise ValueError(f"{path}: text index version {int(a['version'])}, not {VERSION}")
        return cls(a["ids"], a["keys"], a["patients"], a["reports"], a["ref_rows"],
                   a["ref_vrows"], a["ref_vsims"], a["ref_proj"], int(a["k"]),
                   float(a["temperature"]), str(a["encoder"]))

    @classmethod
    def load_or_build(cls, build_dir: Path, records: Callable[[], tuple[np.ndarray, np.ndarray,
                                                                         list]],
                      language: str, encoder: object, k: int, temperature: float,
                      voters: Callable[[np.ndarray, Targets, list], tuple[np.ndarray,
                                                                           np.ndarray]],
                      log: Callable[[str], None] | None = None) -> TextIndex:
        """Load the build's text index, or make it (and save it when the folder is writable).
        `voters(vectors, targets, own)` searches the ECG index as a report's vote does."""
        path = cls.file(build_dir, language)
        fp = str(getattr(encoder, "fingerprint", ""))
        if path.exists():
            try:
                ti = cls.load(path)
                if ti.encoder == fp and ti.k == k:
                    return ti
            except (KeyError, ValueError, OSError):
                pass                        # another version: make it again
        log = log or (lambda m: print(m, file=sys.stderr))
        ids, vectors, views = records()
        log(f"text index: embedding {len(views)} corpus reports with MiniLM")
        texts = [report_text(v, language) or "" for v in views]
        from regen.text import embed_texts

        reports = embed_texts(texts)
        keys = np.array([v.key for v in views], dtype=str)
        patients = np.array([v.patient_id or "" for v in views], dtype=str)
        rng = np.random.default_rng(0)
        ref = np.sort(rng.choice(len(ids), size=min(REF_SIZE, len(ids)), replace=False))
        ti = cls(np.asarray(ids, np.int64), keys, patients, reports, ref,
                 np.zeros((len(ref), 0), np.int64), np.zeros((len(ref), 0)),
                 text_projection(encoder, vectors[ref]), k, temperature, fp)
        own = [(int(ids[r]), str(patients[r]) or None) for r in ref]
        ti.ref_vrows, ti.ref_vsims = voters(vectors[ref], ti.targets, own)
        try:
            ti.save(path)
        except OSError as exc:
            log(f"text index not saved in {build_dir}: {exc}")
        return ti

    # -- scoring ----------------------------------------------------------------------------
    def neighbour_scores(self, rows: np.ndarray, sims: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Voters (M, k) and label vectors (L, 384) -> (M, L): the weighted mean of how well each
        voter's report matches each label (voters without a report count as no match: 0)."""
        rows, sims = rows[:, :self.k], sims[:, :self.k]
        w = softmax_weights(sims, self.temperature)                      # (M, k)
        used, inv = np.unique(np.maximum(rows, 0), return_inverse=True)
        rel = (self.reports[used] @ t.T)[inv.reshape(rows.shape)]        # (M, k, L)
        rel[rows < 0] = 0.0
        return np.einsum("mk,mkl->ml", w, rel)

    def reference(self, labels: Sequence[str], t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The reference sample's raw (text, neighbours) scores for labels (L,) with vectors
        t (L, 384), each column sorted; cached per label text."""
        cache = self._ref_cache
        new = [i for i, lab in enumerate(labels) if lab not in cache]
        if new:
            tt = t[new]
            a, b = self.ref_proj @ tt.T, self.neighbour_scores(self.ref_vrows, self.ref_vsims, tt)
            for j, i in enumerate(new):
                cache[labels[i]] = (np.sort(a[:, j]), np.sort(b[:, j]))
        return (np.stack([cache[lab][0] for lab in labels], 1),
                np.stack([cache[lab][1] for lab in labels], 1))

    def search(self, t: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n corpus reports closest to one text vector: (cosines (n,), rows (n,))."""
        import faiss

        if self._faiss is None:
            index = faiss.IndexFlatIP(self.reports.shape[1])
            index.add(np.ascontiguousarray(self.reports, dtype=np.float32))
            self._faiss = index
        scores, rows = self._faiss.search(t[None].astype(np.float32),  # type: ignore[attr-defined]
                                          min(n, len(self.ids)))
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]


def classify_scores(proj: np.ndarray, labels: Sequence[str], t: np.ndarray,
                    ti: TextIndex | None, voters: tuple[np.ndarray, np.ndarray] | None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Queries' text projections (M, 384), labels with their vectors (L, 384), the text index
    and the queries' voters (or None: text path only) -> (scores (M, L) in [0, 1], parts)."""
    raw_text = proj @ t.T
    parts: dict[str, np.ndarray] = {"text_cosine": raw_text}
    if ti is None:
        return raw_text, parts            # no reference: the cosine itself (-1..1)
    ref_text, ref_nb = ti.reference(labels, t)
    parts["text"] = percentile(raw_text, ref_text)
    if voters is None:
        return parts["text"], parts
    nb = ti.neighbour_scores(voters[0], voters[1], t)
    parts["neighbours_match"] = nb
    parts["neighbours"] = percentile(nb, ref_nb)
    return 0.5 * (parts["text"] + parts["neighbours"]), parts


__all__ = ["PATHS", "TEMPLATES", "TextIndex", "check_labels", "classify_scores", "label_vectors",
           "percentile", "phrasings", "split_labels", "text_projection"]

