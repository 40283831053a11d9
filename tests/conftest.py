"""Shared fixtures: copies of bundled WFDB records that a test may damage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def copy_record(tmp_path: Path) -> Callable[..., Path]:
    """copy_record(record, dest=None) -> the copy's record path (no extension) under tmp_path.

    Every file of the record (`record.*`: .hea, .dat, .xyz, ...) is copied with its own name, so
    the header still finds its signal files.
    """

    def copy(record: Path, dest: Path | None = None) -> Path:
        dest = dest or tmp_path
        dest.mkdir(parents=True, exist_ok=True)
        files = sorted(record.parent.glob(record.name + ".*"))
        assert files, f"no files for record {record}"
        for f in files:
            shutil.copy(f, dest / f.name)
        return dest / record.name

    return copy
