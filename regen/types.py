"""The small frozen values passed between stages and returned to users."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DISCLAIMER = ("Decision support only: generated from similar ECGs' reports; not a diagnosis. "
              "A clinician must read the ECG.")


@dataclass(frozen=True)
class Neighbour:
    """A corpus ECG retrieved for a query. score: cosine similarity of the embeddings."""

    id: int
    key: str
    score: float
    report: str
    labels: tuple[str, ...] = ()          # SCP statement codes
    superclasses: tuple[str, ...] = ()
    patient_id: str | None = None
    path: str = ""
    attributes: tuple[tuple[str, str], ...] = ()   # (kind, value): noise, axis, extra systoles

    @property
    def shown_report(self) -> str:
        """The report as a reader is shown it (`regen.compose.readable_report`: no coder's
        "Edit:" fragment, no mojibake); `report` keeps the stored text."""
        from regen.compose import UNREADABLE, readable_report

        return readable_report(self.report) or (UNREADABLE if self.report.strip() else "")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"], d["superclasses"] = list(self.labels), list(self.superclasses)
        d["attributes"] = [list(a) for a in self.attributes]
        d["report_shown"] = self.shown_report
        return d


@dataclass(frozen=True)
class Finding:
    """One finding regen can state, for one ECG. `label`: the labeller's code (or LAD/RAD for
    axis deviation); `probability`: calibrated, in [0, 1]; `present`: decided (probability over
    `threshold`, both from cross-validation in the corpus, and assessable from the leads given);
    `source`: "retrieved" (neighbours and the embedding's probe) or "measured" (from the
    signal); `evidence`: keys of neighbours whose reports state it, or the measurement;
    `sentence_sources`: keys of the corpus reports whose sentences state it in the text;
    `note`: why it cannot be assessed, or how a conflict was resolved."""

    name: str
    label: str
    probability: float
    present: bool
    source: str
    evidence: tuple[str, ...] = ()
    threshold: float = 0.5
    assessable: bool = True
    note: str = ""
    sentence_sources: tuple[str, ...] = ()
    parts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label,
                "probability": round(self.probability, 4), "present": self.present,
                "source": self.source, "evidence": list(self.evidence),
                "threshold": round(self.threshold, 4), "assessable": self.assessable,
                "note": self.note, "sentence_sources": list(self.sentence_sources),
                "parts": self.parts}


@dataclass(frozen=True)
class InputNotes:
    """What regen did with the input: the standard leads it used and those missing, the
    sampling rate read and used, the duration, how it was windowed, and warnings (wrong units,
    missing leads). `implausible`: the amplitude cannot be an ECG in mV (outputs abstain)."""

    leads_used: tuple[str, ...]
    leads_missing: tuple[str, ...]
    fs_in: float
    fs_used: float
    duration_s: float
    window_s: float
    n_windows: int
    warnings: tuple[str, ...] = ()
    implausible: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"leads_used": list(self.leads_used), "leads_missing": list(self.leads_missing),
                "fs_in": self.fs_in, "fs_used": self.fs_used,
                "duration_s": round(self.duration_s, 3), "window_s": self.window_s,
                "n_windows": self.n_windows, "warnings": list(self.warnings),
                "implausible": self.implausible}


@dataclass(frozen=True)
class Report:
    """A generated report. `cited` are the keys of the neighbours whose reports support `text`
    (for the consensus refiner the first is the neighbour whose report is used);
    `confidence` in [0, 1]; `abstained` when evidence is too weak to suggest a report. `model`
    is the LLM that wrote `text` (None: no LLM did); `fallback_reason` says why
    an LLM refiner's reply was not used, when the findings composer wrote the text instead."""

    text: str
    confidence: float
    neighbours: tuple[Neighbour, ...]
    cited: tuple[str, ...]
    abstained: bool
    refiner: str
    query: str = ""
    prompt_hash: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    model: str | None = None
    fallback_reason: str | None = None
    findings: tuple[Finding, ...] = ()
    input: InputNotes | None = None
    sentences: tuple[tuple[str, str], ...] = ()     # (sentence, key of its corpus report)
    abstain_rule: str = ""
    measurements: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()          # how conflicts between findings were resolved

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "text": self.text, "confidence": round(self.confidence, 4),
                "findings": [f.to_json() for f in self.findings],
                "input": self.input.to_json() if self.input else None,
                "measurements": self.measurements,
                "sentences": [{"text": t, "key": k} for t, k in self.sentences],
                "abstain_rule": self.abstain_rule, "notes": list(self.notes),
                "abstained": self.abstained, "refiner": self.refiner, "cited": list(self.cited),
                "neighbours": [n.to_json() for n in self.neighbours],
                "prompt_hash": self.prompt_hash, "model": self.model,
                "fallback_reason": self.fallback_reason, "timings": self.timings,
                "disclaimer": self.disclaimer}


