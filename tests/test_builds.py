"""Versioned builds on the bundled sample: list, activate, gc, incremental add, resumable
rebuild (killed for real with SIGKILL), and readers that keep working through all of it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import db as store
from index import VectorIndex
from regen import IndexMismatchError, Regen, RegenError, load_ptbxl, load_settings
from regen.builds import activate, gc, home_lock, list_builds
from regen.cli import app
from regen.encoder import ECGEncoderModel, Encoder, EncoderConfig
from regen.rebuild import add, embed_records, rebuild

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
QUERY = SAMPLE / "records100" / "01000" / "01469_lr"   # fold 9, not in the corpus


@pytest.fixture(scope="module")
def corpus():
    return load_ptbxl(SAMPLE, folds="1-8")


@pytest.fixture(scope="module")
def encoder():
    return Encoder.load(load_settings().encoder)


def _vectors(home: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the active build of `home`."""
    builds = list_builds(load_settings(home))
    return VectorIndex.load(next(b for b in builds if b.active).path).vectors()


def _build(home: Path, records, encoder, **kw):
    return rebuild(load_settings(home), records, data_source="sample", encoder=encoder,
                   progress=False, **kw)


def test_list_activate_and_gc(make_home, corpus, encoder):
    home = make_home("home")
    settings = load_settings(home)
    b1, b2, b3 = (_build(home, corpus[:n], encoder).build_id for n in (20, 30, 40))
    builds = list_builds(settings)
    assert [b.id for b in builds] == [b3, b2, b1]               # newest first
    assert [b.active for b in builds] == [True, False, False]
    assert [b.count for b in builds] == [40, 30, 20] and all(b.exists for b in builds)
    assert builds[0].timings["total_s"] > 0 and builds[0].encoder == encoder.fingerprint

    assert activate(settings, b1[:8], encoder.fingerprint).active   # a unique prefix works
    with Regen.open(home) as rg:
        assert rg.build_id == b1 and rg.index.ntotal == 20
    with pytest.raises(IndexMismatchError, match="configured encoder is 'other'"):
        activate(settings, b2, "other")
    with pytest.raises(RegenError, match="matches no build"):
        activate(settings, "nosuchbuild", encoder.fingerprint)

    orphan = settings.index_dir / "build-20000101-000000-deadbeef-000000"
    orphan.mkdir()
    dry = gc(settings, keep=1, dry_run=True)
    assert [b.id for b in dry.deleted] == [b2] and dry.orphans == (str(orphan),)
    assert len(list_builds(settings)) == 3 and orphan.exists()  # a dry run deletes nothing
    res = gc(settings, keep=1)
    assert [b.id for b in res.deleted] == [b2] and not orphan.exists()
    assert not Path(dry.deleted[0].path).exists()
    assert {b.id for b in list_builds(settings)} == {b1, b3}
    gc(settings, keep=0)
    assert [b.id for b in list_builds(settings)] == [b1]          # the active one stays

    b4 = _build(home, corpus[:25], encoder).build_id
    shutil.rmtree(next(b.path for b in list_builds(settings) if b.id == b1))
    assert not next(b for b in list_builds(settings) if b.id == b1).exists
    with pytest.raises(IndexMismatchError, match="missing"):
        activate(settings, b1, encoder.fingerprint)
    assert next(b for b in list_builds(settings) if b.active).id == b4


def test_cli_list_activate_gc(make_home, corpus, encoder):
    home = make_home("home")
    first = _build(home, corpus[:20], encoder).build_id
    second = _build(home, corpus[:30], encoder).build_id
    runner = CliRunner()
    out = runner.invoke(app, ["index", "list", "--json", "--home", str(home)])
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == [second, first] and rows[0]["active"]
    assert {"id", "active", "status", "count", "factory", "encoder", "created", "timings",
            "path"} <= set(rows[0])
    human = runner.invoke(app, ["index", "list", "--home", str(home)]).stdout
    assert f"* {second[:12]}" in human
    out = runner.invoke(app, ["index", "activate", first, "--home", str(home)])
    assert out.exit_code == 0 and f"active: {first}" in out.stdout
    out = runner.invoke(app, ["index", "gc", "--keep", "0", "--dry-run", "--json",
                              "--home", str(home)])
    assert [b["id"] for b in json.loads(out.stdout)["deleted"]] == [second]
    out = runner.invoke(app, ["index", "gc", "--keep", "0", "--home", str(home)])
    assert "deleted 1 build(s)" in out.stdout


def test_cli_gc_warns_that_a_deleted_build_may_still_be_served(make_home, corpus, encoder):
    # `gc --keep 1` deleted a build a running server still used, without a word
    home = make_home("home")
    served = _build(home, corpus[:20], encoder).build_id          # a server opened this one
    _build(home, corpus[:25], encoder)
    _build(home, corpus[:30], encoder)
    out = CliRunner().invoke(app, ["index", "gc", "--keep", "1", "--home", str(home)])
    assert out.exit_code == 0 and f"deleted build {served}" in out.stdout
    assert "warning:" in out.stderr and served in out.stderr and "restart" in out.stderr


