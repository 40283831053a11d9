"""Corpus loaders: PTB-XL (official layout) and a plain folder of WFDB records with a report CSV.

A loader returns `CorpusRecord`s (metadata only; signals are read later, in batches).
"""

from __future__ import annotations

import ast
import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from regen.errors import DataError

SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")


@dataclass(frozen=True)
class CorpusRecord:
    """One corpus ECG's metadata. path: the WFDB record path without extension."""

    key: str
    source: str
    path: str
    patient_id: str | None
    split: str | None
    reports: dict[str, str]
    scp: dict[str, float] = field(default_factory=dict)
    superclasses: tuple[str, ...] = ()
    # Other annotations as (kind, value): ("noise", "baseline drift"), ("axis", "LAD"),
    # ("extra_systole", "VES"), ("pacemaker", "pacemaker"), ("infarction_stage", "Stadium III").
    attributes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Checked here, before any embedding: PostgreSQL refuses NUL in text, and did so only
        # when the build was stored, for the whole build, without naming the record.
        for language, text in self.reports.items():
            if "\x00" in text:
                raise DataError(f"{self.key}: its {language!r} report contains a NUL character "
                                f"at position {text.index(chr(0))}; remove it from the report "
                                f"table")

    def report(self, language: str = "en") -> str:
        """The report in `language`, falling back to the original text."""
        return self.reports.get(language) or self.reports.get("orig", "")


def _clean(text: str) -> str:
    """Reports keep their words; runs of whitespace become one space."""
    return " ".join(text.split())


_NOISE_COLUMNS = {"baseline_drift": "baseline drift", "static_noise": "static noise",
                  "burst_noise": "burst noise", "electrodes_problems": "electrodes problems"}


def ptbxl_attributes(row: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """PTB-XL's annotation columns as (kind, value) pairs; empty cells mean absent."""
    out: list[tuple[str, str]] = []
    for col, name in _NOISE_COLUMNS.items():
        if (row.get(col) or "").strip(" ,"):
            out.append(("noise", name))
    beats = (row.get("extra_beats") or "").upper()
    for code in ("SVES", "VES"):
        if re.search(rf"(?<![A-Z]){code}", beats):    # "VES" must not match inside "SVES"
            out.append(("extra_systole", code))
    if beats.strip() and not any(k == "extra_systole" for k, _ in out):
        out.append(("extra_systole", "ES"))
    if (row.get("pacemaker") or "").strip():
        out.append(("pacemaker", "pacemaker"))
    axis = (row.get("heart_axis") or "").strip()
    if axis:
        out.append(("axis", axis))
    for col in ("infarction_stadium1", "infarction_stadium2"):
        stage = (row.get(col) or "").strip()
        if stage:
            out.append(("infarction_stage", stage))
    return tuple(dict.fromkeys(out))


def parse_folds(spec: str | Iterable[int] | None) -> set[int] | None:
    """'1-8' | '1,3,5-7' | [9] | None (all) -> set of fold numbers."""
    if spec is None:
        return None
    if not isinstance(spec, str):
        return {int(x) for x in spec}
    folds: set[int] = set()
    try:
        for part in spec.replace(" ", "").split(","):
            if "-" in part:
                lo, hi = part.split("-")
                folds.update(range(int(lo), int(hi) + 1))
            elif part:
                folds.add(int(part))
        if not folds:
            raise ValueError("selects no fold")
    except ValueError as exc:
        raise DataError(f"folds {spec!r} select nothing or are not understood; expected e.g. "
                        f"'1-8' or '9' or '1,3,5-7'") from exc
    return folds


PTBXL_LAYOUT = ("the PTB-XL layout (ptbxl_database.csv, scp_statements.csv, records100/, "
                "records500/)")
MIMIC_LAYOUT = ("the MIMIC-IV-ECG layout (record_list.csv, machine_measurements.csv, "
                "files/pNNNN/pNNNNNNNN/sNNNNNNNN/)")


def _read_csv(path: Path, required: tuple[str, ...],
              layout: str = PTBXL_LAYOUT) -> list[dict[str, str]]:
    if not path.exists():
        raise DataError(f"{path}: no such file; expected {layout}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        try:
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {missing}; found "
                                f"{reader.fieldnames}")
            return list(reader)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: line {_first_non_utf8_line(path)}: not UTF-8 "
                            f"({exc.reason}); save the table as UTF-8") from exc
        except csv.Error as exc:  # e.g. a field over the csv module's limit of 131072 characters
            raise DataError(f"{path}: line {reader.line_num + 1}: {exc}; fix or shorten that "
                            f"row") from exc