@dataclass(frozen=True)
class Answer:
    """An answer to a question about one or more ECGs. `options` is the chosen answer set
    (ECG-QA style); `evidence` maps each candidate option to its support in [0, 1];
    `neighbours[i]` are the neighbours retrieved for the i-th ECG, `queries[i]`."""

    question: str
    options: tuple[str, ...]
    confidence: float
    abstained: bool
    neighbours: tuple[tuple[Neighbour, ...], ...]
    evidence: dict[str, float] = field(default_factory=dict)
    question_type: str | None = None
    refiner: str = "knn-vote"
    text: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    queries: tuple[str, ...] = ()        # the ECGs asked about (files or ids), as in Comparison

    def to_json(self) -> dict[str, Any]:
        return {"queries": list(self.queries), "question": self.question,
                "options": list(self.options),
                "text": self.text, "confidence": round(self.confidence, 4),
                "abstained": self.abstained, "question_type": self.question_type,
                "refiner": self.refiner,
                "evidence": {k: round(v, 4) for k, v in self.evidence.items()},
                "neighbours": [[n.to_json() for n in ns] for ns in self.neighbours],
                "timings": self.timings, "disclaimer": self.disclaimer}


@dataclass(frozen=True)
class Comparison:
    """What changed from a first ECG to a second, each judged by its own neighbours.
    new / resolved / persisting (in both; the text says "Persisting" too): findings with their
    support (share of similarity-weighted neighbours) in the first and the second ECG."""

    text: str
    new: dict[str, tuple[float, float]]
    resolved: dict[str, tuple[float, float]]
    persisting: dict[str, tuple[float, float]]
    confidence: float
    abstained: bool
    neighbours_a: tuple[Neighbour, ...]
    neighbours_b: tuple[Neighbour, ...]
    queries: tuple[str, str] = ("", "")
    timings: dict[str, float] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict[str, Any]:
        def pairs(d: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
            return {k: [round(a, 4), round(b, 4)] for k, (a, b) in d.items()}

        return {"queries": list(self.queries), "text": self.text,
                "new": pairs(self.new), "resolved": pairs(self.resolved),
                "persisting": pairs(self.persisting), "confidence": round(self.confidence, 4),
                "abstained": self.abstained,
                "neighbours_a": [n.to_json() for n in self.neighbours_a],
                "neighbours_b": [n.to_json() for n in self.neighbours_b],
                "timings": self.timings, "disclaimer": self.disclaimer}


ZERO_SHOT_NOTE = ("Scores rank ECGs for a text: the share of corpus ECGs that match it less "
                  "well (0.5: typical, 0.95: better than 95 %). They are not probabilities; "
                  "for the findings regen states, use the report's calibrated findings.")


@dataclass(frozen=True)
class Classification:
    """Zero-shot scores of one ECG against text labels. `path`: "text" (the ECG's projection
    into report space against each label's prompt ensemble) or "text+neighbours" (also its
    voting neighbours' reports matched to each label; the score is the mean of the two
    percentiles). `parts[label]`: each path's percentile and raw cosine; `findings[label]`:
    the calibrated finding the labeller reads in the label text, when regen states one."""

    query: str
    scores: dict[str, float]
    path: str
    parts: dict[str, dict[str, float]] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    neighbours: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    note: str = ZERO_SHOT_NOTE
    disclaimer: str = DISCLAIMER

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "path": self.path,
                "parts": {k: {n: round(x, 4) for n, x in v.items()} for k, v in self.parts.items()},
                "findings": self.findings, "neighbours": list(self.neighbours),
                "timings": self.timings, "warnings": list(self.warnings), "note": self.note,
                "disclaimer": self.disclaimer}


@dataclass(frozen=True)
class SearchHit:
    """A corpus ECG found for a text. `score`: cosine of its report (via "report") or of its
    ECG's projection into report space (via "ecg") with the text's prompt ensemble."""

    key: str
    score: float
    report: str
    labels: tuple[str, ...]
    superclasses: tuple[str, ...]
    via: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "score": round(self.score, 4), "report": self.report,
                "labels": list(self.labels), "superclasses": list(self.superclasses),
                "via": self.via}
