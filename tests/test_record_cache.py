"""The corpus-record cache a report reads its neighbours through (regen.record_cache), on a
real SQLite database: records are read once, a rewritten report is seen after ttl_s, ids and
paths not stored stay absent, and the least recently used entries go first."""

from __future__ import annotations

import pytest

import db as store
from db import Database
from regen.record_cache import RecordCache


def row(n: int, text: str) -> store.RecordRow:
    return store.RecordRow(key=f"t:{n}", source="test", path=f"/corpus/{n}", fs=100.0,
                           n_leads=12, lead_names=["I"] * 12, n_samples=1000,
                           patient_id=f"p{n}", reports={"en": text},
                           labels=[("scp", "NORM", 100.0)])


@pytest.fixture()
def database(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'regen.db'}")
    yield d
    d.dispose()


def test_records_are_read_once_and_refreshed_after_ttl(database):
    with database.session() as s:
        ids = store.upsert_records(s, [row(1, "sinus rhythm"), row(2, "atrial fibrillation")])
    now = [0.0]
    cache = RecordCache(database, ttl_s=60, clock=lambda: now[0])
    got = cache.records([ids["t:1"], ids["t:2"], 999_999])
    assert sorted(got) == sorted(ids.values())             # the unknown id is absent
    assert got[ids["t:1"]].reports["en"] == "sinus rhythm"
    with database.session() as s:
        store.upsert_records(s, [row(1, "sinus bradycardia")])
    now[0] = 59.0
    assert cache.records([ids["t:1"]])[ids["t:1"]].reports["en"] == "sinus rhythm"
    now[0] = 61.0
    assert cache.records([ids["t:1"]])[ids["t:1"]].reports["en"] == "sinus bradycardia"


def test_identities_of_corpus_paths_and_of_others(database):
    with database.session() as s:
        ids = store.upsert_records(s, [row(1, "sinus rhythm")])
    cache = RecordCache(database, ttl_s=0)                 # 0: every call reads
    assert cache.identities(["/corpus/1", "/elsewhere/x", "/corpus/1"]) == [
        (ids["t:1"], "p1"), (None, None), (ids["t:1"], "p1")]
    assert cache.identities([]) == []


def test_the_least_recently_used_record_is_dropped_first(database):
    with database.session() as s:
        ids = store.upsert_records(s, [row(n, f"report {n}") for n in range(3)])
    cache = RecordCache(database, max_items=2)
    a, b, c = (ids[f"t:{n}"] for n in range(3))
    cache.records([a, b])
    cache.records([a])                                      # a used again: b is the oldest
    cache.records([c])
    assert list(cache._records) == [a, c]
