"""The errors of `index/` and how a saved index sits on disk, FAISS aside.

A saved index is a directory holding `index.faiss` (FAISS's own format) and `manifest.json`
(an `IndexManifest`). The manifest is read first, so a wrong encoder or a truncated file is
reported before FAISS touches a possibly large binary. The directory is replaced as a whole
by renames (`replace_dir`), never rewritten in place.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
METRICS = ("ip", "l2")


class IndexStoreError(Exception):
    """Base of every error `index/` raises on purpose; the message gives value, expectation, fix."""


class FingerprintMismatchError(IndexStoreError):
    """A saved index was built by another encoder than the one it is being loaded for."""


@dataclass(frozen=True)
class IndexManifest:
    """What a saved index is and who built it.

    `factory` is the FAISS factory string without the id-map wrapper ("Flat", "HNSW32",
    "IVF256,Flat", "IVF256,PQ32"); `metric` is "ip" (inner product, i.e. cosine on unit-norm
    vectors) or "l2" (squared Euclidean); `count` is the number of stored vectors;
    `created_at` is ISO-8601 UTC; `faiss_version` is the FAISS that wrote the file.
    """

    factory: str
    metric: str
    dim: int
    count: int
    encoder_fingerprint: str
    created_at: str
    faiss_version: str

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict with one key per field."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IndexManifest:
        """Parse a dict written by `to_json`, checking every field's presence and type.

        Unknown keys are ignored so that a newer writer can add fields. Raises IndexStoreError
        naming the field that is missing or malformed.
        """
        if not isinstance(d, dict):
            raise IndexStoreError(
                f"manifest is a JSON {type(d).__name__}; expected an object with the fields "
                f"{[f.name for f in fields(cls)]}; rebuild the index"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                raise IndexStoreError(f"manifest field {f.name!r} is missing; rebuild the index")
            value = d[f.name]
            expected = int if f.type == "int" else str
            # bool is an int subclass, but `"dim": true` is a corrupt manifest, not dim 1.
            if not isinstance(value, expected) or isinstance(value, bool):
                raise IndexStoreError(
                    f"manifest field {f.name!r} is {value!r}; expected a {expected.__name__}; "
                    "rebuild the index"
                )
            values[f.name] = value
        manifest = cls(**values)
        manifest.check()
        return manifest

    def check(self) -> None:
        """Raise IndexStoreError if a field holds a value no index can have."""
        if self.metric not in METRICS:
            raise IndexStoreError(
                f"metric {self.metric!r} is not supported; expected one of {list(METRICS)}"
            )
        if self.dim < 1:
            raise IndexStoreError(f"dim is {self.dim}; expected a positive vector dimension")
        if self.count < 0:
            raise IndexStoreError(f"count is {self.count}; expected 0 or more vectors")
        if not self.encoder_fingerprint:
            raise IndexStoreError(
                "encoder_fingerprint is empty; pass the fingerprint of the encoder that made "
                "the vectors, so a later load can tell whether it still matches"
            )


def utc_now() -> str:
    """The current time as ISO-8601 UTC with seconds precision, e.g. 2024-05-01T12:00:00+00:00."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def min_training_points(factory: str) -> int:
    """The fewest vectors FAISS's k-means accepts to train `factory`; 0 if it needs no training.

    IVF<n> clusters into n lists and PQ<m>[x<bits>] into 2**bits centroids per sub-quantizer
    (8 bits unless given; "fs" fast-scan variants use 4). Other trained components (SQ, PCA, ...)
    are covered by wrapping FAISS's own error at train time.
    """
    needed = 0
    for match in re.finditer(r"IVF(\d+)", factory):
        needed = max(needed, int(match.group(1)))
    for match in re.finditer(r"PQ\d+(?:x(\d+))?(fs)?", factory):
        bits = int(match.group(1)) if match.group(1) else (4 if match.group(2) else 8)
        needed = max(needed, 2**bits)
    return needed


def faiss_reason(exc: BaseException) -> str:
    """The human part of a FAISS RuntimeError, without the C++ signature and source location."""
    text = str(exc).strip()
    if "failed: " in text:  # FAISS_THROW_IF_NOT_MSG: "... Error: 'cond' failed: message"
        return text.rsplit("failed: ", 1)[1].strip()
    # FAISS_THROW_MSG: "Error in <signature> at <file>:<line>: message"
    match = re.match(r"Error in .*? at \S+:\d+: (.*)", text, flags=re.DOTALL)
    return match.group(1).strip() if match else text


def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (a directory's fsync makes its renames durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(new: Path, target: Path) -> None:
    """Rename `new` to `target`, replacing an existing `target` directory as a whole."""
    if not target.exists():
        os.rename(new, target)
    else:
        old = target.parent / f".tmp-old-{target.name}-{uuid.uuid4().hex[:12]}"
        os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(target.parent)
