"""Questions in plain words that no ECG-QA template matches ("What is the rhythm?", "Is there
evidence of an old inferior infarction?"), answered from the same findings the report states.

`parse_free` reads what is asked:

* **rhythm**: "what is the rhythm?" -> the rhythm finding the report decides (one of SR, AFIB,
  STACH, SBRAD, SARRH; the rate ones decided by the measured rate), with the measured rate;
* **finding**: a yes/no question whose words the report labeller reads as findings regen states
  (IMI in "old inferior infarction"; a superclass only when no specific code is named) -> yes
  when the report decides any of them present, no when it decides them absent, "not sure" when
  the leads given cannot show them or the report abstained on implausible input. The evidence
  is the calibrated probability and the support set: the voting neighbours with known labels
  (few-shot from the corpus);
* with the LLM refiner configured, the decided answer is worded by the LLM (`explain`), whose
  reply is checked as a report's is; the decision never changes;
* **words**: anything else asked yes/no -> the zero-shot score of the words (`regen.zeroshot`,
  text + neighbours). A percentile of at least `WORDS_YES` answers yes, under `WORDS_NO` no, and
  between them "not sure"; words that no corpus report resembles (`IN_SCOPE`) get "not sure".
  These levels were set before measuring (the score is uncalibrated for a text with no labels,
  so the band is wide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regen.diagnose import CHEST, LIMB, RHYTHMS, needs
from regen.findings import FINDINGS, NAMES
from regen.labeller import label_report
from regen.qa_data import question_text
from regen.types import Answer, Classification, Finding, Report

WORDS_YES = 0.90
WORDS_NO = 0.60
# Words whose closest corpus report is further than this (MiniLM cosine) are off the corpus's
# subject ("is the patient hungry?"): "not sure", whatever the zero-shot score. Set a priori.
IN_SCOPE = 0.5
SUPERS = ("NORM", "MI", "STTC", "CD", "HYP")
_YES_NO = re.compile(r"^(?:is|are|does|do|did|has|have|can|could|would|was|were|should|any|"
                     r"might|may|shows?|evidence|signs?)\b")
_RHYTHM = re.compile(r"^(?:what|which|tell me|describe|name)\b.*\brhythm\b|^rhythm\??$")
# Words clinicians use that the report labeller (written for report text) does not read.
_ALIASES = ((r"\baf\b|\ba-?fib\b", "atrial fibrillation"),
            (r"\bhemiblock\b", "fascicular block"),
            (r"\bfirst[- ]degree (?:heart|av) block\b", "first degree av block"),
            (r"\blv\b", "left ventricular"), (r"\brv\b", "right ventricular"))
# Question words for findings that reports name in other words (a superclass, a rate).
_CODE_WORDS = ((r"\bst[- ]?t\b|\bst segments?\b.*\bt waves?\b|\brepolari[sz]ation\b", "STTC"),
               (r"\bconduction (?:problem|disturbance|abnormalit\w*|defect|delay)s?\b", "CD"),
               (r"^(?:is|was) (?:this|it|the)(?: ecg| ekg| tracing)?(?: an?)? normal\b|"
                r"\bnormal (?:tracing|ecg|ekg|electrocardiogram|study)\b", "NORM"),
               (r"\b(?:too fast|rapid|fast (?:heart )?rate|tachycardi\w*)\b", "STACH"),
               (r"\b(?:too slow|slow (?:heart )?rate|rate (?:is )?slow|bradycardi\w*)\b",
                "SBRAD"),
               (r"\binfarct\w*|\bmi\b", "MI"),
               (r"\bhypertroph\w*", "HYP"))
_CARRIER = re.compile(r"^(?:is|are|does|do|did|has|have|can|could|would|was|were|should|might|"
                      r"may)\s+(?:there|this|it|the patient|the (?:ecg|ekg|tracing|recording))"
                      r"\s+(?:(?:in|a|an|any|show|have|be|call this|consistent with)\s+)*|"
                      r"^(?:any|show)\s+|\b(?:evidence|signs?|features?) of\s+|"
                      r"\s+(?:on|in) (?:this|the) (?:ecg|ekg|tracing|recording)$|\s+present$")


@dataclass(frozen=True)
class FreeQuestion:
    """What a plain-word question asks: `kind` "rhythm", "finding" (the labeller's `codes`) or
    "words" (the `phrase`, scored zero-shot)."""

    kind: str
    codes: tuple[str, ...] = ()
    phrase: str = ""


def phrase_of(question: str) -> str:
    """The words asked about, without the question's carrier ("is there evidence of ...")."""
    q = question_text(question)
    for _ in range(3):
        q2 = _CARRIER.sub("", q).strip(" ,")
        if q2 == q:
            break
        q = q2
    return q


def finding_codes(text: str) -> tuple[str, ...]:
    """The findings regen states that a text names: the report labeller's reading (with
    clinicians' shorthand spelled out), a specific code over its superclass, a named rhythm
    over plain sinus rhythm."""
    q = question_text(text)
    read = q
    for pat, words in _ALIASES:
        read = re.sub(pat, words, read)
    codes = {c for c in label_report(read) if c in FINDINGS}
    codes |= {c for pat, c in _CODE_WORDS if re.search(pat, q)}
    specific = {c for c in codes if c not in SUPERS}
    if len(specific) > 1:
        specific.discard("SR")          # "sinus tachycardia" reads as SR and STACH
    if specific:
        return tuple(sorted(specific))
    return tuple(sorted(codes - {"NORM"} if len(codes) > 1 else codes))


def parse_free(question: str) -> FreeQuestion | None:
    """None when the question is neither a rhythm question nor a yes/no question."""
    q = question_text(question)
    if not q:
        return None
    if _RHYTHM.search(q):
        return FreeQuestion("rhythm")
    if not _YES_NO.search(q):
        return None
    codes = finding_codes(q)
    if codes:
        return FreeQuestion("finding", codes)
    phrase = phrase_of(question)
    return FreeQuestion("words", phrase=phrase) if phrase else None


def answer_free(fq: FreeQuestion, question: str, report: Report,
                scores: Classification | None = None, closest: float = 1.0) -> Answer:
    """The answer to a parsed free question from the ECG's report (its findings, decided as
    the report decides them, and measurements) or, for "words", its zero-shot score."""
    nbrs = (tuple(report.neighbours),)
    by = {f.label: f for f in report.findings}
    implausible = report.input is not None and report.input.implausible
    if implausible:
        return Answer(question, ("not sure",), 0.0, True, nbrs, {}, "free-form",
                      "findings",
                      "not sure: " + "; ".join(w for w in report.input.warnings  # type: ignore[union-attr]
                                               if "implausible" in w))
    rate = _rate(report)
    if fq.kind == "rhythm":
        cands = [by[c] for c in RHYTHMS if c in by]
        present = [f for f in cands if f.present]
        # a rhythm a measurement ruled out (a sinus one where the P wave is not sinus) is
        # never offered as "the most likely"; why it was ruled out is said
        ruled = [f for f in cands if f.source == "measured" and not f.present]
        open_ = [f for f in cands if f not in ruled and f.assessable]
        ev = {NAMES.get(f.label, f.label).lower(): f.probability for f in cands}
        why = (f"; {NAMES.get(ruled[0].label, ruled[0].label).lower()} is ruled out: "
               f"{'; '.join(ruled[0].evidence)}" if ruled and not present else "")
        if not present and not open_:
            return Answer(question, ("not sure",), 0.0, True, nbrs, ev, "free-form",
                          "findings", f"not sure: no rhythm is stated{why}{rate}")
        best = present[0] if present else max(open_, key=lambda f: f.probability - f.threshold)
        name = NAMES.get(best.label, best.label).lower()
        how = ("decided" if present else "none decided; the most likely") + \
            f" ({best.source}, p={best.probability:.2f} at threshold {best.threshold:.2f})"
        text = f"{name}: {how}{why}{rate}"
        return Answer(question, (name,), best.probability, False, nbrs, ev, "free-form",
                      "findings", text)
    if fq.kind == "finding":
        # A report lists the findings it states and those with p >= 0.1; the others were decided
        # absent at p < 0.1, unless its leads cannot show them.
        leads = set(report.input.leads_used) if report.input else set(LIMB + CHEST)
        fs = [by.get(c) or Finding(NAMES.get(c, c), c, 0.0, False, "retrieved",
                                   assessable=needs(c, leads) is None,
                                   note=needs(c, leads) or "", threshold=0.1)
              for c in fq.codes]
        names = " or ".join(NAMES.get(f.label, f.label).lower() for f in fs)
        if not any(f.assessable for f in fs):
            why = "; ".join(f.note for f in fs if f.note) or "not assessable from these leads"
            return Answer(question, ("not sure",), 0.0, True, nbrs, {}, "free-form",
                          "findings", f"not sure whether {names}: {why}")
        yes = any(f.present for f in fs)
        top = max(fs, key=lambda f: f.probability - f.threshold)
        support = [e for f in fs for e in f.evidence][:5]
        text = (f"{'yes' if yes else 'no'}: {names} "
                f"{'is stated' if yes else 'is not stated'} in the report "
                + (f"(measured: {'; '.join(top.evidence)})"
                   if top.source == "measured" and top.evidence else
                   f"({top.source}: calibrated p={top.probability:.2f}, threshold "
                   f"{top.threshold:.2f})" if top.probability > 0 else "(calibrated p < 0.1)"))
        if top.source == "retrieved":
            text += (". Support set: the nearest corpus ECGs with known labels"
                     + (f", of which {', '.join(support)} state it" if support else
                        "; none of the shown ones states it"))
        text += rate
        conf = abs(top.probability - top.threshold) / max(top.threshold, 1 - top.threshold)
        return Answer(question, ("yes" if yes else "no",), float(min(1.0, conf)), False, nbrs,
                      {NAMES.get(f.label, f.label).lower(): f.probability for f in fs},
                      "free-form", "findings", text)
    assert scores is not None
    s = scores.scores[fq.phrase]
    if closest < IN_SCOPE:
        return Answer(question, ("not sure",), 0.0, True, nbrs, {fq.phrase: s}, "free-form",
                      "zero-shot", f"not sure: '{fq.phrase}' is not what ECG reports describe "
                      f"(closest corpus report: cosine {closest:.2f})")
    if s >= WORDS_YES:
        opt, abstained = "yes", False
    elif s < WORDS_NO:
        opt, abstained = "no", False
    else:
        opt, abstained = "not sure", True
    text = (f"{opt}: no finding regen states was read in '{fq.phrase}'; zero-shot, this ECG "
            f"matches the words better than {s:.0%} of corpus ECGs ({scores.path}; yes from "
            f"{WORDS_YES:.0%}, no below {WORDS_NO:.0%}). Uncalibrated: check the trace.")
    return Answer(question, (opt,), abs(s - 0.5) * 2, abstained, nbrs, {fq.phrase: s},
                  "free-form", "zero-shot", text)


def _rate(report: Report) -> str:
    hr = (report.measurements or {}).get("hr_bpm")
    return f"; measured rate {hr:.0f}/min" if isinstance(hr, int | float) else ""




EXPLAIN_SYSTEM = ("You explain an answer that an ECG decision-support system already decided. "
                  "Use only the decided findings and measurements given. Reply with one or two "
                  "plain sentences that begin with the answer itself. Do not add findings, "
                  "advice, urgency or instructions.")


def explain(backend: object, question: str, ans: Answer, report: Report) -> Answer:
    """The plain-word answer worded by the configured LLM, checked as reports are: the reply
    must begin with the decided answer, read as no directive, and state no finding beyond the
    decided ones (`regen.untrusted.undecided`); otherwise the answer keeps its own text and
    says why. The decision itself never changes."""
    import json
    from dataclasses import replace

    from regen.llm import Message, redact, reply_schema
    from regen.untrusted import directive, undecided

    decided = [f for f in report.findings if f.present]
    facts = "; ".join(f"{f.name} (p={f.probability:.2f})" for f in decided) or "none"
    m = (report.measurements or {}).get("line") or "not measured"
    user = (f"Question: {question}\nDecided answer: {ans.options[0]}\n"
            f"Why it was decided: {ans.text}\nDecided findings: {facts}\nMeasured: {m}")
    secrets = tuple(getattr(backend, "secrets", ()))
    try:
        reply = backend.complete([Message("system", EXPLAIN_SYSTEM),  # type: ignore[attr-defined]
                                  Message("user", user + '\nReply as {"text": "..."}.')],
                                 reply_schema(["text"]))
    except Exception as exc:  # noqa: BLE001 - any backend failure keeps the decided text
        return replace(ans, text=ans.text + f" [LLM not used: {redact(str(exc), secrets)[:200]}]")
    try:                                    # {"text": ...} where the server kept to the schema
        got = json.loads(reply)
        reply = got["text"] if isinstance(got, dict) and isinstance(got.get("text"), str) \
            else reply
    except ValueError:
        pass
    text = " ".join(str(reply).split())[:600]
    why = None
    if not text.lower().startswith(ans.options[0].lower()):
        why = f"the reply does not begin with the decided answer '{ans.options[0]}'"
    elif (d := directive(text)) is not None:
        why = f"the reply reads as a directive ('{d}')"
    elif extra := undecided(text, [f.label for f in decided],
                            known=[f.label for f in report.findings]):
        why = "the reply states what was not decided: " + ", ".join(extra)
    if why:
        return replace(ans, text=ans.text + f" [LLM reply not used: {why}]")
    return replace(ans, text=text, refiner=f"llm ({ans.refiner})")


__all__ = ["IN_SCOPE", "WORDS_NO", "WORDS_YES", "FreeQuestion", "answer_free", "explain",
           "finding_codes", "parse_free", "phrase_of"]
