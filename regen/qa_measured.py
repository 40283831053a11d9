"""Questions answered by measuring the ECG: rate, rhythm regularity, intervals and the QRS, P
and T axes ("What is the heart rate?", "Is the rhythm regular?", "How long is the PR
interval?", "What is the P-wave axis?").

The answer is the measurement itself (`regen.measure`), with the leads it came from, or "not
sure" with the reason when it cannot be measured; neighbours play no part.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from regen.ecg import ECG
from regen.qa_data import question_text
from regen.types import Answer

# (field of Measurements.to_json(), name, unit, pattern)
_NUMERIC = (
    ("qtc_bazett_ms", "QTc (Bazett)", "ms", r"\bqtc\b|corrected qt"),
    ("qt_ms", "QT interval", "ms", r"\bqt\b"),
    ("pr_ms", "PR interval", "ms", r"\bpr\b"),
    ("qrs_ms", "QRS duration", "ms", r"\bqrs (duration|width|interval)|\bqrs\b(?!.*axis)"),
    ("p_axis_deg", "P-wave axis", "°", r"\bp[- ]?(wave )?axis\b"),
    ("t_axis_deg", "T-wave axis", "°", r"\bt[- ]?(wave )?axis\b"),
    ("axis_deg", "QRS axis", "°", r"\baxis\b.*\b(degrees?|angle)\b|\b(degrees?|angle)\b.*\baxis\b"),
    ("hr_bpm", "heart rate", "bpm", r"\bheart ?rate\b|\bhow fast\b|\bpulse\b|\bhr\b|"
                                    r"\bventricular rate\b|\bthe rate\b"),
)
_REGULAR = re.compile(r"\b(is|are)\b.*\b(rhythm|heart ?beat|beats?|rr)\b.*\b(regular|irregular)\b"
                      r"|\b(regular|irregular)\b.*\b(rhythm|heart ?beat|beats?)\b")
_ASKS = re.compile(r"^(what|how|which|tell|give|measure|is|are|does)\b")


@dataclass(frozen=True)
class MeasuredQuestion:
    """field: a key of Measurements.to_json() (or "regularity")."""

    field: str
    name: str
    unit: str


def parse_measured(text: str) -> MeasuredQuestion | None:
    """The measurement a question asks for, or None (then it is not a numeric question)."""
    q = question_text(text)
    if not _ASKS.match(q):
        return None
    if _REGULAR.search(q):
        return MeasuredQuestion("regularity", "rhythm regularity", "")
    if not re.match(r"^(what|how|tell|give|measure)\b", q):
        return None
    for field, name, unit, pattern in _NUMERIC:
        if re.search(pattern, q):
            return MeasuredQuestion(field, name, unit)
    return None


def answer_measurement(q: MeasuredQuestion, question: str, ecg: ECG) -> Answer:
    """Measure `ecg` and answer; "not sure" with the reason when it cannot be measured."""
    from regen.measure import measure
    from regen.measured import REGULAR, irregularity

    m = measure(ecg)
    js = m.to_json()
    leads = ", ".join(m.leads_used) if m.leads_used else "-"
    if q.field == "regularity":
        irr = irregularity(m)
        if math.isinf(irr):
            return _unsure(question, "fewer than 3 beats were found")
        regular = irr < REGULAR
        return Answer(question, ("yes" if regular else "no",), 1.0 - min(1.0, irr), False, (),
                      {"irregularity": round(irr, 4)}, "measured", refiner="measured",
                      text=f"{'regular' if regular else 'irregular'}: median successive RR "
                           f"difference {irr:.0%} of the RR interval (regular below "
                           f"{REGULAR:.0%}); {m.n_beats} beats in {m.duration_s:.0f} s, measured "
                           f"from the signal (leads {leads})")
    value = js.get(q.field)
    if value is None:
        why = m.quality.get(q.field.removesuffix("_deg"), m.quality.get(q.field, "not measured"))
        return _unsure(question, f"the {q.name} cannot be measured: {why}")
    shown = f"{value:+.0f}{q.unit}" if q.unit == "°" else f"{value:.0f} {q.unit}"
    extra = f" ({js['axis']})" if q.field == "axis_deg" and js.get("axis") else ""
    if q.field == "p_axis_deg":
        from regen.measure import sinus_p_axis

        extra = " (a sinus P wave can have it)" if sinus_p_axis(float(value)) else \
            " (upper right quadrant: not a sinus P wave)"
    return Answer(question, (shown,), 1.0, False, (), {q.field: float(value)}, "measured",
                  refiner="measured",
                  text=f"{q.name} {shown}{extra}, measured from the signal (leads {leads})")


def _unsure(question: str, why: str) -> Answer:
    return Answer(question, ("not sure",), 0.0, True, (), {}, "measured", refiner="measured",
                  text=f"not sure: {why}")