def _first_non_utf8_line(path: Path) -> int:
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return 0


def scp_superclass_map(root: str | Path) -> dict[str, str]:
    """SCP code -> diagnostic superclass, for the diagnostic statements of scp_statements.csv."""
    rows = _read_csv(Path(root) / "scp_statements.csv", ("diagnostic", "diagnostic_class"))
    out = {}
    for row in rows:
        code = row.get("") or row.get("Unnamed: 0") or next(iter(row.values()))
        if row["diagnostic"].strip() in ("1", "1.0") and row["diagnostic_class"].strip():
            out[code] = row["diagnostic_class"].strip()
    return out


def load_ptbxl(root: str | Path, *, folds: str | Iterable[int] | None = None, rate: int = 100,
               require_signal: bool = True) -> list[CorpusRecord]:
    """Records of a PTB-XL folder, in ecg_id order.

    folds: strat_fold numbers to keep (None: all). rate: 100 (records100) or 500 (records500).
    require_signal: skip rows whose record files are absent (subsets ship only some folds).
    Works unchanged on the full PhysioNet release; `reports_en.csv` (ecg_id,report_en) is optional.
    """
    root = Path(root)
    if rate not in (100, 500):
        raise DataError(f"rate {rate} is not a PTB-XL rate; expected 100 or 500")
    col = "filename_lr" if rate == 100 else "filename_hr"
    rows = _read_csv(root / "ptbxl_database.csv",
                     ("ecg_id", "patient_id", "report", "scp_codes", "strat_fold", col))
    classes = scp_superclass_map(root)
    english: dict[str, str] = {}
    en_path = root / "reports_en.csv"
    if en_path.exists():
        english = {r["ecg_id"]: r["report_en"].strip()
                   for r in _read_csv(en_path, ("ecg_id", "report_en"))}
    keep = parse_folds(folds)
    out = []
    for row in rows:
        fold = int(float(row["strat_fold"]))
        if keep is not None and fold not in keep:
            continue
        path = root / row[col]
        if require_signal and not path.with_suffix(".hea").exists():
            continue
        ecg_id = str(int(float(row["ecg_id"])))
        try:
            scp = {str(k): float(v) for k, v in ast.literal_eval(row["scp_codes"]).items()}
        except (ValueError, SyntaxError) as exc:
            raise DataError(f"{root / 'ptbxl_database.csv'}: ecg_id {ecg_id} has scp_codes "
                            f"{row['scp_codes']!r}; expected a dict like {{'NORM': 100.0}}"
                            ) from exc
        reports = {"orig": _clean(row["report"])}
        if english.get(ecg_id):
            reports["en"] = _clean(english[ecg_id])
        supers = tuple(sorted({classes[c] for c in scp if c in classes},
                              key=SUPERCLASSES.index))
        patient = row["patient_id"].strip()
        out.append(CorpusRecord(
            key=f"ptbxl:{ecg_id}", source="ptbxl", path=str(path),
            patient_id=str(int(float(patient))) if patient else None, split=str(fold),
            reports=reports, scp=scp, superclasses=supers, attributes=ptbxl_attributes(row)))
    return out


