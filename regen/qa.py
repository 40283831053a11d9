"""Question answering by a kNN vote over retrieved neighbours' labels (ECG-QA style).

A question becomes a `ParsedQuestion`: which answer group it asks about (SCP statements, noise,
heart axis, ...) and which candidate answers. Each candidate gets the similarity-weighted share of
the neighbours whose labels contain it (weights: softmax of cosine score / 0.05, as the consensus
refiner uses); verify says "yes" at a share of 0.5 or more and "not sure" near 0.5, choose and
query keep the candidates with a share of 0.5 or more. Answer strings are ECG-QA's
(`regen.qa_data`), so answers can be scored against ECG-QA's gold by exact set match.

Noise questions about one ECG, lead-specific ones included ("... static noise in lead aVL?"),
are answered by `answer_measured` from the ECG's own signal (`regen.quality`): noise belongs to
a recording, so its neighbours cannot vote on it. Not answerable (`regen.qa_eval` skips them):
numeric_feature questions (intervals ECG-QA measured) and lead-specific findings, because the
corpus keeps which finding a record has, not in which leads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

import numpy as np

from regen.ecg import LEAD_PHRASE
from regen.errors import QuestionError
from regen.qa_data import (
    ALL_SCP_NAMES,
    ANY_KIND,
    AXIS_NAMES,
    DIAGNOSTIC_NAMES,
    EXTRA_SYSTOLE_NAMES,
    FORM_NAMES,
    NOISE_NAMES,
    RHYTHM_NAMES,
    SCP_NAMES,
    SINGLE_ANSWER_GROUPS,
    STAGE_NAMES,
    SUPERCLASS_NAMES,
    TEMPLATES,
    QAItem,
    neighbour_answers,
    question_text,
    verify_gold,
)
from regen.quality import QualityModel, noise_score
from regen.refine import neighbour_weights
from regen.types import Answer, Neighbour


@dataclass(frozen=True)
class ParsedQuestion:
    """What a question asks. options: verify (attribute,), choose (a, b), query: the candidates.
    relation (comparisons of two ECGs): "new" (in the second, not the first), "resolved" (in the
    first, not the second) or "persisting" (in both)."""

    question_type: str
    attribute_type: str
    group: str
    options: tuple[str, ...]
    question: str = ""
    relation: str | None = None
    template_id: int | None = None
    lead: str | None = None        # "... in lead aVL?": the standard lead name

    @property
    def measured(self) -> bool:
        """Whether the answer is measured from the signal (noise: `regen.quality`) rather than
        voted by the neighbours: noise belongs to a recording, not to its diagnosis."""
        return self.group == "noise" and self.relation is None

    @property
    def kind(self) -> str:
        """"verify", "choose" or "query"."""
        return self.question_type.rsplit("-", 1)[-1]


# -- matching free text to the answer vocabulary ------------------------------------------------

_ATTRIBUTE_TYPE = {"scp_code": "scp_code", "superclass": "scp_code", "noise": "noise",
                   "heart_axis": "heart_axis", "stage_of_infarction": "stage_of_infarction",
                   "extra_systole": "extra_systole"}
_VOCAB: dict[str, tuple[str, ...]] = {
    "scp_code": tuple(SCP_NAMES.values()), "superclass": tuple(SUPERCLASS_NAMES.values()),
    "noise": NOISE_NAMES + ("any kind of noises",), "heart_axis": AXIS_NAMES,
    "stage_of_infarction": STAGE_NAMES[:3],
    "extra_systole": tuple(EXTRA_SYSTOLE_NAMES.values()) + ("any kind of extra systoles",)}
_ALIASES = {
    "lbbb": "complete left bundle branch block", "rbbb": "complete right bundle branch block",
    "af": "atrial fibrillation", "afib": "atrial fibrillation", "a fib": "atrial fibrillation",
    "lad": "left axis deviation", "rad": "right axis deviation", "normal": "normal ecg",
    "normal axis": "normal heart axis", "mi": "myocardial infarction",
    "infarction": "myocardial infarction", "noise": "any kind of noises",
    "noises": "any kind of noises", "any noise": "any kind of noises",
    "any kind of noise": "any kind of noises", "extra systoles": "any kind of extra systoles",
    "electrode problems": "electrodes problems", "drift": "baseline drift",
}
_STOP = {"a", "an", "the", "any", "some", "signs", "sign", "evidence", "symptoms", "symptom",
         "features", "of"}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9/]+", " ", text.lower()).split())


def _group_of(name: str) -> str:
    return next(g for g, names in _VOCAB.items() if name in names)


def match_attribute(text: str, options: Sequence[str] | None = None) -> tuple[str, str] | None:
    """(group, ECG-QA name) for an attribute named in free text, or None.

    Exact names, SCP codes ("CLBBB") and a few aliases first; then the candidate explaining most
    of the words (ignoring "any", "signs of", ...), ties broken by token F1 and character
    similarity: "left bundle branch block" -> "complete left bundle branch block".
    """
    q = _norm(text)
    names = [n for ns in _VOCAB.values() for n in ns]
    if options is not None:
        names = [n for n in names if n in set(options)]
    by_norm = {_norm(n): n for n in names}
    by_norm.update({_norm(c): n for c, n in SCP_NAMES.items() if n in names})
    by_norm.update({a: n for a, n in _ALIASES.items() if n in names})
    if q in by_norm:
        return _group_of(by_norm[q]), by_norm[q]
    qt = set(q.split()) - _STOP
    if not qt:
        return None
    best, best_key = None, (0.0, 0.0)
    for n in names:
        nt = set(_norm(n).split())
        common = len(qt & nt)
        cover = common / len(qt)
        score = 0.5 * (2 * common / (len(qt) + len(nt))) + 0.5 * SequenceMatcher(
            None, q, _norm(n)).ratio()
        if (cover, score) > best_key:
            best, best_key = n, (cover, score)
    cover, score = best_key
    if best is None or not ((cover == 1.0 and score >= 0.5) or (cover >= 0.5 and score >= 0.65)):
        return None
    return _group_of(best), best


_QUERY_TOPICS = (("noise", "noise", NOISE_NAMES), ("axis", "heart_axis", AXIS_NAMES),
                 ("extra systole", "extra_systole", tuple(EXTRA_SYSTOLE_NAMES.values())),
                 ("extrasystole", "extra_systole", tuple(EXTRA_SYSTOLE_NAMES.values())),
                 ("stage", "stage_of_infarction", STAGE_NAMES),
                 ("rhythm", "scp_code", RHYTHM_NAMES),
                 ("form", "scp_code", FORM_NAMES), ("diagnos", "scp_code", DIAGNOSTIC_NAMES),
                 ("superclass", "superclass", tuple(SUPERCLASS_NAMES.values())),
                 ("symptom", "scp_code", ALL_SCP_NAMES), ("finding", "scp_code", ALL_SCP_NAMES),
                 ("abnormalit", "scp_code", ALL_SCP_NAMES))
_ECG = r"(?:this|the|my) (?:ecg|ekg|electrocardiogram|tracing|recording)"
_CHOOSE = re.compile(rf"^(?:which|what) (?P<what>.+?) (?:does|do|is) {_ECG}"
                     rf"(?: (?:show|have|display)s?)?,? (?P<a>.+?),? or (?P<b>.+)$")
_QUERY = re.compile(rf"^(?:what|which) (?:kinds? of |types? of |sorts? of )?(?P<what>.+?) "
                    rf"(?:does|do|is|are|can you see (?:in|on)) {_ECG}.*$"
                    rf"|^what is the (?P<axis>(?:heart |electrical |qrs )?axis)\b.*$")
_VERIFY = (
    re.compile(rf"^(?:does|do|did|can|could) {_ECG} (?:show|have|display|demonstrate|contain|"
               rf"indicate|reveal|suggest)s? (?P<a>.+)$"),
    re.compile(rf"^is there (?P<a>.+?)(?: (?:on|in) {_ECG})?$"),
    re.compile(rf"^is {_ECG} (?:showing |consistent with |compatible with )?(?P<a>.+)$"),
    re.compile(r"^is (?:this|it) (?P<a>(?:a )?normal(?: ecg| ekg)?)$"),
)


_RELATIONS = (("persisting", re.compile(r"\bstill\b|\bboth\b|\bremain")),
              ("resolved", re.compile(r"no longer|disappear|become normal|now normal|resolved|"
                                      r"\bgone\b")),
              ("new", re.compile(r"newly|\bnew\b|now (?:considered )?abnormal|appear|develop")))
_SECOND = re.compile(r"\b(?:the )?(?:second|later|latter|2nd|newer) (?:ecg|ekg|one|tracing)\b")
_FIRST = re.compile(r"\b(?:(?:as )?compared (?:to|with) |than |relative to |versus |vs\.? )?"
                    r"(?:the )?(?:first|earlier|former|1st|previous|older) (?:ecg|ekg|one|tracing)"
                    r"\b")


def parse_comparison(text: str, options: Sequence[str] | None = None
                     ) -> ParsedQuestion | None:
    """ECG-QA's two-ECG wording ("Does the second ECG still show ...?", "What diagnostic
    symptoms of the second ECG are newly detected compared to the first ECG?"): the relation
    from its words ("still": persisting, "no longer"/"become normal": resolved, "newly"/"now
    abnormal": new), then the question about one ECG that remains; None if either is missing."""
    q = question_text(text)
    if not (_SECOND.search(q) or _FIRST.search(q)):
        return None
    relation = next((r for r, pat in _RELATIONS if pat.search(q)), None)
    if relation is None:
        return None
    if re.match(r"^(?:what|which)\b", q):
        if "numeric" in q:
            return None
        topic = next(((g, names) for key, g, names in _QUERY_TOPICS if key in q), None)
        if topic is None:
            return None
        group, names = topic
        opts = tuple(n for n in names if options is None or n in options) or tuple(names)
        return ParsedQuestion("comparison-query", _ATTRIBUTE_TYPE[group], group, opts, text,
                              relation)
    found = [n for ns in _VOCAB.values() for n in ns if n in q
             and (options is None or n in options)]
    if not found:
        return None
    name = max(found, key=len)
    group = ANY_KIND.get(name, _group_of(name))
    return ParsedQuestion("comparison-verify", _ATTRIBUTE_TYPE[group], group, (name,), text,
                          relation)


def parse_question(text: str, options: Sequence[str] | None = None,
                   n_ecgs: int = 1) -> ParsedQuestion | None:
    """Match a free-text question about one ECG to a verify, choose or query question on SCP
    statements, noise, heart axis, extra systoles or infarction stage; None when nothing matches
    (the caller then answers in free text). `options` restricts the attributes it may name.
    With two ECGs, ECG-QA's comparison wording is parsed (`parse_comparison`); a question about
    one ECG asked of two means "newly in the second"."""
    if n_ecgs == 2:
        if cmp := parse_comparison(text, options):
            return cmp
        one = parse_question(text, options)
        return replace(one, relation="new") if one is not None and not one.measured else None
    q = question_text(text)
    if m := LEAD_PHRASE.search(q):
        # Only noise is answered per lead (measured from the signal); findings per lead are not
        # stored for the neighbours.
        inner = parse_question(q[:m.start()].rstrip() + q[m.end():], options)
        if inner is None or inner.group != "noise" or not m["lead"]:
            return None
        return replace(inner, question=text, lead=_lead_name(m["lead"]))
    if m := _CHOOSE.match(q):
        a, b = match_attribute(m["a"], options), match_attribute(m["b"], options)
        if a and b and a[0] == b[0] and a[1] != b[1]:
            return ParsedQuestion("single-choose", _ATTRIBUTE_TYPE[a[0]], a[0], (a[1], b[1]),
                                  text)
    if m := _QUERY.match(q):
        what = m["axis"] or m["what"]
        for key, group, names in _QUERY_TOPICS:
            if key in what:
                opts = tuple(n for n in names if options is None or n in options) or names
                return ParsedQuestion("single-query", _ATTRIBUTE_TYPE[group], group, opts, text)
    for pattern in _VERIFY:
        if m := pattern.match(q):
            said = re.sub(rf"\s+(?:on|in) {_ECG}$|\s+present$", "", m["a"])
            said = re.sub(r"^(?:any )?(?:signs?|symptoms?|evidence|features?) of ", "", said)
            if found := match_attribute(said, options):
                group, name = found
                if name in ANY_KIND:
                    group = ANY_KIND[name]
                return ParsedQuestion("single-verify", _ATTRIBUTE_TYPE[group], group, (name,),
                                      text)
    return None


def _lead_name(lower: str) -> str:
    from regen.ecg import STANDARD_LEADS

    return next(n for n in STANDARD_LEADS if n.lower() == lower)


def _comparison(item: QAItem) -> ParsedQuestion | None:
    """Comparison questions by their wording: "still" -> persisting, "... become normal" ->
    resolved, "now abnormal" / "newly" -> new. The attribute type comes from the item."""
    q, group = item.question.lower(), item.attribute_type
    if group not in _VOCAB or group == "superclass":
        return None
    if "still" in q or "both" in q:
        relation = "persisting"
    elif re.search(r"no longer|disappear|become normal|now normal|resolved", q):
        relation = "resolved"
    elif re.search(r"newly|\bnew\b|now (?:considered )?abnormal|appear", q):
        relation = "new"
    else:
        return None
    names = ALL_SCP_NAMES if group == "scp_code" else _VOCAB[group]
    if item.question_type.endswith("verify"):
        inside = [n for n in names if n in q]
        if not inside:
            return None
        names = (max(inside, key=len),)
    return ParsedQuestion(item.question_type, item.attribute_type, group, tuple(names),
                          item.question, relation, item.template_id)


def item_question(item: QAItem) -> ParsedQuestion | None:
    """The ParsedQuestion of a QA item, or None when labels cannot answer it."""
    if item.attribute_type == "numeric_feature":
        return None
    if m := LEAD_PHRASE.search(item.question.lower()):
        if item.attribute_type != "noise" or item.question_type != "single-verify" \
                or not m["lead"] or not item.attribute:
            return None
        return ParsedQuestion(item.question_type, "noise", "noise", tuple(item.attribute[:1]),
                              item.question, None, item.template_id, _lead_name(m["lead"]))
    if item.question_type.startswith("comparison"):
        return _comparison(item)
    t = TEMPLATES.get(item.template_id)
    if t is not None and t.question_type == item.question_type and (
            item.source == "derived" or t.wording == "ecgqa"):
        opts = t.options if t.question_type == "single-query" else tuple(item.attribute or ())
        if opts:
            group = ANY_KIND.get(opts[0], t.group)
            return ParsedQuestion(t.question_type, t.attribute_type, group, opts, item.question,
                                  None, t.template_id)
    parsed = parse_question(item.question, item.attribute)
    if parsed is None or parsed.question_type != item.question_type:
        return None
    return ParsedQuestion(parsed.question_type, parsed.attribute_type, parsed.group,
                          parsed.options, parsed.question, None, item.template_id)


def label_answer(q: ParsedQuestion, truths: Sequence[Mapping[str, set[str]]]) -> tuple[str, ...]:
    """The answer the labels themselves give (truths[i]: `record_answers` of the i-th ECG), by
    the same rules as the vote: ECG-QA's derivation, for checking gold answers."""
    if q.kind == "verify" and not q.relation:
        return (verify_gold(q.group, q.options[0], truths[0]),)

    def has(truth: Mapping[str, set[str]], o: str) -> bool:
        return bool(truth[ANY_KIND[o]]) if o in ANY_KIND else o in truth[q.group]

    if q.relation:
        first, second = ({o: float(has(t, o)) for o in q.options} for t in truths)
        shown = {o for o, v in _combine(q.relation, first, second).items() if v}
    else:
        shown = {o for o in q.options if has(truths[0], o)}
    if q.kind == "verify":
        return ("yes",) if shown else ("no",)
    return tuple(o for o in q.options if o in shown) or ("none",)


# -- the vote ------------------------------------------------------------------------------------

def _shares(q: ParsedQuestion, nbrs: Sequence[Neighbour],
            temperature: float) -> dict[str, float] | None:
    """Similarity-weighted share of the neighbours whose answers contain each option; None when
    no neighbour says anything about the group (e.g. none has a known heart axis)."""
    answers = [neighbour_answers(n)[q.group] for n in nbrs]
    keep = [i for i, a in enumerate(answers) if q.group not in SINGLE_ANSWER_GROUPS or a]
    if not keep:
        return None
    w = neighbour_weights(np.array([nbrs[i].score for i in keep], dtype=np.float64), temperature)
    out = {}
    for o in q.options:
        hit = [bool(answers[i]) if o in ANY_KIND else o in answers[i] for i in keep]
        out[o] = float(w @ np.array(hit, dtype=np.float64))
    return out


def _combine(relation: str, first: dict[str, float], second: dict[str, float]) -> dict[str, float]:
    """Per-option probability of the relation, the two ECGs' votes taken as independent."""
    if relation == "new":
        return {o: second[o] * (1 - first[o]) for o in first}
    if relation == "resolved":
        return {o: first[o] * (1 - second[o]) for o in first}
    if relation == "persisting":
        return {o: first[o] * second[o] for o in first}
    raise QuestionError(f"relation {relation!r} is unknown; expected new, resolved or "
                        "persisting")


def answer_knn(question: QAItem | ParsedQuestion, neighbours: Sequence[Sequence[Neighbour]], *,
               abstain_below: float = 0.1, temperature: float = 0.05,
               probabilities: Sequence[Mapping[str, float] | None] | None = None) -> Answer:
    """Answer from the neighbours' labels. neighbours[i]: those retrieved for the i-th ECG (one
    ECG, or two for a comparison).

    verify: "yes" when the share is >= 0.5, "no" below, and "not sure" (abstained) when it is
    within `abstain_below` of 0.5. choose: the options with share >= 0.5, or "none". query: all
    candidates with share >= 0.5, or "none" (heart axis and infarction stage: the one with the
    largest share). Comparisons combine the two ECGs' shares per relation (see ParsedQuestion).
    evidence: option -> share; confidence: mean |share - 0.5| * 2 over the options.
    `probabilities[i]`, when given, replaces the i-th ECG's shares by calibrated probabilities
    (`regen.qa_model`) for the options it holds; the answer then says "calibrated".
    """
    q = item_question(question) if isinstance(question, QAItem) else question
    if q is None:
        raise QuestionError(f"question {question.question!r} ({question.attribute_type}) cannot be "
                         f"answered from labels; check with item_question() first")
    want = 2 if q.relation else 1
    if len(neighbours) != want:
        raise QuestionError(f"{q.question_type} needs neighbours for {want} ECG(s); got "
                         f"{len(neighbours)}")
    per_ecg = [_shares(q, ns, temperature) for ns in neighbours]
    calibrated = False
    if probabilities is not None:
        for i, pr in enumerate(probabilities):
            vote = per_ecg[i]
            if pr and vote is not None:
                per_ecg[i] = {o: pr.get(o, v) for o, v in vote.items()}
                calibrated = True
            elif pr:
                per_ecg[i] = {o: pr.get(o, 0.0) for o in q.options}
                calibrated = True
    nbrs = tuple(tuple(ns) for ns in neighbours)
    if any(s is None for s in per_ecg):
        return Answer(q.question, ("not sure",), 0.0, True, nbrs, {}, q.question_type,
                      text=f"not sure: no neighbour has a known {q.group.replace('_', ' ')}")
    ready = [s for s in per_ecg if s is not None]
    shares = _combine(q.relation, ready[0], ready[1]) if q.relation else ready[0]
    margins = [abs(v - 0.5) * 2 for v in shares.values()]
    confidence = float(np.mean(margins)) if margins else 0.0
    abstained = False
    options: tuple[str, ...]
    if q.kind == "verify":
        share = shares[q.options[0]]
        if abs(share - 0.5) < abstain_below:
            options, abstained = ("not sure",), True
        else:
            options = ("yes",) if share >= 0.5 else ("no",)
        text = (f"{options[0]}: calibrated probability of {q.options[0]} {share:.0%} "
                "(neighbours' vote and the ECG's embedding, calibrated by CV in the corpus)"
                if calibrated else
                f"{options[0]}: {share:.0%} of the similarity-weighted neighbours support "
                f"{q.options[0]}")
    else:
        if q.kind == "query" and q.group in SINGLE_ANSWER_GROUPS and not q.relation:
            options = (max(q.options, key=lambda o: shares[o]),)
        else:
            options = tuple(o for o in q.options if shares[o] >= 0.5) or ("none",)
        text = "; ".join(f"{o} ({shares[o]:.0%})" if o in shares else o for o in options)
    return Answer(q.question, options, confidence, abstained, nbrs, shares, q.question_type,
                  refiner="calibrated" if calibrated else "knn-vote", text=text)


# "not sure" band around a noise threshold (log-odds). Chosen by leave-one-fold-out CV on
# ECG-QA's noise questions about PTB-XL folds 1-8 (912 items; python bench/noise_cv.py --data
# PTBXL --ecgqa ECGQA): accuracy 0.798 / 0.788 / 0.766 / 0.725 for bands 0 / 0.1 / 0.25 / 0.5.
# A "not sure" there was wrong more often than the answer it replaced, so none: the answer's
# confidence says how near the threshold it was.
ABSTAIN_LOGIT = 0.0


def answer_measured(q: ParsedQuestion, probs: Mapping[str, Mapping[str, float]],
                    model: QualityModel, neighbours: Sequence[Sequence[Neighbour]] = (), *,
                    abstain_logit: float = ABSTAIN_LOGIT) -> Answer:
    """Answer a noise question from the signal-quality model's per-lead probabilities
    (`QualityModel.probabilities` of the ECG): an option holds when its score (`noise_score`)
    reaches the model's threshold for that kind of question. verify says "not sure" when the
    score is within `abstain_logit` of the threshold on the log-odds scale; confidence is that
    log-odds distance / 4, capped at 1. The neighbours are kept as context, and vote (as
    `answer_knn`) only on a whole-ECG verify question about a type the model does not
    measure; about one lead (or without neighbours), such a question gets the usual answer of
    its kind among the ECG-QA questions the model was fitted with (`QualityModel.prior`),
    marked as not measured: in leave-one-fold-out CV in folds 1-8 that was right more often
    than "not sure" (bench/noise_cv.py); "not sure" when the model has no prior."""
    nbrs = tuple(tuple(ns) for ns in neighbours)
    where = f" in lead {q.lead}" if q.lead else ""
    unmeasured: tuple[str, ...] = ()
    if q.kind != "verify":         # choose / query: only the types the model measures
        unmeasured = tuple(o for o in q.options if o not in probs and o != "any kind of noises")
        q = replace(q, options=tuple(o for o in q.options if o not in unmeasured))
    scores = {o: noise_score(probs, o, q.lead) for o in q.options}
    if scores and all(v is None for v in scores.values()) and q.lead is None and nbrs:
        # A type the model cannot measure, asked of the whole ECG: the neighbours' vote on it
        # (their labels say how often it was annotated on similar ECGs), marked as such.
        ans = answer_knn(q, nbrs)
        return replace(ans, text=f"not measured from the signal (too few annotated examples); "
                                 f"the similar ECGs' vote: {ans.text}")
    has_lead = q.lead is None or any(q.lead in by_lead for by_lead in probs.values())
    prior = model.prior(q.options[0], q.lead is not None) if q.options else None
    if q.kind == "verify" and has_lead and scores[q.options[0]] is None and prior:
        return _answer_prior(q, prior, nbrs)
    if not scores or any(v is None for v in scores.values()):
        missing = ", ".join(o for o, v in scores.items() if v is None) or "these noise types"
        why = (f"the ECG has no lead {q.lead}" if not has_lead else
               f"{missing} cannot be measured reliably (too few annotated examples to learn "
               "from)")
        return Answer(q.question, ("not sure",), 0.0, True, nbrs, {}, q.question_type,
                      refiner="signal-quality", text=f"not sure: {why}")
    thresholds = {o: model.threshold(o, q.lead is not None) for o in q.options}
    gaps = {o: _logit(scores[o] or 0.0) - _logit(thresholds[o]) for o in q.options}
    confidence = float(np.mean([min(1.0, abs(g) / 4) for g in gaps.values()]))
    abstained = False
    options: tuple[str, ...]
    if q.kind == "verify":
        o = q.options[0]
        if abs(gaps[o]) < abstain_logit:
            options, abstained = ("not sure",), True
        else:
            options = ("yes",) if gaps[o] >= 0 else ("no",)
        text = (f"{options[0]}: {o}{where} scores {scores[o]:.2f} against a threshold of "
                f"{thresholds[o]:.2f}, measured from the signal")
    else:
        options = tuple(o for o in q.options if gaps[o] >= 0) or ("none",)
        text = "; ".join(f"{o} ({scores[o]:.2f} >= {thresholds[o]:.2f})" if o in scores else o
                         for o in options) + f"{where}, measured from the signal"
        if unmeasured:
            text += (f" ({', '.join(unmeasured)}: cannot be measured reliably, too few "
                     "annotated examples; not included)")
    return Answer(q.question, options, confidence, abstained, nbrs,
                  {o: float(v) for o, v in scores.items() if v is not None}, q.question_type,
                  refiner="signal-quality", text=text)


def _answer_prior(q: ParsedQuestion, prior: tuple[float, int],
                  nbrs: tuple[tuple[Neighbour, ...], ...]) -> Answer:
    """A verify question about a type the model does not measure: the usual answer of its kind
    (share of "yes" among `n` training questions), confidence |2 share - 1|."""
    share, n = prior
    option = "yes" if share > 0.5 else "no"
    where = f" in lead {q.lead}" if q.lead else ""
    text = (f"{option}: {q.options[0]}{where} is not measured from the signal (too few "
            f"annotated examples); the usual answer to this question ({share:.0%} \"yes\" of "
            f"{n} training questions)")
    return Answer(q.question, (option,), abs(2 * share - 1), False, nbrs, {}, q.question_type,
                  refiner="signal-quality", text=text)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))
