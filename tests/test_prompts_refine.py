"""Prompt files and the consensus refiner on hand-made neighbours with known answers."""

from __future__ import annotations

import pytest

from regen import ConfigError, ConsensusRefiner, Neighbour
from regen.prompts import load_prompt


def nb(key: str, score: float, report: str, supers: tuple[str, ...] = ()) -> Neighbour:
    return Neighbour(id=hash(key) % 1000, key=key, score=score, report=report,
                     superclasses=supers)


def test_report_prompt_renders_neighbours_and_is_strict():
    p = load_prompt("report")
    text = p.render(reports=[{"key": "ptbxl:1", "score": "0.900",
                              "text": '"sinus rhythm normal ekg"'}],
                    decided="sinus rhythm", language="English")
    assert '<<<REPORT ptbxl:1 similarity 0.900>>>\n"sinus rhythm normal ekg"\n' \
           '<<<END REPORT>>>' in text
    assert "are: sinus rhythm." in text
    assert len(p.hash) == 12
    with pytest.raises(ConfigError, match="language"):
        p.render(reports=[], decided="")


def test_missing_prompt_lists_the_available_ones():
    with pytest.raises(ConfigError, match="report"):
        load_prompt("nope")


def test_unanimous_neighbours_give_their_report_with_full_confidence():
    d = ConsensusRefiner().refine([nb(f"k{i}", 0.9 - i / 100, "sinus rhythm. normal ecg.")
                                   for i in range(5)])
    assert d.text == "sinus rhythm. normal ecg." and d.confidence == pytest.approx(1.0)
    assert not d.abstained and len(d.cited) == 5 and d.cited[0] == "k0"


def test_majority_wins_over_the_single_closest_outlier():
    nbrs = [nb("odd", 0.95, "atrial fibrillation with rapid ventricular response")]
    nbrs += [nb(f"n{i}", 0.94, "sinus rhythm normal ekg") for i in range(4)]
    d = ConsensusRefiner().refine(nbrs)
    assert d.text == "sinus rhythm normal ekg" and d.cited[0] == "n0" and "odd" not in d.cited


def test_disagreeing_neighbours_abstain_but_keep_evidence():
    reports = ["atrial fibrillation", "left bundle branch block", "inferior infarction old",
               "left ventricular hypertrophy", "sinus bradycardia"]
    d = ConsensusRefiner(min_confidence=0.5).refine(
        [nb(f"k{i}", 0.9, r) for i, r in enumerate(reports)])
    assert d.abstained and d.confidence < 0.5 and d.cited


def test_no_usable_reports_abstains():
    d = ConsensusRefiner().refine([nb("k", 0.9, "  ")])
    assert d.abstained and d.confidence == 0.0