def test_reader_keeps_working_through_rebuild_and_gc(make_home, corpus, encoder):
    home = make_home("home")
    old = _build(home, corpus[:60], encoder)
    old_keys = {r.key for r in corpus[:60]}
    with Regen.open(home) as rg:
        before = rg.retrieve(QUERY, k=5)
        new = _build(home, corpus[:100], encoder)
        gc(load_settings(home), keep=0)                  # even the old files are gone now
        assert not Path(old.path).exists()
        after = rg.retrieve(QUERY, k=5)
        assert rg.build_id == old.build_id and rg.index.ntotal == 60
        assert [n.key for n in after] == [n.key for n in before]
        assert {n.key for n in after} <= old_keys
    with Regen.open(home) as fresh:
        assert fresh.build_id == new.build_id and fresh.index.ntotal == 100


def test_add_embeds_only_new_records_and_is_idempotent(make_home, encoder):
    home = make_home("home")
    settings = load_settings(home)
    first, more = load_ptbxl(SAMPLE, folds="1-2"), load_ptbxl(SAMPLE, folds="2-3")
    union = {r.key for r in first + more}
    base = _build(home, first, encoder)
    base_ids, base_vecs = _vectors(home)
    res = add(settings, more, data_source="more", encoder=encoder, chunk=16, progress=False)
    assert res.added == len(union) - len(first) and res.count == len(union)
    ids, vecs = _vectors(home)
    assert len(np.unique(ids)) == len(ids) == len(union)            # no duplicates
    np.testing.assert_array_equal(ids[:len(first)], base_ids)       # copied, not re-embedded
    np.testing.assert_array_equal(vecs[:len(first)], base_vecs)
    database = settings.open_database()
    with database.session() as s:
        assert store.build_keys(s, res.build_id) == union
        assert sorted(store.build_record_ids(s, res.build_id)) == sorted(ids.tolist())
        assert s.query(store.Record).count() == len(union)
    database.dispose()
    with Regen.open(home) as rg:
        assert rg.build_id == res.build_id
        assert len(rg.retrieve(QUERY, k=5)) == 5

    again = add(settings, more, data_source="again", encoder=encoder, progress=False)
    assert again.up_to_date and again.build_id is None and again.count == len(union)
    assert [b.id for b in list_builds(settings)] == [res.build_id, base.build_id]
    out = CliRunner().invoke(app, ["index", "add", "--data", str(SAMPLE), "--folds", "1-3",
                                   "--home", str(home)])
    assert out.exit_code == 0 and "nothing to add" in out.stdout

    torch.manual_seed(1)
    other = Encoder(ECGEncoderModel(EncoderConfig()), "other")
    with pytest.raises(IndexMismatchError, match="mix two encoders"):
        add(settings, load_ptbxl(SAMPLE, folds="9"), data_source="x", encoder=other,
            progress=False)


def test_two_workers_give_identical_vectors(tmp_path, corpus, encoder):
    runs = [embed_records(corpus[:36], encoder, tmp_path / f"w{w}", chunk=12, workers=w,
                          progress=False) for w in (1, 2)]
    for path in (tmp_path / "w1", tmp_path / "w2"):
        assert len(list(path.glob("chunk-*.npz"))) == 3
    assert [r.key for r in runs[0].records] == [r.key for r in runs[1].records]
    np.testing.assert_array_equal(runs[0].vectors, runs[1].vectors)
    assert runs[0].infos == runs[1].infos


def test_failed_commit_keeps_staged_chunks_for_resume(make_home, corpus, encoder):
    home = make_home("home")

    def boom() -> None:
        raise RuntimeError("database went away")

    for resume, reused in ((True, 3), (False, 0)):
        with pytest.raises(RuntimeError):
            _build(home, corpus[:36], encoder, chunk=12, force=True, fail_before_commit=boom)
        (staged,) = (home / "staging").iterdir()
        assert len(list(staged.glob("chunk-*.npz"))) == 3
        res = _build(home, corpus[:36], encoder, chunk=12, resume=resume, force=True)
        assert res.resumed == reused and res.count == 36
        assert not staged.exists()                    # cleaned up once the build is active


def test_one_index_job_per_home(tmp_path):
    with home_lock(tmp_path, "rebuild"):
        with pytest.raises(RegenError, match=r"another index job is running \(rebuild, pid"):
            with home_lock(tmp_path, "add"):
                pass
    with home_lock(tmp_path, "add"):                  # released on exit
        pass


