"""Bundle-branch and fascicular blocks from the measured QRS (regen.measured.conduction_findings,
MEASURED_MIX in regen.diagnose), on real bundled PTB-XL ECGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regen import Regen, measure, read_ecg
from regen.diagnose import MEASURED_MIX
from regen.errors import ConfigError
from regen.measure import QRS_SHAPE, QRS_SHAPE_LEADS
from regen.measured import (
    CONDUCTION_WEIGHTS,
    all_findings,
    conduction_features,
    conduction_findings,
    conduction_model,
)

R100 = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample" / "records100"
LBBB_ECG = R100 / "01000" / "01367_lr"     # fold 9: "left bundle branch block"
RBBB_ECG = R100 / "00000" / "00635_lr"     # fold 1: "right bundle branch block"
SINUS_ECG = R100 / "01000" / "01469_lr"    # fold 9, sinus rhythm, normal QRS


def _by_label(ecg: Path) -> dict:
    return {f.label: f for f in conduction_findings(measure(read_ecg(ecg)))}


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
    assert not any(f.present for f in sinus.values())
    assert "QRS" in lbbb["CLBBB"].evidence and "V1" in lbbb["CLBBB"].evidence
    assert lbbb["CLBBB"].cut == conduction_model()["CLBBB"]["cut"]
    assert lbbb["CLBBB"] in all_findings(measure(read_ecg(LBBB_ECG)))


def test_without_every_shape_lead_nothing_is_measured():
    ecg = read_ecg(LBBB_ECG)
    limb = ecg.select(["I", "II", "III", "aVR", "aVL", "aVF"])
    assert conduction_features(measure(limb)) is None
    assert conduction_findings(measure(limb)) == []
    assert conduction_findings(measure(ecg.select(["II"]))) == []


def test_a_broken_model_file_names_itself(tmp_path):
    bad = tmp_path / "conduction.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="conduction.json"):
        conduction_model(str(bad))
    shipped = json.loads(CONDUCTION_WEIGHTS.read_text())
    assert set(shipped["labels"]) == {"CRBBB", "CLBBB", "LAFB"}
    assert len(shipped["features"]) == 1 + len(QRS_SHAPE_LEADS) * len(QRS_SHAPE)


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
