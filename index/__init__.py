"""Vector search for regen: FAISS indexes keyed by int64 ids, saved with a manifest.

Knows nothing about ECGs; it stores and searches float32 vectors. Depends only on numpy and
FAISS.
"""

from index.exact import exact_search, recall_at_k
from index.manifest import FingerprintMismatchError, IndexManifest, IndexStoreError
from index.store import VectorIndex, set_threads

__all__ = [
    "FingerprintMismatchError",
    "IndexManifest",
    "IndexStoreError",
    "VectorIndex",
    "exact_search",
    "recall_at_k",
    "set_threads",
]
