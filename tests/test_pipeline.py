"""End to end on the bundled sample: rebuild job -> index + database -> retrieve -> report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import db as store
from regen import (
    ECGReadError,
    IndexMismatchError,
    Regen,
    load_ptbxl,
    load_settings,
    read_ecg,
)
from regen.encoder import ECGEncoderModel, Encoder, EncoderConfig
from regen.rebuild import rebuild

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"


@pytest.fixture(scope="module")
def corpus():
    return load_ptbxl(SAMPLE, folds="1-8")


@pytest.fixture(scope="module")
def queries():
    return load_ptbxl(SAMPLE, folds="9")


@pytest.fixture(scope="module")
def home(tmp_path_factory, corpus):
    h = tmp_path_factory.mktemp("home")
    res = rebuild(load_settings(h), corpus, data_source="sample", progress=False)
    assert res.count == len(corpus)
    return h


def _count(home: Path, model) -> int:
    database = store.Database(load_settings(home).db_url)
    with database.session() as s:
        n = s.query(model).count()
    database.dispose()
    return n


def test_retrieve_returns_k_neighbours_best_first(home, queries):
    with Regen.open(home) as rg:
        nbrs = rg.retrieve(queries[0].path, k=5)
    assert len(nbrs) == 5
    scores = [n.score for n in nbrs]
    assert scores == sorted(scores, reverse=True)
    assert all(n.key.startswith("ptbxl:") and n.report for n in nbrs)
    assert all(-1.0 <= s <= 1.0001 for s in scores)


def test_query_from_corpus_excludes_itself_and_its_patient(home, corpus):
    rec = corpus[0]
    same_patient = {r.key for r in corpus if r.patient_id == rec.patient_id}
    with Regen.open(home) as rg:
        nbrs = rg.retrieve(rec.path, k=20)
    assert rec.key not in {n.key for n in nbrs}
    assert not same_patient & {n.key for n in nbrs}
    assert len(nbrs) == 20


def test_exclude_patients_argument(home, queries, corpus):
    with Regen.open(home) as rg:
        first = rg.retrieve(queries[1].path, k=3)
        banned = first[0].patient_id
        again = rg.retrieve(queries[1].path, k=3, exclude_patients=[banned])
    assert banned not in {n.patient_id for n in again}


def test_report_lists_neighbours_confidence_and_is_logged(home, queries):
    with Regen.open(home) as rg:
        before = _count(home, store.GenerationLog)
        r = rg.report(queries[2].path, k=7)
        after = _count(home, store.GenerationLog)
        rg.report(queries[2].path, k=7, log=False)
    assert after == before + 1
    assert _count(home, store.GenerationLog) == after
    assert len(r.neighbours) == 7
    assert 0.0 <= r.confidence <= 1.0
    assert r.refiner == "findings" and r.cited
    if not r.abstained:
        # each sentence names the corpus report it came from; they are cited first
        sources = tuple(dict.fromkeys(k for _, k in r.sentences))
        assert r.sentences and r.cited[:len(sources)] == sources
        assert all(t in r.text for t, _ in r.sentences)
    with Regen.open(home, refiner="consensus") as rg:
        c = rg.report(queries[2].path, k=7, log=False)
    assert c.cited and set(c.cited) <= {n.key for n in c.neighbours}
    if not c.abstained:
        # the consensus text is one neighbour's report, the first cited one
        chosen = next(n for n in c.neighbours if n.key == c.cited[0])
        assert c.text == chosen.report
    js = r.to_json()
    assert {"text", "confidence", "neighbours"} <= set(js)
    assert {"id", "score", "report"} <= set(js["neighbours"][0])


def test_reports_stream_in_order(home, queries):
    paths = [q.path for q in queries[:5]]
    with Regen.open(home) as rg:
        out = list(rg.reports(paths, k=3, log=False, chunk=2))
    assert [r.query for r in out] == paths


def test_any_rate_lead_subset_and_long_recording(home):
    with Regen.open(home) as rg:
        hr = read_ecg(next((SAMPLE / "records500").rglob("*.hea")))
        one_lead = hr.select(["II"])
        mitdb = read_ecg(DATA / "other" / "mitdb" / "100")
        for ecg in (hr, one_lead, mitdb):
            r = rg.report(ecg, k=5, log=False)
            assert len(r.neighbours) == 5


def test_embedding_ignores_values_in_masked_leads(home):
    """Missing leads are masked, not invented: whatever sits in them cannot change the output."""
    with Regen.open(home) as rg:
        enc = rg.encoder
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 12, enc.cfg.window)).astype(np.float32)
    m = np.zeros((3, 12), dtype=bool)
    m[:, 1] = True                      # lead II only
    w2 = w.copy()
    w2[:, ~m[0]] = rng.normal(size=(3, 11, enc.cfg.window)) * 5
    np.testing.assert_allclose(enc.embed_windows(w, m), enc.embed_windows(w2, m), atol=1e-5)


def test_rebuild_is_idempotent(home, corpus):
    settings = load_settings(home)
    database = store.Database(settings.db_url)
    with database.session() as s:
        ids_before = {r.key: r.id for r in s.query(store.Record)}
        active_before = store.active_build(s).id
    res = rebuild(settings, corpus, data_source="sample", progress=False)
    assert res.up_to_date and res.build_id is None
    with database.session() as s:
        assert store.active_build(s).id == active_before
        assert {r.key: r.id for r in s.query(store.Record)} == ids_before
        assert s.query(store.Report).count() == sum(len(r.reports) for r in corpus)
    database.dispose()


def test_failed_rebuild_leaves_previous_index_usable(tmp_path, corpus, queries):
    settings = load_settings(tmp_path)
    first = rebuild(settings, corpus[:60], data_source="a", progress=False)

    def boom() -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        rebuild(settings, corpus, data_source="b", progress=False, fail_before_commit=boom)
    builds = sorted(p.name for p in settings.index_dir.iterdir())
    assert builds == [Path(first.path).name]          # the failed build's files are gone
    assert _count(tmp_path, store.Record) == 60       # and its rows were never committed
    with Regen.open(tmp_path) as rg:
        assert rg.index.ntotal == 60
        assert len(rg.retrieve(queries[0].path, k=3)) == 3


def test_bad_record_fails_the_build_cleanly_or_is_skipped(tmp_path, corpus):
    root = tmp_path / "ptbxl"
    shutil.copytree(SAMPLE, root)
    victim = load_ptbxl(root, folds="1-8")[3]
    dat = Path(victim.path + ".dat")
    dat.write_bytes(dat.read_bytes()[:1000])
    records = load_ptbxl(root, folds="1-8")
    settings = load_settings(tmp_path / "home")
    with pytest.raises(ECGReadError, match=str(dat.name)):
        rebuild(settings, records, data_source="bad", progress=False)
    assert not settings.index_dir.exists() or not any(settings.index_dir.iterdir())
    assert _count(tmp_path / "home", store.Record) == 0
    res = rebuild(settings, records, data_source="bad", progress=False, skip_bad=True)
    assert res.count == len(records) - 1 and len(res.skipped) == 1


def test_index_from_another_encoder_is_refused(tmp_path, home):
    torch.manual_seed(123)
    other = Encoder(ECGEncoderModel(EncoderConfig()), "other")
    other.save(tmp_path / "enc")
    with pytest.raises(IndexMismatchError, match="rebuild"):
        Regen.open(home, encoder=str(tmp_path / "enc"))


def test_open_without_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexMismatchError, match="regen index rebuild"):
        Regen.open(tmp_path)


def test_encoder_round_trip_and_fingerprint(tmp_path, home):
    with Regen.open(home) as rg:
        enc = rg.encoder
    enc.save(tmp_path / "copy")
    again = Encoder.load(tmp_path / "copy")
    assert again.fingerprint == enc.fingerprint
    x = np.random.default_rng(1).normal(size=(2, 12, enc.cfg.window)).astype(np.float32)
    m = np.ones((2, 12), dtype=bool)
    z = again.embed_windows(x, m)
    np.testing.assert_allclose(z, enc.embed_windows(x, m), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        next(again.model.parameters()).add_(0.01)
    assert Encoder(again.model).fingerprint != enc.fingerprint


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"regen_e2e_{uuid.uuid4().hex[:10]}"
    for user in ("postgres", "root"):
        admin = create_engine(f"postgresql+psycopg://{user}@127.0.0.1:5432/test",
                              isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        try:
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            break
        except Exception:
            admin.dispose()
    else:
        pytest.skip("no PostgreSQL server accepting trust logins on 127.0.0.1:5432")
    yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_end_to_end_on_postgresql(tmp_path, corpus, queries, postgres_url):
    settings = load_settings(tmp_path, database_url=postgres_url)
    res = rebuild(settings, corpus[:80], data_source="sample", progress=False)
    assert res.count == 80
    again = rebuild(settings, corpus[:80], data_source="sample", progress=False)
    assert again.up_to_date
    with Regen.open(tmp_path, database_url=postgres_url) as rg:
        r = rg.report(queries[0].path, k=5)
    assert len(r.neighbours) == 5 and r.text
    database = store.Database(postgres_url)
    with database.session() as s:
        assert s.query(store.GenerationLog).count() == 1
        assert s.query(store.Record).count() == 80
    database.dispose()
