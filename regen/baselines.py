"""Baselines measured beside regen in the same run: raw-signal nearest neighbour, most-frequent
report, random corpus report. Each has the same shape as the thing it stands in for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from regen.prepare import Prepared


class RawSignalEmbedder:
    """The first window, each lead z-scored, flattened, unit norm: (N, 12*T) float32.
    Cosine between these is the raw-signal nearest-neighbour baseline."""

    name = "raw-signal"
    fingerprint = "raw-zscore-v1"

    def embed(self, items: Sequence[Prepared], batch_size: int = 0) -> np.ndarray:
        x = np.stack([p.windows[0] for p in items]).astype(np.float32)     # (N, 12, T)
        x = x - x.mean(-1, keepdims=True)
        x = x / (x.std(-1, keepdims=True) + 1e-6)
        x = x.reshape(len(items), -1)
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def most_frequent(texts: Sequence[str]) -> str:
    """The most common report text (whitespace- and case-normalised), ties to the first seen."""
    norm = [" ".join(t.lower().split()) for t in texts if t.strip()]
    return Counter(norm).most_common(1)[0][0] if norm else ""


def random_reports(texts: Sequence[str], n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    pool = [t for t in texts if t.strip()]
    return [pool[i] for i in rng.integers(0, len(pool), n)]