def load_folder(root: str | Path, reports_csv: str | Path | None = None) -> list[CorpusRecord]:
    """A folder of WFDB records with a CSV of reports.

    The CSV (default ROOT/reports.csv) has columns `path` (record path relative to ROOT, without
    extension) and `report`; optional `patient_id`, `split`, `language` (default "en") and
    `labels` (codes separated by ';').
    """
    root = Path(root)
    csv_path = Path(reports_csv) if reports_csv else root / "reports.csv"
    rows = _read_csv(csv_path, ("path", "report"))
    out = []
    for i, row in enumerate(rows, start=2):
        rel = row["path"].strip()
        for ext in (".hea", ".dat"):
            rel = rel[: -len(ext)] if rel.endswith(ext) else rel
        path = root / rel
        if not path.with_suffix(".hea").exists():
            raise DataError(f"{csv_path}: line {i}: record {rel!r} has no header at "
                            f"{path.with_suffix('.hea')}; fix the path column")
        codes = [c.strip() for c in (row.get("labels") or "").split(";") if c.strip()]
        supers = tuple(c for c in SUPERCLASSES if c in codes)
        out.append(CorpusRecord(
            key=f"folder:{rel}", source="folder", path=str(path),
            patient_id=(row.get("patient_id") or "").strip() or None,
            split=(row.get("split") or "").strip() or None,
            reports={(row.get("language") or "en").strip(): _clean(row["report"])},
            scp={c: 100.0 for c in codes if c not in SUPERCLASSES}, superclasses=supers))
    return out


def subject_fold(subject_id: str, n_folds: int = 10) -> int:
    """A stable fold 1..n_folds for a patient (SHA-1 of the id), so every ECG of one patient
    falls in one fold and `--folds 1-8` keeps patients out of the held-out folds."""
    import hashlib

    return int(hashlib.sha1(subject_id.encode()).hexdigest(), 16) % n_folds + 1


def load_mimic_ecg(root: str | Path, *, folds: str | Iterable[int] | None = None,
                   require_signal: bool = True) -> list[CorpusRecord]:
    """Records of a MIMIC-IV-ECG folder (PhysioNet's layout), in record_list.csv order.

    record_list.csv gives `subject_id`, `study_id` and `path` (e.g.
    files/p1000/p10000032/s40689238/40689238); machine_measurements.csv gives the machine's
    statements `report_0` .. `report_17`, joined as the report (".", one per statement).
    MIMIC-IV-ECG has no folds: each patient gets one by `subject_fold`, so `folds` selects
    patients, never splits one. Studies without any statement are left out (they cannot serve
    as a neighbour's report); `require_signal` skips rows whose files are absent (a partial
    download).
    """
    root = Path(root)
    rows = _read_csv(root / "record_list.csv", ("subject_id", "study_id", "path"), MIMIC_LAYOUT)
    mm_path = root / "machine_measurements.csv"
    measured = _read_csv(mm_path, ("subject_id", "study_id", "report_0"), MIMIC_LAYOUT)
    statements: dict[str, str] = {}
    for m in measured:
        parts = [_clean(m.get(f"report_{i}") or "").rstrip(". ") for i in range(18)]
        text = ". ".join(x for x in parts if x)
        if text:
            statements[m["study_id"].strip()] = text + "."
    keep = parse_folds(folds)
    out = []
    for i, row in enumerate(rows, start=2):
        subject, study = row["subject_id"].strip(), row["study_id"].strip()
        if not subject or not study:
            raise DataError(f"{root / 'record_list.csv'}: line {i}: empty subject_id or "
                            "study_id; expected both")
        fold = subject_fold(subject)
        if keep is not None and fold not in keep:
            continue
        path = root / row["path"].strip()
        if require_signal and not path.with_suffix(".hea").exists():
            continue
        if study not in statements:
            continue
        out.append(CorpusRecord(key=f"mimic:{study}", source="mimic", path=str(path),
                                patient_id=subject, split=str(fold),
                                reports={"en": statements[study]}))
    return out
