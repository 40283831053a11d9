"""ECG-QA data: the answer vocabulary, the QA items, and ground truth from PTB-XL metadata.

ECG-QA (Oh et al. 2023, CC BY 4.0) built its answers from PTB-XL's metadata with a generator
that names SCP codes in its own words ("IMI" -> "myocardial infarction in inferior leads", not
scp_statements.csv's "inferior myocardial infarction"). `SCP_NAMES` is that naming, so votes from
neighbours and the truth from a record share one vocabulary. Where ECG-QA's generator departs from
PTB-XL's columns, this module says how (see `record_answers`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from regen.corpus import CorpusRecord
from regen.errors import DataError
from regen.types import Neighbour

# SCP code -> ECG-QA answer string (the generator's `category_to_name`, Jwoo5/fairseq-signals).
SCP_NAMES: dict[str, str] = {
    "NORM": "normal ecg", "LAFB": "left anterior fascicular block",
    "LPFB": "left posterior fascicular block", "1AVB": "first degree av block",
    "2AVB": "second degree av block", "3AVB": "third degree av block",
    "IVCD": "non-specific intraventricular conduction disturbance (block)",
    "WPW": "wolff-parkinson-white syndrome", "IRBBB": "incomplete right bundle branch block",
    "ILBBB": "incomplete left bundle branch block", "CRBBB": "complete right bundle branch block",
    "CLBBB": "complete left bundle branch block", "LAO/LAE": "left atrial overload/enlargement",
    "RAO/RAE": "right atrial overload/enlargement", "LVH": "left ventricular hypertrophy",
    "RVH": "right ventricular hypertrophy", "SEHYP": "septal hypertrophy",
    "IMI": "myocardial infarction in inferior leads",
    "ILMI": "myocardial infarction in inferolateral leads",
    "IPMI": "myocardial infarction in inferoposterior leads",
    "IPLMI": "myocardial infarction in inferoposterolateral leads",
    "INJIN": "subendocardial injury in inferior leads",
    "INJIL": "subendocardial injury in inferolateral leads",
    "AMI": "myocardial infarction in anterior leads",
    "ASMI": "myocardial infarction in anteroseptal leads",
    "ALMI": "myocardial infarction in anterolateral leads",
    "INJAS": "subendocardial injury in anteroseptal leads",
    "INJAL": "subendocardial injury in anterolateral leads",
    "INJLA": "subendocardial injury in lateral leads",
    "LMI": "myocardial infarction in lateral leads",
    "PMI": "myocardial infarction in posterior leads",
    "NDT": "non-diagnostic t abnormalities", "DIG": "digitalis effect", "LNGQT": "long qt-interval",
    "ANEUR": "st-t changes compatible with ventricular aneurysm",
    "EL": "electrolytic disturbance or drug (former EDIS)", "NST_": "non-specific st changes",
    "ISC_": "non-specific ischemic", "ISCAL": "ischemic in anterolateral leads",
    "ISCAS": "ischemic in anteroseptal leads", "ISCLA": "ischemic in lateral leads",
    "ISCAN": "ischemic in anterior leads", "ISCIN": "ischemic in inferior leads",
    "ISCIL": "ischemic in inferolateral leads", "ABQRS": "abnormal qrs",
    "PVC": "ventricular premature complex", "STD_": "non-specific st depression",
    "VCLVH": "voltage criteria (qrs) for left ventricular hypertrophy",
    "QWAVE": "q waves present", "LOWT": "low amplitude t-wave",
    "NT_": "non-specific t-wave changes", "PAC": "atrial premature complex",
    "LPR": "prolonged pr interval", "INVT": "inverted t-waves",
    "LVOLT": "low qrs voltages in the frontal and horizontal leads", "HVOLT": "high qrs voltage",
    "TAB_": "t-wave abnormality", "STE_": "non-specific st elevation",
    "PRC(S)": "premature complex(es)", "SR": "sinus rhythm", "AFIB": "atrial fibrillation",
    "AFLT": "atrial flutter", "STACH": "sinus tachycardia", "SVTAC": "supraventricular tachycardia",
    "PSVT": "paroxysmal supraventricular tachycardia", "SBRAD": "sinus bradycardia",
    "SARRH": "sinus arrhythmia", "SVARR": "supraventricular arrhythmia",
    "PACE": "normal functioning artificial pacemaker",
    "BIGU": "bigeminal pattern (unknown origin, supraventricular, or ventricular)",
    "TRIGU": "trigeminal pattern (unknown origin, supraventricular, or ventricular)",
}
# The statement kinds of scp_statements.csv (tests check these copies against the file).
DIAGNOSTIC_CODES: frozenset[str] = frozenset(
    "NDT NST_ DIG LNGQT NORM IMI ASMI LVH LAFB ISC_ IRBBB 1AVB IVCD ISCAL CRBBB CLBBB ILMI "
    "LAO/LAE AMI ALMI ISCIN INJAS LMI ISCIL LPFB ISCAS INJAL ISCLA RVH ANEUR RAO/RAE EL WPW "
    "ILBBB IPLMI ISCAN IPMI SEHYP INJIN INJLA PMI 3AVB INJIL 2AVB".split())
FORM_CODES: frozenset[str] = frozenset(
    "NDT NST_ DIG LNGQT ABQRS PVC STD_ VCLVH QWAVE LOWT NT_ PAC LPR INVT LVOLT HVOLT TAB_ STE_ "
    "PRC(S)".split())
RHYTHM_CODES: frozenset[str] = frozenset(
    "SR AFIB STACH SARRH SBRAD PACE SVARR BIGU AFLT SVTAC PSVT TRIGU".split())

SUPERCLASS_NAMES = {"CD": "conduction disturbance", "HYP": "hypertrophy",
                    "MI": "myocardial infarction", "STTC": "st/t change"}
NOISE_NAMES = ("baseline drift", "burst noise", "electrodes problems", "static noise")
AXIS_NAMES = ("extreme axis deviation", "left axis deviation", "normal heart axis",
              "right axis deviation")
# ECG-QA computed the axis from the signal (net QRS in leads I and aVF; normal -30..90 degrees,
# left -90..-30, right 90..180, extreme below -90). PTB-XL's `heart_axis` column is the German
# "Lagetyp", mapped here by its angle range: Linkstyp (LAD, -30..+30) and Steiltyp (AXR) are
# normal by ECG-QA's thresholds; "ueberdrehter Linkstyp" (ALAD) is left. An approximation.
AXIS_FROM_PTBXL = {"MID": "normal heart axis", "LAD": "normal heart axis",
                   "AXR": "normal heart axis", "ALAD": "left axis deviation",
                   "AXL": "left axis deviation", "RAD": "right axis deviation",
                   "ARAD": "right axis deviation", "SAG": "extreme axis deviation"}
STAGE_NAMES = ("early stage of myocardial infarction", "middle stage of myocardial infarction",
               "old stage of myocardial infarction", "unknown stage of myocardial infarction",
               "none of myocardial infarction")
_STAGE_FROM_PTBXL = {"Stadium I": 0, "Stadium I-II": 0, "Stadium II": 1, "Stadium II-III": 1,
                     "Stadium III": 2}
EXTRA_SYSTOLE_NAMES = {"ES": "extrasystoles", "VES": "ventricular extrasystoles",
                       "SVES": "supraventricular extrasystoles"}
# Pseudo-attributes of ECG-QA's "any kind of ..." questions: present when the group is non-empty.
ANY_KIND = {"any kind of noises": "noise", "any kind of extra systoles": "extra_systole"}

# The answer groups `record_answers` returns, keyed like ECG-QA's attribute_type where one fits.
GROUPS = ("scp_code", "scp_code_uncertain", "superclass", "noise", "heart_axis",
          "stage_of_infarction", "extra_systole")
# Groups with exactly one answer per ECG (a query picks one); a neighbour without a known axis
# says nothing about the axis, so it does not vote.
SINGLE_ANSWER_GROUPS = frozenset({"heart_axis", "stage_of_infarction"})

QUESTION_TYPES = ("single-verify", "single-choose", "single-query",
                  "comparison_consecutive-verify", "comparison_consecutive-query",
                  "comparison_irrelevant-verify", "comparison_irrelevant-query")


def question_text(text: str) -> str:
    """A question as the parsers read it: lower case, single spaces, no final "?", "." or "!"."""
    return " ".join(text.strip().lower().rstrip("?.! ").split())


@dataclass(frozen=True)
class QAItem:
    """One ECG-QA style sample. `answer` is the gold answer set (ECG-QA's strings);
    `source` is "ecgqa" (from the dataset's JSON) or "derived" (built here from PTB-XL labels)."""

    sample_id: int
    template_id: int
    question_type: str
    attribute_type: str
    question: str
    answer: tuple[str, ...]
    ecg_ids: tuple[int, ...]
    attribute: tuple[str, ...] | None
    source: str = "ecgqa"
    question_id: int = -1
    split: str | None = None


_KEYS = ("template_id", "question_type", "attribute_type", "question", "answer", "ecg_id")


def _item(raw: Mapping, where: str, split: str, source: str) -> QAItem:
    missing = [k for k in _KEYS if k not in raw]
    if missing:
        raise DataError(f"{where}: sample lacks {missing}; expected ECG-QA keys {list(_KEYS)}")
    attr = raw.get("attribute")
    return QAItem(
        sample_id=int(raw.get("sample_id", -1)), template_id=int(raw["template_id"]),
        question_type=str(raw["question_type"]), attribute_type=str(raw["attribute_type"]),
        question=str(raw["question"]), answer=tuple(str(a) for a in raw["answer"]),
        ecg_ids=tuple(int(e) for e in raw["ecg_id"]),
        attribute=None if attr is None else tuple(str(a) for a in attr), source=source,
        question_id=int(raw.get("question_id", -1)), split=split)


def load_ecgqa(ecgqa_dir: str | Path, variant: str = "template",
               splits: Sequence[str] = ("train", "valid", "test")) -> list[QAItem]:
    """ECG-QA samples of the PTB-XL version, in file order.

    ecgqa_dir: the dataset folder (holding `ptbxl/`) or its `ptbxl/` folder itself; each split is
    VARIANT/SPLIT/*.json (v1.0.2 chunks) or VARIANT/SPLIT.json (v1.0.0). variant: "template" or
    "paraphrased". A split without any JSON file is an error: a partial copy must say which.
    """
    root = Path(ecgqa_dir)
    if (root / "ptbxl").is_dir():
        root = root / "ptbxl"
    if variant not in ("template", "paraphrased"):
        raise DataError(f"ECG-QA variant {variant!r} is unknown; expected 'template' or "
                        f"'paraphrased'")
    base = root / variant
    if not base.is_dir():
        raise DataError(f"{base}: no such folder; expected the ECG-QA layout "
                        f"(ptbxl/{{template,paraphrased}}/{{train,valid,test}}/*.json)")
    items: list[QAItem] = []
    for split in splits:
        files = sorted((base / split).glob("*.json")) or sorted(base.glob(f"{split}.json"))
        if not files:
            raise DataError(f"{base / split}: no JSON files for split {split!r}; expected "
                            f"{base / split}/*.json")
        for f in files:
            try:
                raw = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{f}: not readable as ECG-QA JSON ({exc})") from exc
            if not isinstance(raw, list):
                raise DataError(f"{f}: holds a {type(raw).__name__}; expected a list of samples")
            items.extend(_item(s, f"{f}[{i}]", split, "ecgqa") for i, s in enumerate(raw))
    return items


def record_ecg_id(record: CorpusRecord) -> int:
    """PTB-XL ecg_id of a corpus record (key 'ptbxl:123' -> 123)."""
    tail = record.key.rsplit(":", 1)[-1]
    if not tail.isdigit():
        raise DataError(f"record {record.key!r} has no numeric ecg_id; ECG-QA questions need "
                        f"PTB-XL records (keys like 'ptbxl:123')")
    return int(tail)


def _attribute_answers(attributes: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"noise": set(), "heart_axis": set(), "extra_systole": set()}
    stages: list[int] = []
    unknown_stage = False
    for kind, value in attributes:
        if kind == "noise" and value in NOISE_NAMES:
            out["noise"].add(value)
        elif kind == "axis" and value in AXIS_FROM_PTBXL:
            out["heart_axis"].add(AXIS_FROM_PTBXL[value])
        elif kind == "extra_systole" and value in EXTRA_SYSTOLE_NAMES:
            out["extra_systole"].add(EXTRA_SYSTOLE_NAMES[value])
        elif kind == "infarction_stage":
            if value in _STAGE_FROM_PTBXL:
                stages.append(_STAGE_FROM_PTBXL[value])
            else:
                unknown_stage = True
    # ECG-QA prefers infarction_stadium2 over stadium1; in PTB-XL stadium2 is never earlier than
    # stadium1, so the most advanced stage is the same answer (and needs no column order, which
    # the database does not keep).
    if stages:
        out["stage_of_infarction"] = {STAGE_NAMES[max(stages)]}
    elif unknown_stage:
        out["stage_of_infarction"] = {"unknown stage of myocardial infarction"}
    else:
        out["stage_of_infarction"] = {"none of myocardial infarction"}
    return out


def record_answers(record: CorpusRecord) -> dict[str, set[str]]:
    """Ground-truth answer strings of one PTB-XL record per answer group (see `GROUPS`).

    scp_code: every SCP statement present, by ECG-QA's name ("normal ecg" for NORM).
    scp_code_uncertain: diagnostic statements with a likelihood strictly between 0 and 100;
    ECG-QA answers "not sure" for them in its verify template 1 and leaves them out of its
    "excluding uncertain symptoms" questions (likelihood 0 and 100 both count as certain there).
    superclass: PTB-XL diagnostic superclasses by ECG-QA's names (NORM has none). ECG-QA's own
    superclass step matched codes with a letters-only pattern, so codes such as NST_ or 1AVB never
    set a superclass there; this follows PTB-XL instead.
    heart_axis: approximate (see AXIS_FROM_PTBXL). stage_of_infarction: one of STAGE_NAMES.
    """
    scp = {SCP_NAMES[c] for c in record.scp if c in SCP_NAMES}
    uncertain = {SCP_NAMES[c] for c, w in record.scp.items()
                 if c in DIAGNOSTIC_CODES and c in SCP_NAMES and 0.0 < w < 100.0}
    out = {"scp_code": scp, "scp_code_uncertain": uncertain,
           "superclass": {SUPERCLASS_NAMES[s] for s in record.superclasses
                          if s in SUPERCLASS_NAMES}}
    out.update(_attribute_answers(record.attributes))
    return out


def neighbour_answers(n: Neighbour) -> dict[str, set[str]]:
    """The same answer groups for a retrieved neighbour. Neighbours carry SCP codes without their
    likelihoods, so `scp_code_uncertain` is always empty and `scp_code` includes uncertain ones."""
    out = {"scp_code": {SCP_NAMES[c] for c in n.labels if c in SCP_NAMES},
           "scp_code_uncertain": set(),
           "superclass": {SUPERCLASS_NAMES[s] for s in n.superclasses if s in SUPERCLASS_NAMES}}
    out.update(_attribute_answers(n.attributes))
    return out


@dataclass(frozen=True)
class Template:
    """An ECG-QA style question template. `text` has one `{}` per attribute (none for a query);
    `options` are the candidate answers of `group`; `wording` is "ecgqa" when the text is
    ECG-QA's own (seen in the dataset's JSON or README), "regen" when written here in its style."""

    template_id: int
    question_type: str
    attribute_type: str
    text: str
    group: str
    options: tuple[str, ...]
    wording: str


def _names(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(SCP_NAMES[c] for c in codes if c != "NORM"))


DIAGNOSTIC_NAMES = _names(DIAGNOSTIC_CODES)
FORM_NAMES = _names(FORM_CODES)
RHYTHM_NAMES = _names(RHYTHM_CODES)
ALL_SCP_NAMES = _names(SCP_NAMES)

# Official ids where the wording is ECG-QA's (1: its README example's template form, quoted
# verbatim in several public ECG-QA loaders; 27: the JSON; 29, 30, 32: its README). The other
# templates exist in ECG-QA but their text is not in the partial copy, so they are written here
# in the same style and numbered from 101 to avoid claiming an official id.
TEMPLATES: dict[int, Template] = {t.template_id: t for t in (
    Template(1, "single-verify", "scp_code", "Does this ECG show symptoms of {}?", "scp_code",
             ALL_SCP_NAMES, "ecgqa"),
    Template(101, "single-choose", "scp_code",
             "Which diagnostic symptom does this ECG show, including uncertain symptoms, "
             "{} or {}?", "scp_code", DIAGNOSTIC_NAMES, "regen"),
    Template(102, "single-choose", "scp_code",
             "Which form-related symptom does this ECG show, {} or {}?", "scp_code", FORM_NAMES,
             "regen"),
    Template(103, "single-choose", "scp_code",
             "Which rhythm-related symptom does this ECG show, {} or {}?", "scp_code",
             RHYTHM_NAMES, "regen"),
    Template(104, "single-query", "scp_code",
             "What diagnostic symptoms does this ECG show, including uncertain symptoms?",
             "scp_code", DIAGNOSTIC_NAMES, "regen"),
    Template(105, "single-query", "scp_code", "What form-related symptoms does this ECG show?",
             "scp_code", FORM_NAMES, "regen"),
    Template(106, "single-query", "scp_code", "What rhythm-related symptoms does this ECG show?",
             "scp_code", RHYTHM_NAMES, "regen"),
    Template(27, "single-verify", "noise", "Does this ECG show {}?", "noise", NOISE_NAMES,
             "ecgqa"),
    Template(29, "single-verify", "noise", "Does this ECG show any kind of noises?", "noise",
             ("any kind of noises",), "ecgqa"),
    Template(30, "single-choose", "noise", "Which noise does this ECG show, {} or {}?", "noise",
             NOISE_NAMES, "ecgqa"),
    Template(32, "single-query", "noise", "What kind of noises does this ECG show?", "noise",
             NOISE_NAMES, "ecgqa"),
    Template(110, "single-verify", "heart_axis", "Does this ECG show {}?", "heart_axis",
             AXIS_NAMES, "regen"),
    Template(111, "single-choose", "heart_axis", "Which heart axis does this ECG show, {} or {}?",
             "heart_axis", AXIS_NAMES, "regen"),
    Template(112, "single-query", "heart_axis", "What heart axis direction does this ECG show?",
             "heart_axis", AXIS_NAMES, "regen"),
)}


def verify_gold(group: str, attribute: str, truth: Mapping[str, set[str]]) -> str:
    """Gold answer of a verify question on `group`. SCP statements follow ECG-QA's template 1:
    "not sure" for a diagnostic statement coded with a likelihood between 0 and 100."""
    if attribute in ANY_KIND:
        return "yes" if truth[ANY_KIND[attribute]] else "no"
    if group == "scp_code" and attribute in truth["scp_code_uncertain"]:
        return "not sure"
    return "yes" if attribute in truth[group] else "no"


# (attributes in the question, {gold answer: indices of the records with that answer})
_Pool = list[tuple[tuple[str, ...], dict[tuple[str, ...], list[int]]]]


def _pool(t: Template, truths: Sequence[Mapping[str, set[str]]]) -> _Pool:
    """Every question a template can ask of these records, with the records per gold answer.
    A question is kept when at least two answers occur, so it is not trivially one-sided."""
    known = [i for i, a in enumerate(truths)
             if t.group not in SINGLE_ANSWER_GROUPS or a[t.group]]
    pool: _Pool = []
    if t.question_type == "single-verify":
        for attr in t.options:
            buckets: dict[tuple[str, ...], list[int]] = {}
            for i in known:
                buckets.setdefault((verify_gold(t.group, attr, truths[i]),), []).append(i)
            if len(buckets) >= 2:
                pool.append(((attr,), buckets))
    elif t.question_type == "single-choose":
        has = {o: {i for i in known if o in truths[i][t.group]} for o in t.options}
        for a, b in combinations(t.options, 2):
            rest = [i for i in known if i not in has[a] and i not in has[b]]
            buckets = {(a,): sorted(has[a] - has[b]), (b,): sorted(has[b] - has[a]),
                       (a, b): sorted(has[a] & has[b]), ("none",): rest}
            buckets = {k: v for k, v in buckets.items() if v}
            if len(buckets) >= 2 and (has[a] or has[b]):
                pool.append(((a, b), buckets))
    else:
        buckets = {}
        for i in known:
            found = tuple(sorted(truths[i][t.group] & set(t.options))) or ("none",)
            buckets.setdefault(found, []).append(i)
        if len(buckets) >= 2:
            pool.append(((), buckets))
    return pool


def derive_questions(records: Sequence[CorpusRecord], seed: int = 0, per_template: int = 50,
                     template_ids: Iterable[int] | None = None) -> list[QAItem]:
    """An ECG-QA style question set about `records`, answered from their PTB-XL labels.

    Templates: `TEMPLATES` (single-verify, -choose and -query over SCP statements, noise and
    heart axis; see each template's `wording` for whether its text is ECG-QA's own). Sampling
    follows ECG-QA's: a question, then one of its gold answers uniformly, then a record with that
    answer, so verify questions are about as often "yes" as "no". Choose questions put their two
    options in random order, as ECG-QA does. Up to `per_template` distinct (question, record)
    items per template; deterministic for a given `seed` and record list. source="derived".
    """
    truths = [record_answers(r) for r in records]
    ids = [record_ecg_id(r) for r in records]
    items: list[QAItem] = []
    qids: dict[str, int] = {}
    chosen = sorted(TEMPLATES if template_ids is None else set(template_ids))
    for tid in chosen:
        t = TEMPLATES[tid]
        rng = random.Random(f"{seed}:{tid}")
        pool = _pool(t, truths)
        seen: set[tuple[tuple[str, ...], int]] = set()
        for _ in range(per_template * 20 if pool else 0):
            if len(seen) == per_template:
                break
            attrs, buckets = rng.choice(pool)
            answer = rng.choice(sorted(buckets))
            i = rng.choice(buckets[answer])
            if (attrs, i) in seen:
                continue
            seen.add((attrs, i))
            if t.question_type == "single-choose" and rng.random() < 0.5:
                attrs = attrs[::-1]
                answer = answer[::-1]
            question = t.text.format(*attrs)
            items.append(QAItem(
                sample_id=len(items), template_id=tid, question_type=t.question_type,
                attribute_type=t.attribute_type, question=question, answer=answer,
                ecg_ids=(ids[i],), attribute=attrs or t.options, source="derived",
                question_id=qids.setdefault(question, len(qids)), split=records[i].split))
    return items
