"""Shared fixtures: copies of bundled WFDB records that a test may damage, a regen home built
once from the bundled sample, PostgreSQL, a free loopback port, and a synthetic lead II."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from regen.ecg import ECG


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


PG_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def reachable_pg_url() -> tuple[str | None, str]:
    """The first PostgreSQL URL on 127.0.0.1:5432 that answers, or None and why not."""
    from sqlalchemy import create_engine, text

    import db

    reasons = []
    for url in PG_URLS:
        try:
            engine = create_engine(url, connect_args={"connect_timeout": 3})
        except Exception as exc:  # noqa: BLE001 - e.g. psycopg not installed
            return None, f"cannot create a PostgreSQL engine: {exc}"
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url, ""
        except Exception as exc:  # noqa: BLE001 - any failure means "skip", with the reason
            reasons.append(f"{db.mask_url(url)}: {str(exc).splitlines()[0]}")
        finally:
            engine.dispose()
    return None, "no PostgreSQL server reachable (" + "; ".join(reasons) + ")"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL (trust auth, database `test`), or the test is skipped."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'regen[dev]'")
    url, reason = reachable_pg_url()
    if url is None:
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def make_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """make_home(name) -> a fresh regen home under tmp_path on this test's backend: its own
    SQLite file, or (via HOME/config.toml, as a deployment would) a fresh PostgreSQL schema,
    dropped afterwards. The API and the CLI both read the home's config."""
    schemas: list[str] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None

    def make(name: str) -> Path:
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        if url is not None:
            schemas.append(f"regen_test_{uuid.uuid4().hex[:12]}")
            (home / "config.toml").write_text(
                f'database_url = "{url}"\ndatabase_schema = "{schemas[-1]}"\n')
        return home

    yield make
    if schemas:
        from sqlalchemy import create_engine, text

        admin = create_engine(url)
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home indexing the bundled sample's folds 1-8 (240 ECGs), built once per session.
    Tests read it (and log generations into it); a test that rebuilds makes its own."""
    from regen import load_ptbxl, load_settings
    from regen.rebuild import rebuild

    home = tmp_path_factory.mktemp("sample-home")
    rebuild(load_settings(home), load_ptbxl(SAMPLE, folds="1-8"), data_source="sample",
            progress=False)
    return home


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_lead_ii(rr_s: np.ndarray, p_wave: bool, seed: int = 0, fs: float = 100.0) -> ECG:
    """Lead II: a QRS at each R time, a P wave 0.16 s before it (p_wave) or fibrillatory
    noise (4-7 Hz waves of random phase and size) throughout instead."""
    from regen.ecg import ECG

    rng = np.random.default_rng(seed)
    r = np.cumsum(np.concatenate([[0.6], rr_s]))
    n = int((r[-1] + 0.8) * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    for rt in r:
        x += 1.2 * np.exp(-0.5 * ((t - rt) / 0.012) ** 2)             # R
        x -= 0.25 * np.exp(-0.5 * ((t - rt - 0.03) / 0.012) ** 2)     # S
        x += 0.3 * np.exp(-0.5 * ((t - rt - 0.28) / 0.05) ** 2)       # T
        if p_wave:
            x += 0.15 * np.exp(-0.5 * ((t - rt + 0.16) / 0.025) ** 2)
    if not p_wave:
        for f in rng.uniform(4, 7, 6):
            x += rng.uniform(0.02, 0.06) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    x += rng.normal(0, 0.005, n)
    return ECG(x[None].astype(np.float32), fs, ("II",), "synthetic")
