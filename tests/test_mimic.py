"""The MIMIC-IV-ECG loader on a folder laid out as PhysioNet ships it (record_list.csv,
machine_measurements.csv, files/pNNNN/pNNNNNNNN/sNNNNNNNN/), its WFDB records written by wfdb
from real bundled 500 Hz PTB-XL signals; then a rebuild and a report from it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from typer.testing import CliRunner

from regen import DataError, Regen, load_mimic_ecg, load_ptbxl, load_settings, read_ecg
from regen.cli import app
from regen.corpus import subject_fold
from regen.rebuild import rebuild

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
STATEMENTS = [["Sinus rhythm", "Normal ECG"], ["Sinus rhythm", "Left axis deviation", ""],
              ["Atrial fibrillation", "Abnormal ECG"], ["Sinus bradycardia"],
              ["Sinus rhythm", "Borderline ECG"], []]


@pytest.fixture(scope="module")
def mimic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mimic-iv-ecg")
    sources = [r for r in load_ptbxl(SAMPLE, rate=500)][:6]
    assert len(sources) == 6
    record_rows, mm_rows = [], []
    for i, (src, said) in enumerate(zip(sources, STATEMENTS)):
        subject, study = 10000032 + i // 2, 40689238 + i       # two studies per patient
        rel = Path("files") / f"p{str(subject)[:4]}" / f"p{subject}" / f"s{study}"
        (root / rel).mkdir(parents=True)
        ecg = read_ecg(src.path)
        wfdb.wrsamp(str(study), fs=ecg.fs, units=["mV"] * len(ecg.leads),
                    sig_name=list(ecg.leads), p_signal=ecg.signal.T.astype(np.float64),
                    fmt=["16"] * len(ecg.leads), write_dir=str(root / rel))
        record_rows.append({"subject_id": subject, "study_id": study, "file_name": study,
                            "ecg_time": "2180-07-23 08:44:00", "path": f"{rel}/{study}"})
        row = {"subject_id": subject, "study_id": study, "cart_id": 6848296}
        row.update({f"report_{j}": (said[j] if j < len(said) else "") for j in range(18)})
        mm_rows.append(row)
    for name, rows in (("record_list.csv", record_rows), ("machine_measurements.csv", mm_rows)):
        with (root / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return root


def test_loader_reads_reports_patients_and_paths(mimic):
    recs = load_mimic_ecg(mimic)
    assert [r.key for r in recs] == [f"mimic:{40689238 + i}" for i in range(5)]  # 6th: no report
    assert recs[0].report() == "Sinus rhythm. Normal ECG."
    assert recs[1].report() == "Sinus rhythm. Left axis deviation."
    assert [r.patient_id for r in recs[:2]] == ["10000032"] * 2
    assert all(r.split == str(subject_fold(r.patient_id)) for r in recs)
    assert read_ecg(recs[0].path).fs == 500 and len(read_ecg(recs[0].path).leads) == 12
    one = subject_fold("10000032")
    assert {r.key for r in load_mimic_ecg(mimic, folds=str(one))} >= {"mimic:40689238",
                                                                      "mimic:40689239"}


def test_patients_stay_in_one_fold():
    folds = {subject_fold(str(s)) for s in range(10000000, 10002000)}
    assert folds == set(range(1, 11))
    assert subject_fold("10000032") == subject_fold("10000032")


def test_missing_files_are_clear_errors(tmp_path, mimic):
    with pytest.raises(DataError, match="record_list.csv: no such file; expected the MIMIC-IV"):
        load_mimic_ecg(tmp_path)
    (tmp_path / "record_list.csv").write_text((mimic / "record_list.csv").read_text())
    with pytest.raises(DataError, match="machine_measurements.csv: no such file"):
        load_mimic_ecg(tmp_path)


def test_rebuild_and_report_from_a_mimic_corpus(mimic, tmp_path):
    out = CliRunner().invoke(app, ["index", "rebuild", "--data", str(mimic), "--source",
                                   "mimic", "--folds", "1-10", "--home", str(tmp_path),
                                   "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout.strip().splitlines()[-1])["count"] == 5
    query = load_ptbxl(SAMPLE, folds="9")[0].path          # a 100 Hz PTB-XL query
    with Regen.open(tmp_path) as rg:
        r = rg.report(query, k=3)
    assert len(r.neighbours) == 3 and all(n.key.startswith("mimic:") for n in r.neighbours)
    again = rebuild(load_settings(tmp_path), load_mimic_ecg(mimic, folds="1-10"),
                    data_source="again", progress=False)
    assert again.up_to_date
    kept = load_mimic_ecg(mimic, folds="1-8")               # the CLI's default folds
    assert all(subject_fold(r.patient_id) <= 8 for r in kept)
