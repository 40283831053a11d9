"""Shared fixtures: copies of bundled WFDB records that a test may damage, a regen home built
once from the bundled sample, PostgreSQL, and a free loopback port."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
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
