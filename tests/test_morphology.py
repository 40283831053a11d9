"""Findings from the median beat's shape (regen.measured.morphology_findings, MEASURED_MIX in
regen.diagnose): bundle-branch blocks and the rest, on real bundled PTB-XL ECGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regen import Regen, measure, read_ecg
from regen.diagnose import MEASURED_MIX
from regen.errors import ConfigError
from regen.measure import QRS_SHAPE, QRS_SHAPE_LEADS
from regen.measured import (
    MORPHOLOGY_WEIGHTS,
    all_findings,
    morphology_features,
    morphology_findings,
    morphology_model,
)

R100 = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample" / "records100"
LBBB_ECG = R100 / "01000" / "01367_lr"     # fold 9: "left bundle branch block"
RBBB_ECG = R100 / "00000" / "00635_lr"     # fold 1: "right bundle branch block"
# fold 9: "sinus rhythm ... st segments are depressed in i, v5,6. t waves are inverted in i, ii,
# avl, v4,5,6": a narrow QRS, ST and T changes
SINUS_ECG = R100 / "01000" / "01469_lr"


def _by_label(ecg: Path) -> dict:
    return {f.label: f for f in morphology_findings(measure(read_ecg(ecg)))}


def test_the_qrs_shape_is_measured_per_lead():
    m = measure(read_ecg(LBBB_ECG))
    assert set(m.qrs_shape) == set(QRS_SHAPE_LEADS)
    assert all(len(v) == len(QRS_SHAPE) for v in m.qrs_shape.values())
    assert m.qrs_ms is not None and m.qrs_ms >= 120
    # LBBB: the QRS points left and back, so its net area is negative in V1, positive in V6
    assert m.qrs_shape["V1"][4] < 0 < m.qrs_shape["V6"][4]
    # RBBB: its last part points right and forward: up in V1, down in I
    r = measure(read_ecg(RBBB_ECG))
    assert r.qrs_shape["V1"][0] > 0 > r.qrs_shape["I"][0]
    normal = measure(read_ecg(SINUS_ECG))
    assert normal.qrs_ms is not None and normal.qrs_ms < 110


def test_bundle_branch_blocks_are_told_apart():
    lbbb, rbbb, sinus = _by_label(LBBB_ECG), _by_label(RBBB_ECG), _by_label(SINUS_ECG)
    assert lbbb["CLBBB"].present and not lbbb["CRBBB"].present
    assert rbbb["CRBBB"].present and not rbbb["CLBBB"].present
    assert not any(sinus[c].present for c in ("CRBBB", "CLBBB", "LAFB", "IRBBB"))
    assert sinus["STD_"].present and sinus["INVT"].present
    ev = lbbb["CLBBB"].evidence
    assert ev.startswith("QRS 1") and "left bundle branch block" in ev
    assert lbbb["CLBBB"].cut == morphology_model()["CLBBB"]["cut"]
    assert lbbb["CLBBB"] in all_findings(measure(read_ecg(LBBB_ECG)))


def test_without_every_shape_lead_nothing_is_measured():
    ecg = read_ecg(LBBB_ECG)
    limb = ecg.select(["I", "II", "III", "aVR", "aVL", "aVF"])
    feats = morphology_model()["CLBBB"]["features"]
    assert morphology_features(measure(limb), feats) is None
    assert morphology_features(measure(ecg), feats) is not None
    assert morphology_findings(measure(limb)) == []
    assert morphology_findings(measure(ecg.select(["II"]))) == []


def test_a_broken_model_file_names_itself(tmp_path):
    bad = tmp_path / "morphology.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="morphology.json"):
        morphology_model(str(bad))
    shipped = json.loads(MORPHOLOGY_WEIGHTS.read_text())
    assert {"CRBBB", "CLBBB", "LAFB"} <= set(shipped["labels"])
    for spec in shipped["labels"].values():
        assert len(spec["weights"]) == len(spec["features"]) + 1
        assert all(f == "qrs_ms" or (f.split(":")[0] in QRS_SHAPE_LEADS
                                     and f.split(":")[1] in QRS_SHAPE) for f in spec["features"])


def test_reports_state_the_measured_block(sample_home):
    """The measured QRS decides (MEASURED_MIX weight 1): the report of the LBBB ECG states it
    with the measurement as evidence, the sinus ECG's states no bundle-branch block."""
    assert MEASURED_MIX["CLBBB"] == 1.0
    with Regen.open(sample_home) as rg:
        rep = rg.report(LBBB_ECG, log=False)
        normal = rg.report(SINUS_ECG, log=False)
    lb = next(f for f in rep.findings if f.label == "CLBBB")
    assert lb.present and any("QRS" in e for e in lb.evidence)
    assert "left bundle branch block" in rep.text.lower()
    assert not any(f.present for f in normal.findings if f.label in ("CLBBB", "CRBBB"))
