"""`regen eval` on the bundled sample: structure, known-answer pieces, outputs on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from regen import ConfigError, load_ptbxl, load_settings, read_ecg
from regen.evalout import write
from regen.evaluate import (
    degrade,
    eval_classify,
    eval_retrieval,
    label_oracle,
    parse_leads,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return load_settings(tmp_path_factory.mktemp("evalhome"))


def test_degrade_adds_noise_at_the_requested_snr():
    ecg = read_ecg(next((SAMPLE / "records100").rglob("*.hea")))
    noisy = degrade(ecg, None, 10.0, np.random.default_rng(0))
    noise = noisy.signal.astype(np.float64) - ecg.signal
    snr = 10 * np.log10((ecg.signal.astype(np.float64) ** 2).mean(1) / (noise ** 2).mean(1))
    np.testing.assert_allclose(snr, 10.0, atol=0.5)
    only = degrade(ecg, ("II", "V2"), None, np.random.default_rng(0))
    assert only.leads == ("II", "V2")


def test_parse_leads():
    assert parse_leads("ii, v2") == ("II", "V2")
    assert parse_leads("all") is None
    with pytest.raises(ConfigError, match="V7"):
        parse_leads("II,V7")


def test_label_oracle_uses_a_record_with_the_same_codes():
    corpus = load_ptbxl(SAMPLE, folds="1-8")
    query = next(q for q in load_ptbxl(SAMPLE, folds="9")
                 if any(set(r.scp) == set(q.scp) for r in corpus))
    text = label_oracle(query, corpus, "en")
    same = [r for r in corpus if set(r.scp) == set(query.scp)]
    assert " ".join(text.split()) in {" ".join(r.report("en").lower().split()) for r in same}


def test_classify_beats_raw_signal_on_one_noisy_lead(settings):
    res = eval_classify(settings, SAMPLE, leads="II", snr_db=10.0, k=10)
    assert res["n"] == 60 and res["leads"] == ["II"]
    assert 0.0 <= res["macro_auc"] <= 1.0 and set(res["per_class"]) == {
        "NORM", "MI", "STTC", "CD", "HYP"}
    assert res["macro_auc"] > res["baselines"]["raw_signal_knn"]["macro_auc"]


def test_retrieval_flat_recall_is_exact_and_precision_bounded(settings):
    res = eval_retrieval(settings, SAMPLE, k=5, factory="Flat")
    assert res["recall_at_k_vs_exact"] == pytest.approx(1.0)
    assert 0 < res["precision_at_k_same_superclasses"] <= res[
        "precision_at_k_any_superclass"] <= 1


def test_outputs_written(settings, tmp_path):
    res = eval_classify(settings, SAMPLE, k=5)
    paths = write(res, tmp_path)
    assert {p.suffix for p in paths} == {".json", ".md", ".png"}
    assert json.loads((tmp_path / "classify.json").read_text())["macro_auc"] == pytest.approx(
        res["macro_auc"])
    assert "| regen kNN |" in (tmp_path / "classify.md").read_text()


def test_an_eval_never_writes_the_users_database_and_keeps_their_settings(tmp_path):
    """Issue 15 item 1: a config.toml with database_url, encoder and llm_* settings. The eval
    used to rebuild with the user's database (240 records and an activated build written
    there), then reopen its home with other settings and fail."""
    import sqlite3

    from regen.evaluate import eval_settings
    from regen.settings import DEFAULT_ENCODER

    home = tmp_path / "home"
    home.mkdir()
    user_db = tmp_path / "users.db"
    sqlite3.connect(user_db).close()                    # the user's (empty) database file
    before = user_db.read_bytes()
    (home / "config.toml").write_text(
        f'database_url = "sqlite:///{user_db}"\nencoder = "{DEFAULT_ENCODER}"\n'
        'llm_base_url = "http://127.0.0.1:9/v1"\nllm_model = "someones-model"\n')
    settings = load_settings(home)
    own = eval_settings(settings, SAMPLE, "1-8")
    assert own.database_url == "" and own.home != settings.home
    assert (own.encoder, own.llm_base_url, own.llm_model) == (
        settings.encoder, settings.llm_base_url, settings.llm_model)
    res = eval_retrieval(settings, SAMPLE, k=5, factory="Flat")
    assert res["n_corpus"] == 240
    assert user_db.read_bytes() == before               # untouched: no table, no row, no build
