"""Report text from decided findings, every sentence taken from a real corpus report.

In order of preference, for the decided label set D:

1. a whole report that states exactly D, from the neighbours or the corpus's commonest for D:
   the one whose wording agrees most with the neighbours' reports (chosen, like everything here,
   by leave-one-fold-out CV in PTB-XL folds 1-8: BLEU-4 0.321 against 0.280 for the closest
   such neighbour, label F1 unchanged);
2. when no report states exactly D, a subset of D that corpus reports state, if it loses
   little (so the text never states a finding that was not decided);
3. otherwise clauses of corpus reports, each stating a subset of D, chosen greedily to cover D
   and put in the conventional reading order (rhythm, rate, axis, conduction, hypertrophy,
   infarction/ischaemia, repolarisation, overall).

Each sentence keeps the key of the report it came from. Reports or clauses naming a lead the
query lacks ("st depression in v4-v6" for a two-lead recording) are never used. Stitched clauses
read as findings on their own: one that leans on the clause before it ("this may be due to lv
strain or ischaemia") or gives advice ("suggest exclude hypokalaemia") is used only where no
other clause states its finding, and none cut off mid-phrase is; a superclass that a stated
finding implies (CD beside an AV block) gets no clause of its own; the rhythm is said once;
English output reuses no report the translation left in German; and a specific diagnosis regen
has no probability for (atrial enlargement, right ventricular hypertrophy, second-degree AV
block: `_NEEDS_SUPPORT`) is said only where a shown neighbour's report says it. No text is
reused from the sentence on where a report compares its ECG with an earlier tracing ("compared
with tracing of 9:9:91, rhythm has changed"): a new patient has no such history. The findings
stage forbids more by measurement (`forbid`): what was measured absent, a sinus rhythm where the
P wave is not sinus, atrial enlargement where no P wave was measured or beside atrial
fibrillation (`regen.diagnose`).
Text shown to users is cleaned: annotator edit notes ("Edit: LVH 35, ...") are cut, and reports
whose encoding is broken beyond repair, that read as instructions, or that state what regen never
decides (`regen.untrusted`) are not used at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from regen.findings import SECTION
from regen.labeller import LABELS, SCP_SUPERCLASS, explicit_labels, label_report, stated_codes
from regen.untrusted import directive, never_decided

# Chosen by leave-one-fold-out CV in PTB-XL folds 1-8 (400 OOF reports, wording by the medoid):
# switching to the best decided subset that corpus reports state when it loses < 1 logit gave
# BLEU-4 0.318 / ROUGE-L 0.514 / label F1 0.463, against 0.318 / 0.510 / 0.460 never switching
# (stitching clauses) and 0.318 / 0.518 / 0.435 always switching; 0.5 and 2 logits: 0.455, 0.456.
SWITCH_LOGIT = 1.0
_EDIT = re.compile(r"\s*\bedit\s*:.*$", re.IGNORECASE | re.DOTALL)
_BROKEN = re.compile(r"[ÃÂ�]|Ã³")
# Clauses end at a full stop or semicolon, or at a comma that does not continue a list of
# leads or numbers ("st depression in ii, iii, avf" stays whole).
_CLAUSE = re.compile(r"(?<=[.;])\s+|,\s+(?!(?:v?[1-6]\b|iii\b|ii\b|i\b|av[lrf]\b|and\b))")
# German words that PTB-XL's English translation left in some reports.
_GERMAN = re.compile(r"\b(sinus(rhythmus|bradykardie|tachykardie|arrhythmie)|lagetyp|linkstyp|"
                     r"rechtstyp|steiltyp|vorhof\w+|normales|\w*schenkelblock\w*|myokard\w*|"
                     r"ueberdreht\w*|niederspannung|erregungsr\w+|veraenderung\w*|"
                     r"unspezifisch\w*|moeglich)\b", re.IGNORECASE)
# A clause cut off mid-phrase ("subendocardial infarction of") is not reused on its own.
_UNFINISHED = re.compile(r"\b(of|in|with|and|or|to|the|a|as|for|by|at|on|than|from|is|are)$",
                         re.IGNORECASE)
# Specific diagnoses regen does not decide (no probability of its own: outside LABELS) are
# stated only where a report of the similar ECGs shown states it too: a superclass decided
# alone (HYP without LVH) is otherwise said through whatever subtype the clause table offers,
# "possible right ventricular hypertrophy" beside a left bundle branch block. Checked with the
# fold-8 chain (folds 1-7 corpus) and fold 7 (folds 1-6 and 8): label F1 0.5689 -> 0.5703 and
# 0.5301 -> 0.5321, HYP 0.737 -> 0.778 and 0.640 -> 0.696, BLEU-4 0.3275 -> 0.3275 and 0.3208
# -> 0.3199. Holding every code outside LABELS to it (non-specific ST-T wording included) was
# mixed (0.5659 and 0.5331), so only these.
_NEEDS_SUPPORT = frozenset({"LAO/LAE", "RAO/RAE", "RVH", "SEHYP", "2AVB", "3AVB", "WPW", "LPFB",
                            "ILBBB"})
# Statements about the whole tracing (rhythm, rate, overall), which a report makes once.
_SAID_ONCE = frozenset({"SR", "AFIB", "SARRH", "PACE", "STACH", "SBRAD", "NORM"})
# A clause that leans on the one before it ("this may be due to lv strain or ischaemia" after
# "st segments are depressed in i, avl") is stitched in only where nothing else states its
# finding: after another clause it says something else ("old anteroseptal infarct cannot be
# excluded; this may be due to lv strain"). The same for advice ("suggest exclude
# hypokalaemia"), which is not a finding.
_DEPENDENT = re.compile(r"(this|these|which|findings|consistent with|as in|or|but|for|"
                        r"non-specific but|suggest\w*|recommend\w*|please)\b", re.IGNORECASE)
_LEAD = re.compile(r"\b(v[1-6]|avl|avf|avr|iii|ii|i)\b")
_LEAD_SPAN = re.compile(r"\bv([1-6])\s*-\s*v?([1-6])\b")
_LEAD_NAMES = {"i": "I", "ii": "II", "iii": "III", "avl": "aVL", "avf": "aVF", "avr": "aVR"}


# A report that compares the ECG with an earlier tracing of its patient ("compared with tracing
# of 9:9:91, rhythm has changed", "st segment depression persists", "unchanged compare with EKG
# 910220") speaks of a history the query does not share: 32 of the team's 1,998 PTB-XL reports.
_COMPARES = re.compile(
    r"\bcompar\w* (?:with|to) (?:the |an? )?(?:\w+ )?(?:tracings?|ecgs?|ekgs?)\b|"
    r"\bcompare with\b|\b(?:unchanged|persists?|previously)\b|\bno (?:significant )?change\b|"
    r"\bsince (?:the )?(?:last|previous|\d)", re.IGNORECASE)


def clean_report(text: str) -> str | None:
    """The report as regen may reuse it (a source of sentences), or None when it cannot be:
    broken encoding, text that reads as an instruction or states what regen never decides
    (`regen.untrusted`; 0.45% of the team's 1,998 PTB-XL reports, e.g. "complete heart block",
    "consider wpw"). A report that compares the ECG with an earlier tracing (`_COMPARES`) is
    kept up to the sentence that does; None when nothing precedes it."""
    text = readable_report(text) or ""
    if not text or directive(text) or never_decided(text):
        return None
    return _before_comparison(text) or None


def _before_comparison(text: str) -> str:
    """`text` up to the sentence that first compares it with an earlier tracing (what follows
    reads against that tracing: "it is very similar", "t waves are now inverted")."""
    m = _COMPARES.search(text)
    if m is None:
        return text
    start = max(text.rfind(". ", 0, m.start()) + 1, 0)
    return text[:start].strip(" ,;")


UNREADABLE = "(the source report's text is unreadable: broken character encoding)"


def readable_report(text: str) -> str | None:
    """A neighbour's report as users are shown it: the encoding repaired where it can be, an
    "Edit: ..." coder's fragment removed, whitespace collapsed; None when the text stays broken
    (mojibake). Unlike `clean_report` it keeps what regen never states itself: a neighbour's
    report is evidence, shown as written."""
    if "Ã" in text:      # UTF-8 read as Latin-1 in some translated rows: try to undo it
        try:
            text = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return None
    text = _EDIT.sub("", text)
    text = " ".join(text.split()).strip(" ,;")
    if not text or _BROKEN.search(text):
        return None
    return text


_LIMB = {"I", "II", "III", "aVR", "aVL", "aVF"}
_CHEST = {f"V{n}" for n in range(1, 7)}
# Lead groups a report names in words: a statement about them needs those leads.
_GROUPS = ((re.compile(r"\blimb leads?\b|\bperipher\w* leads?\b"), _LIMB),
           (re.compile(r"\b(chest|precordial) leads?\b"), _CHEST),
           (re.compile(r"\binferior leads?\b"), {"II", "III", "aVF"}),
           (re.compile(r"\b(lateral|anterolateral) leads?\b"), {"I", "aVL", "V5", "V6"}),
           (re.compile(r"\b(anterior|anteroseptal|septal) leads?\b"), {"V1", "V2", "V3", "V4"}),
           (re.compile(r"\bwidespread\b|\bthroughout\b|\ball leads\b|\bdiffuse\b"),
            _LIMB | _CHEST),
           # the frontal axis ("left type", "left axis deviation", "steep type") is read from
           # the limb leads
           (re.compile(r"\b(type|axis|axle|lagetyp)\b"), {"I", "aVF"}))


# Axis deviations a report's text states (LAD / RAD are findings the labeller does not read).
# PTB-XL's "left type" (Linkstyp) is a normal axis and is not one; "over-rotated left type"
# (ueberdrehter Linkstyp) is. Read conservatively: a text that may claim a deviation counts.
_AXIS_SAID = {
    "LAD": re.compile(r"\b(left axis deviation|leftward axis|(abnormal |extreme |marked )?left "
                      r"(electrical )?axis|(hyperexcited|overturned|over-?rotated|ueberdrehter) "
                      r"(left ?type|linkstyp))\b"),
    "RAD": re.compile(r"\b(right axis deviation|rightward axis|(abnormal |extreme )?right "
                      r"(electrical )?axis|right ?type|rechtstyp)\b"),
}


@lru_cache(maxsize=1 << 16)
def axis_said(text: str) -> frozenset[str]:
    """The axis deviations ("LAD", "RAD") a report's text states (each corpus clause is read
    once: `Composer.compose` asks this of every candidate)."""
    low = text.lower()
    return frozenset(c for c, pattern in _AXIS_SAID.items() if pattern.search(low))


def leads_named(text: str) -> set[str]:
    """Standard lead names a report's text mentions, by name ("v2-6" -> V2..V6) or by group
    ("limb leads", "inferior leads", "widespread" -> all twelve)."""
    low = text.lower()
    out = {f"V{n}" for a, b in _LEAD_SPAN.findall(low) for n in range(int(a), int(b) + 1)}
    for m in _LEAD.findall(low):
        out.add(_LEAD_NAMES.get(m, m.upper()))
    for pattern, leads in _GROUPS:
        if pattern.search(low):
            out |= leads
    return out


@dataclass(frozen=True)
class Sentence:
    """A sentence of a generated report and the corpus report (key) it was taken from."""

    text: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "key": self.key}


@dataclass(frozen=True)
class Composed:
    """Text and its provenance. `how`: "neighbour", "corpus" or "sentences"; `stated`: the
    labels the text states; `sentence_labels`: those each sentence states."""

    text: str
    sentences: tuple[Sentence, ...]
    how: str
    stated: frozenset[str]
    sentence_labels: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True)
class _Unit:
    text: str
    key: str
    labels: frozenset[str]
    leads: frozenset[str]
    count: int
    codes: frozenset[str] = frozenset()      # every code it states, beyond LABELS too

    @cached_property
    def leaning(self) -> bool:
        """Leans on the clause before it or gives advice (`_DEPENDENT`): read once per clause,
        not on every report that considers it."""
        return bool(_DEPENDENT.match(self.text))


class Composer:
    """Built once per index build from the corpus reports (keys, texts)."""

    def __init__(self, reports: dict[frozenset[str], list[_Unit]],
                 clauses: dict[frozenset[str], list[_Unit]]):
        self.reports = reports
        self.clauses = clauses
        # report -> (clean text, labels, every code it states)
        self._read: dict[str, tuple[str | None, frozenset[str], frozenset[str]]] = {}

    def _clean_labels(self, report: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
        got = self._read.get(report)
        if got is None:
            text = clean_report(report)
            got = (text, label_report(text) if text else frozenset(),
                   stated_codes(text) if text else frozenset())
            if len(self._read) < 200_000:
                self._read[report] = got
        return got

    @classmethod
    def build(cls, keys: Sequence[str], texts: Sequence[str | None],
              language: str | None = None) -> Composer:
        """`language` "en": reports left in German by the translation ("sinusrhythmus lagetyp
        normal", 13 of the 1,498 English reports of folds 1-8) are not reused, unless most of
        the texts are German (a corpus with no English to compose from)."""
        whole: dict[frozenset[str], Counter[str]] = {}
        parts: dict[frozenset[str], Counter[str]] = {}
        leaning: dict[frozenset[str], Counter[str]] = {}      # clauses that _DEPENDENT matches
        first: dict[str, str] = {}
        german = [bool(raw and _GERMAN.search(raw)) for raw in texts] if language == "en" \
            else [False] * len(texts)
        if sum(german) * 2 > len(texts):
            german = [False] * len(texts)
        for key, raw, de in zip(keys, texts, german):
            text = None if de else clean_report(raw or "")
            if text is None:
                continue
            whole.setdefault(label_report(text), Counter())[text] += 1
            first.setdefault(text, key)
            for clause in _CLAUSE.split(text):
                clause = clause.strip(" .;,")
                labs = explicit_labels(clause)
                if clause and labs and not _UNFINISHED.search(clause):
                    table = leaning if _DEPENDENT.match(clause) else parts
                    table.setdefault(labs, Counter())[clause] += 1
                    first.setdefault(clause, key)

        def units(table: dict[frozenset[str], Counter[str]], top: int
                  ) -> dict[frozenset[str], list[_Unit]]:
            return {labs: [_Unit(t, first[t], labs, frozenset(leads_named(t)), n,
                                 stated_codes(t))
                           for t, n in c.most_common(top)] for labs, c in table.items()}

        clauses = units(parts, 5)
        for labs, us in units(leaning, 2).items():
            clauses.setdefault(labs, []).extend(us)
        return cls(units(whole, 5), clauses)

    def to_json(self) -> dict:
        def dump(table: dict[frozenset[str], list[_Unit]]) -> list:
            return [[u.text, u.key, sorted(u.labels), sorted(u.leads), u.count, sorted(u.codes)]
                    for us in table.values() for u in us]

        # 4: the labeller reads LPR as 1AVB and clauses are filtered; 5: reports are cut before
        # a comparison with an earlier tracing (a build's findings files from before are fitted
        # again when opened)
        return {"version": 5, "reports": dump(self.reports), "clauses": dump(self.clauses)}

    @classmethod
    def from_json(cls, d: dict) -> Composer:
        if d.get("version") != 5:
            raise ValueError(f"composer version {d.get('version')}; expected 5")

        def load(rows: list) -> dict[frozenset[str], list[_Unit]]:
            out: dict[frozenset[str], list[_Unit]] = {}
            for text, key, labels, leads, count, codes in rows:
                u = _Unit(text, key, frozenset(labels), frozenset(leads), int(count),
                          frozenset(codes))
                out.setdefault(u.labels, []).append(u)
            return out

        return cls(load(d["reports"]), load(d["clauses"]))

    def compose(self, decided: Iterable[str],
                neighbours: Sequence[tuple[str, str, float]] = (),
                leads: Iterable[str] | None = None,
                margins: dict[str, float] | None = None,
                forbid: Iterable[str] = (), unsaid: Iterable[str] = ()) -> Composed | None:
        """decided: the labels to state; neighbours: (key, report, cosine) closest first (the
        ones shown with the report); leads: the
        query's leads (None: all 12); margins: each label's logit margin over its threshold.
        When no corpus report states exactly `decided`, a set that corpus reports do state is
        used instead if it loses less than SWITCH_LOGIT of summed margin (whole reports read
        better than stitched clauses). `forbid`: codes no sentence may state (those the
        measurements found absent, e.g. LNGQT with a normal QTc). A code of _NEEDS_SUPPORT is
        stated only where one of `neighbours`' reports states it. `unsaid`: words no sentence
        may contain, whatever the labeller reads in it ("sinus" where the P wave is not sinus:
        "llt sinus with alternating av rhythm" states no label). None when no sentence can
        state anything."""
        want = frozenset(decided) & frozenset(LABELS)
        have = None if leads is None else frozenset(leads)
        banned = frozenset(forbid)
        # an axis deviation is stated only where it was decided (the labels leave it out)
        axes = frozenset(decided) & frozenset(_AXIS_SAID)

        # a code regen does not decide (atrial enlargement, RVH, a second-degree AV block) is
        # stated only where one of the similar ECGs' reports states it
        support = frozenset().union(*(self._clean_labels(r)[2] for _, r, _ in neighbours))

        words = re.compile(r"\b(?:" + "|".join(map(re.escape, unsaid)) + r")\b",
                           re.IGNORECASE) if unsaid else None

        def usable(text: str, codes: frozenset[str] | None = None) -> bool:
            codes = codes if codes is not None else stated_codes(text)
            if codes & banned or (codes & _NEEDS_SUPPORT) - support:
                return False
            if words is not None and words.search(text):
                return False
            if axis_said(text) - axes:
                return False
            return have is None or leads_named(text) <= have

        if margins is not None and want not in self.reports:
            def gain(s: frozenset[str]) -> float:
                return sum(margins.get(c, -1e9) for c in s)

            # only sets inside the decided one: the text never states an undecided finding
            seen = [s for s, us in self.reports.items()
                    if s <= want and any(usable(u.text, u.codes) for u in us)]
            if seen:
                best = max(seen, key=gain)
                if gain(want) - gain(best) < SWITCH_LOGIT:
                    want = best

        # Every whole report stating exactly `want`: the neighbours' and the corpus's commonest;
        # the one that agrees most with the neighbours' reports (similarity-weighted ROUGE-L,
        # as the consensus refiner) is used, so the wording is the typical one for this ECG.
        cands: list[tuple[str, str, str]] = []
        for key, report, _ in neighbours:
            text, labels, codes = self._clean_labels(report)
            if text and labels == want and usable(text, codes):
                cands.append((text, key, "neighbour"))
        cands += [(u.text, u.key, "corpus") for u in self.reports.get(want, [])
                  if usable(u.text, u.codes)]
        if cands:
            text, key, how = _medoid(cands, neighbours)
            return Composed(text, (Sentence(text, key),), how, want, (want,))
        return self._from_clauses(want, usable)

    def _from_clauses(self, want: frozenset[str], usable: Callable[..., bool]
                      ) -> Composed | None:
        chosen: list[_Unit] = []
        covered: set[str] = set()
        candidates = [u for labs, us in self.clauses.items() if labs <= want
                      for u in us if usable(u.text, u.codes)]
        # A superclass that a decided statement implies (CD beside 1AVB) is said by that
        # statement's clause: it is covered for its own sake only if that clause is missing, so
        # a generic "non-specific intraventricular delay" is not added beside an AV block.
        implied = {SCP_SUPERCLASS[c] for c in want if c in SCP_SUPERCLASS} - {"NORM"}
        # A clause that leans on another or gives advice is the last resort: used only for a
        # finding no other clause states (digitalis effect is said only as "... consistent with
        # myocardial ischaemia and digitalis effect" in folds 1-8).
        alone = [u for u in candidates if not u.leaning]
        for need, pool in ((want - implied, alone), (want, alone), (want, candidates)):
            while True:
                # New labels covered, weighed by how common the wording is and against length:
                # short, frequent clauses read like the corpus; run-on ones do not. A clause
                # that repeats what is already said ("sinus rhythm" twice) counts against.
                gain = [((len(u.labels - covered) - 0.5 * len(u.labels & covered))
                         * np.log1p(u.count) / (1 + len(u.text.split()) / 8), u)
                        for u in pool if (u.labels - covered) & need]
                if not gain:
                    break
                _, best = max(gain, key=lambda g: g[0])
                chosen.append(best)
                covered |= best.labels
        # The rhythm is said once: a rhythm clause whose labels another pick also states ("sinus
        # rhythm" beside "sinus rhythm position type normal qrs(t) abnormal") is dropped. Other
        # findings repeat by design: "q waves in ii, iii, avf" and "q waves in i, avl" are one
        # label in two places.
        for u in sorted(chosen, key=lambda u: len(u.labels)):
            rest = [v for v in chosen if v is not u]
            if rest and u.labels <= _SAID_ONCE and not u.leads \
                    and u.labels <= frozenset().union(*(v.labels for v in rest)):
                chosen = rest
        if not chosen:
            return None
        chosen.sort(key=lambda u: min(SECTION.get(c, 8) for c in u.labels))
        # "; " ends a clause for the labeller (a negation never reaches into the next one) and
        # keeps "a-v block i" readable as first degree.
        text = "; ".join(u.text for u in chosen)
        # what the clauses say themselves (a bare "sinus rhythm" beside a premature beat does
        # not claim a normal ECG, though the labeller's PTB-XL convention would read one)
        return Composed(text, tuple(Sentence(u.text, u.key) for u in chosen), "sentences",
                        frozenset().union(*(u.labels for u in chosen)),
                        tuple(u.labels for u in chosen))


def _medoid(cands: Sequence[tuple[str, str, str]], neighbours: Sequence[tuple[str, str, float]]
            ) -> tuple[str, str, str]:
    """The candidate (text, key, how) with the largest similarity-weighted ROUGE-L F1 against
    the neighbours' reports; the first on ties (neighbours come closest first)."""
    if len(cands) == 1 or not neighbours:
        return cands[0]
    from regen.refine import neighbour_weights

    w = neighbour_weights(np.array([s for _, _, s in neighbours], dtype=np.float64))
    seen: dict[str, float] = {}
    for text, _, _ in cands:
        if text not in seen:
            seen[text] = float(sum(wi * _text_agreement(text, r)
                                   for wi, (_, r, _) in zip(w, neighbours)))
    return max(cands, key=lambda c: seen[c[0]])


@lru_cache(maxsize=1 << 16)
def _text_agreement(a: str, b: str) -> float:
    """ROUGE-L F1 between two report texts, each pair computed once: corpus reports recur
    across queries as candidates and as neighbours."""
    from regen.metrics import tokenize
    from regen.refine import _agreement

    return _agreement(tokenize(a), tokenize(b))
