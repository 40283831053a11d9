"""Scoring question answering on ECG-QA-style items: regen's answers (the kNN vote, noise
measured from the signal) beside the kNN vote alone and the majority answer, per question type.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regen.corpus import CorpusRecord
from regen.qa import answer_knn, item_question
from regen.qa_data import QAItem

if TYPE_CHECKING:    # the API pulls in torch; scoring answers does not need it
    from regen.api import Regen


def majority_answers(train_items: Sequence[QAItem]) -> dict[Any, frozenset[str]]:
    """Most frequent gold answer set per template_id, and per (question_type, attribute_type)
    as a fallback for templates absent from training; ties go to the smallest sorted answer."""
    counts: dict[Any, Counter] = defaultdict(Counter)
    for it in train_items:
        for key in (it.template_id, (it.question_type, it.attribute_type)):
            counts[key][frozenset(it.answer)] += 1
    return {key: max(c, key=lambda a: (c[a], [-ord(ch) for ch in "|".join(sorted(a))]))
            for key, c in counts.items()}


def _summary(rows: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """accuracy over all items ("not sure" counts as wrong), the abstention rate, and the
    accuracy over the items answered (selective accuracy)."""
    n = len(rows)
    answered = [c for c, a in rows if not a]
    return {"n": n, "accuracy": sum(c for c, _ in rows) / n if n else None,
            "abstained": sum(a for _, a in rows) / n if n else None,
            "answered_accuracy": sum(answered) / len(answered) if answered else None}


def _report(rows: Sequence[tuple[QAItem, bool, bool]]) -> dict[str, Any]:
    by_type: dict[str, list] = defaultdict(list)
    by_attr: dict[str, list] = defaultdict(list)
    for it, correct, abstained in rows:
        by_type[it.question_type].append((correct, abstained))
        by_attr[f"{it.question_type}/{it.attribute_type}"].append((correct, abstained))
    return {"overall": _summary([(c, a) for _, c, a in rows]),
            "by_type": {k: _summary(v) for k, v in sorted(by_type.items())},
            "by_attribute": {k: _summary(v) for k, v in sorted(by_attr.items())}}


def signal_gap(true: Mapping[str, Any], random_ecg: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy with the true ECGs minus accuracy with random ones, overall and per type."""
    def gap(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
        return (None if a.get("accuracy") is None or b.get("accuracy") is None
                else round(a["accuracy"] - b["accuracy"], 4))
    return {"overall": gap(true["overall"], random_ecg["overall"]),
            "by_type": {t: gap(v, random_ecg["by_type"].get(t, {}))
                        for t, v in true["by_type"].items()}}


def evaluate_qa(rg: Regen, items: Sequence[QAItem], records_by_id: Mapping[int, CorpusRecord],
                k: int = 10, *, train_items: Sequence[QAItem] | None = None,
                abstain_below: float = 0.1,
                control: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy (exact set match with the gold answer) of regen's answers, per question type and
    per question type / attribute type, with the abstention rate ("not sure" counts as wrong
    unless the gold answer is itself ECG-QA's "not sure"). Every answer is what `Regen.ask`
    gives for the item's question text and options, and a question it does not understand
    counts as "not sure" (their number is `not_understood`); numeric-feature items are answered
    from the measurements (`regen.qa_numeric`).
    Baselines on the same items: "knn_vote" (the plain vote of the same neighbours, for every
    item its template maps to labels, noise too, lead-specific ones excepted) and, with
    `train_items`, "majority" (each template's most frequent training answer).

    `control`: paths of corpus ECGs; each item is asked again with randomly drawn ones (seeded)
    in place of its own ECGs ("random_ecg_control"), and `signal_gap` per question type is the
    accuracy lost: how much the answers depend on the ECG rather than on the question's
    wording."""
    todo: list[QAItem] = []
    skipped: Counter[str] = Counter()
    for it in items:
        if any(e not in records_by_id for e in it.ecg_ids):
            skipped["ECG not in records_by_id"] += 1
        else:
            todo.append(it)
    rows, knn_rows = [], []
    not_understood = 0
    for it in todo:
        # Exactly what a user gets: the question's words (and its options) through Regen.ask.
        ans = rg.ask([records_by_id[e].path for e in it.ecg_ids], it.question,
                     options=it.attribute or None, k=k, log=False)
        not_understood += ans.text.startswith("not sure: not understood")
        rows.append((it, set(ans.options) == set(it.answer), ans.abstained))
        q = item_question(it)
        if q is not None and q.lead is None:
            knn = answer_knn(q, ans.neighbours, abstain_below=abstain_below)
            knn_rows.append((it, set(knn.options) == set(it.answer), knn.abstained))
    out: dict[str, Any] = {"n": len(items), "answered": len(todo), "k": k,
                           "skipped": dict(skipped), "not_understood": not_understood,
                           **_report(rows), "baselines": {}}
    out["baselines"]["knn_vote"] = _report(knn_rows)
    if control:
        rng = random.Random(0)
        ctl = []
        for it in todo:
            paths = [rng.choice(list(control)) for _ in it.ecg_ids]
            ans = rg.ask(paths, it.question, options=it.attribute or None, k=k, log=False)
            ctl.append((it, set(ans.options) == set(it.answer), ans.abstained))
        out["random_ecg_control"] = _report(ctl)
        out["signal_gap"] = signal_gap(out, out["random_ecg_control"])
    if train_items is not None:
        table = majority_answers(train_items)
        base = []
        for it in todo:
            guess = table.get(it.template_id, table.get((it.question_type, it.attribute_type)))
            base.append((it, guess == frozenset(it.answer), False))
        out["baselines"]["majority"] = _report(base)
    return out
