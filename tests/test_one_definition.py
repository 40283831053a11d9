"""Concepts written once (issue 15, item 7): a second copy drifts from the first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import regen
from regen.ecg import LEAD_PHRASE, lead_in
from regen.quality import question_lead

REGEN = Path(regen.__file__).resolve().parent


def _sources() -> dict[str, str]:
    return {str(f.relative_to(REGEN)): f.read_text() for f in sorted(REGEN.rglob("*.py"))}


def test_the_lead_phrase_is_defined_once() -> None:
    # qa.py still holds its own copy (being changed elsewhere): it should import LEAD_PHRASE
    holders = {name for name, text in _sources().items() if "avr|avl|avf|v[1-6]" in text}
    assert holders <= {"ecg.py", "qa.py"} and "quality.py" not in holders


@pytest.mark.parametrize("question, lead", [
    ("Does this ECG show static noise in lead V1?", "V1"),
    ("does this ecg show baseline drift in lead avl?", "aVL"),
    ("Does this ECG show baseline drift in lead III?", "III"),
    ("Does this ECG show noise in limb leads?", None),
    ("Does this ECG show baseline drift?", None),
])
def test_noise_questions_and_qa_read_leads_alike(question: str, lead: str | None) -> None:
    assert question_lead(question) == lead_in(question) == lead
    assert bool(LEAD_PHRASE.search(question)) == ("in l" in question.lower())


def test_the_engine_names_are_listed_once() -> None:
    # settings.ENGINES / CLUSTER_ENGINES; every other module refers to them
    listed = set()
    for name, text in _sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if {"dask", "ray"} <= values:
                    listed.add(name)
    assert listed == {"settings.py"}