def test_kill_9_then_resume_equals_an_uninterrupted_build(make_home, encoder):
    """A rebuild killed with SIGKILL mid-embedding, rerun with --resume, ends with the same ids
    and bit-identical vectors as a build that was never interrupted; readers of the previous
    build answer throughout."""
    chunk, folds = 8, "1-4"
    corpus = load_ptbxl(SAMPLE, folds=folds)
    n_chunks = -(-len(corpus) // chunk)
    clean, killed = make_home("clean"), make_home("killed")
    for home in (clean, killed):                     # the same history, so the same record ids
        _build(home, corpus[:30], encoder)
    _build(clean, corpus, encoder, chunk=chunk)
    cli = ["index", "rebuild", "--data", str(SAMPLE), "--folds", folds, "--home", str(killed),
           "--chunk", str(chunk)]

    with Regen.open(killed) as reader:
        proc = subprocess.Popen([sys.executable, "-m", "regen", *cli],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        staged: list[Path] = []
        while not staged and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
            staged = list((killed / "staging").glob("*/chunk-*.npz"))
        assert staged and proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        # While the job runs: the open reader answers, and a new one still gets the old build.
        assert len(reader.retrieve(QUERY, k=3)) == 3
        with Regen.open(killed) as during:
            assert during.build_id == reader.build_id and during.index.ntotal == 30
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        done = len(list((killed / "staging").glob("*/chunk-*.npz")))
        assert 1 <= done < n_chunks
        assert len(reader.retrieve(QUERY, k=3)) == 3
    assert [b.count for b in list_builds(load_settings(killed)) if b.active] == [30]

    out = CliRunner().invoke(app, [*cli, "--resume", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["resumed"] == done and res["count"] == len(corpus)
    want_ids, want = _vectors(clean)
    got_ids, got = _vectors(killed)
    np.testing.assert_array_equal(got_ids, want_ids)
    assert got.tobytes() == want.tobytes()


def test_search_params_are_saved_with_the_build(make_home, corpus, encoder):
    home = make_home("home")
    import faiss

    settings = load_settings(home, factory="HNSW16")
    kw = dict(data_source="s", encoder=encoder, progress=False)
    res = rebuild(settings, corpus[:20], search_params={"efSearch": 48}, **kw)
    saved = faiss.read_index(f"{res.path}/index.faiss")   # keep it: .index is borrowed
    assert faiss.downcast_index(saved.index).hnsw.efSearch == 48
    assert list_builds(settings)[0].params["search"] == {"efSearch": 48}
    assert rebuild(settings, corpus[:20], search_params={"efSearch": 48}, **kw).up_to_date
    assert not rebuild(settings, corpus[:20], search_params={"efSearch": 96}, **kw).up_to_date
    out = CliRunner().invoke(app, ["index", "rebuild", "--data", str(SAMPLE), "--home",
                                   str(home), "--search-param", "efSearch"])
    assert isinstance(out.exception, RegenError) and "NAME=NUMBER" in str(out.exception)


def test_build_and_query_time_index_parameters(make_home, corpus, encoder):
    """efConstruction applies while building; the search_params setting overrides the saved
    efSearch when an index is opened, without a rebuild; malformed or inapplicable values are
    clear errors."""
    import faiss

    from regen import ConfigError

    home = make_home("home")
    out = CliRunner().invoke(app, ["index", "rebuild", "--data", str(SAMPLE), "--folds", "1-2",
                                   "--home", str(home), "--factory", "HNSW16", "--search-param",
                                   "efConstruction=80", "--search-param", "efSearch=48"])
    assert out.exit_code == 0, out.output
    (build,) = list_builds(load_settings(home))
    saved = faiss.read_index(f"{build.path}/index.faiss")
    hnsw = faiss.downcast_index(saved.index).hnsw
    assert (hnsw.efConstruction, hnsw.efSearch) == (80, 48)
    with Regen.open(home) as rg:
        assert faiss.downcast_index(rg.index._index.index).hnsw.efSearch == 48
    with Regen.open(home, search_params="efSearch=200") as rg:
        assert faiss.downcast_index(rg.index._index.index).hnsw.efSearch == 200
        assert len(rg.retrieve(QUERY, k=5)) == 5
    with pytest.raises(ConfigError, match="'efSearch' is not NAME=NUMBER"):
        load_settings(home, search_params="efSearch")
    with pytest.raises(ConfigError, match="search_params='nprobe=4'.*does not apply"):
        Regen.open(home, search_params="nprobe=4")


def test_full_disk_while_staging_is_one_error_and_leaves_no_partial_chunk(make_home, corpus,
                                                                         encoder, monkeypatch):
    # a full disk once gave an OSError traceback and left .tmp-chunk-*.npz filling the disk
    import errno

    import regen.rebuild as rb

    home = make_home("home")
    real_savez = np.savez
    calls = []

    def savez_until_full(fh, **arrays):
        calls.append(1)
        if len(calls) == 2:                        # the second chunk meets a full disk midway
            fh.write(b"\0" * 1024)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(fh, **arrays)

    monkeypatch.setattr(rb.np, "savez", savez_until_full)
    with pytest.raises(RegenError, match="No space left on device.*--resume"):
        _build(home, corpus[:36], encoder, chunk=12)
    assert not list(home.rglob(".tmp-chunk-*"))
    assert len(list(home.rglob("chunk-*.npz"))) == 1   # the first chunk is kept for --resume
    monkeypatch.setattr(rb.np, "savez", real_savez)
    assert _build(home, corpus[:36], encoder, chunk=12, resume=True).resumed == 1
