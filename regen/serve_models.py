"""What `regen serve` accepts and answers: pydantic models (the OpenAPI schema at /docs), the
limits they carry, and the turning of a request's ECG into an `ECG` the pipeline reads.

Limits here are per field (k, text lengths, fs, lead count); the body size, k's upper bound and
the folders `{"path"}` may read are settings (`regen.settings.Settings`), checked by the server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regen.ecg import ECG, STANDARD_LEADS
from regen.errors import BadRequest, Forbidden, RegenError  # noqa: F401 - the server's errors

FS_MIN, FS_MAX = 50.0, 10_000.0     # Hz: below, no QRS survives; above, no ECG device records
MAX_LEADS = 24
MAX_PATH = 1024                     # characters of a {"path"}
MAX_ID = 200                        # characters of an inline ECG's id
MAX_QUESTION = 1000                 # characters: the longest ECG-QA question is ~150
MAX_OPTIONS, MAX_OPTION = 32, 200
LeadName = Annotated[str, Field(min_length=1, max_length=32)]
Option = Annotated[str, Field(min_length=1, max_length=MAX_OPTION)]


class ECGIn(BaseModel):
    """One ECG: {"path"} (a file under a data root), {"example"} (a bundled example, by name),
    or inline {"signal" (leads x samples, mV), "fs" (Hz), "leads", "id"}."""

    path: str | None = Field(None, min_length=1, max_length=MAX_PATH,
                             description="WFDB record, .edf, .npy or .npz under a data root")
    example: str | None = Field(None, min_length=1, max_length=64,
                                description="a name from GET /v1/examples")
    signal: list[list[float]] | list[float] | None = Field(
        None, max_length=MAX_LEADS, description="(leads, samples) in millivolts")
    fs: float | None = Field(None, ge=FS_MIN, le=FS_MAX, allow_inf_nan=False,
                             description=f"sampling rate, {FS_MIN:g}..{FS_MAX:g} Hz")
    leads: list[LeadName] | None = Field(None, max_length=MAX_LEADS)
    id: str | None = Field(None, max_length=MAX_ID)
    record: str | None = Field(None, min_length=1, max_length=MAX_ID,
                               description="a corpus record's key, e.g. a neighbour's "
                                           "(POST /v1/plot only)")


class ReportIn(BaseModel):
    ecg: ECGIn
    k: int | None = Field(None, ge=1, description="neighbours (at most the max_k setting)")
    log: bool | str | None = Field(None, description="ignored: the server always logs")


class AskIn(BaseModel):
    ecgs: list[ECGIn] = Field(..., max_length=2)
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION)
    options: list[Option] | None = Field(None, max_length=MAX_OPTIONS)
    k: int | None = Field(None, ge=1)
    log: bool | str | None = Field(None, description="ignored: the server always logs")


class CompareIn(BaseModel):
    a: ECGIn
    b: ECGIn
    k: int | None = Field(None, ge=1)
    log: bool | str | None = Field(None, description="ignored: the server always logs")


class MeasureIn(BaseModel):
    ecg: ECGIn


class ScanIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    ecg: ECGIn
    window: float = Field(10.0, ge=2.0, le=60.0, description="window length, s")
    step: float = Field(5.0, ge=1.0, le=60.0, description="step between windows, s")
    run_async: bool = Field(False, alias="async", description="answer 202 with a job id to "
                            "poll at GET /v1/scan/{job_id} (always so for a record longer than "
                            "the scan_async_after_s setting)")


class PlotIn(BaseModel):
    ecg: ECGIn
    format: Literal["png", "svg"] = "png"


class _Open(BaseModel):
    """Answers pass through what the API's `to_json()` gives; new keys are kept."""

    model_config = ConfigDict(extra="allow")


class NeighbourOut(_Open):
    id: int
    key: str
    score: float
    report: str = Field(description="the neighbour's report as stored")
    report_shown: str = Field("", description="as a reader is shown it: no coder's 'Edit:' "
                              "fragment, no broken encoding")
    labels: list[str] = []
    superclasses: list[str] = []
    path: str = Field("", description="relative to its data root, or the record's name")


class ReportOut(_Open):
    query: str
    text: str
    confidence: float
    abstained: bool
    cited: list[str]
    neighbours: list[NeighbourOut]
    disclaimer: str
    findings: list[dict[str, Any]] | None = None
    measurements: dict[str, Any] | None = None
    input: dict[str, Any] | None = None


class AnswerOut(_Open):
    question: str
    options: list[str]
    confidence: float
    abstained: bool
    neighbours: list[list[NeighbourOut]]
    disclaimer: str
    queries: list[str] = Field([], description="the ECGs asked about, as in a comparison")


class ComparisonOut(_Open):
    queries: list[str] = Field([], description="the first and the second ECG")
    text: str
    new: dict[str, list[float]] = Field({}, description="finding -> [support in the first, "
                                                        "in the second]: in the second only")
    resolved: dict[str, list[float]] = Field({}, description="in the first only")
    persisting: dict[str, list[float]] = Field({}, description="in both")
    confidence: float
    neighbours_a: list[NeighbourOut]
    neighbours_b: list[NeighbourOut]
    disclaimer: str


class HealthOut(BaseModel):
    status: str
    build: str | None
    encoder: str
    count: int


class ExampleOut(BaseModel):
    name: str
    report: str


class Error(BaseModel):
    error: str


@dataclass(frozen=True)
class Paths:
    """Which files a request may name: `roots` (resolved folders; empty: none) and the bundled
    examples (name -> record path)."""

    roots: tuple[Path, ...]
    examples: dict[str, Path]

    def allowed(self, given: str, where: str) -> str:
        """`given` if it lies under a root once symlinks and `..` are resolved, else Forbidden."""
        if "\x00" in given:
            raise BadRequest(f"{where}: the path holds a NUL character")
        if not self.roots:
            raise Forbidden(f"{where}: reading files by path is off on this server; set the "
                            "data_roots setting (REGEN_DATA_ROOTS=/folder) to allow a folder, "
                            "or send the signal inline or upload the file")
        real = Path(given).expanduser().resolve()
        names = [real] + [real.with_name(real.name + s) for s in (".hea", ".dat")]
        for p in names:     # a WFDB record is named without its extension
            inside = any(p.resolve() == r or p.resolve().is_relative_to(r) for r in self.roots)
            if not inside:
                raise Forbidden(f"{where}: {given[:200]!r} is outside the data_roots folders "
                                "this server may read")
        return given

    def relative(self, path: str) -> str:
        """A corpus path as clients see it: relative to its data root, else its name."""
        p = Path(path)
        if not p.is_absolute():
            return path
        for r in self.roots:
            if p.is_relative_to(r):
                return str(p.relative_to(r))
        return p.name


def ecg_from_request(obj: ECGIn, where: str, paths: Paths,
                     corpus: Callable[[str], str | None] | None = None) -> ECG | str:
    """{"path"} -> the path (read by Regen), {"example"} -> its path, {"signal"} -> an ECG;
    {"record"} -> the corpus file of that key where `corpus` (key -> path) is given."""
    if obj.record is not None:
        found = corpus(obj.record) if corpus is not None else None
        if corpus is None or found is None:
            raise BadRequest(f"{where}.record: {obj.record[:64]!r} is "
                             + ("not a corpus record's key" if corpus is not None
                                else "only taken by POST /v1/plot"))
        return found
    if obj.path is not None:
        return paths.allowed(obj.path, f"{where}.path")
    if obj.example is not None:
        if obj.example not in paths.examples:
            raise BadRequest(f"{where}.example: {obj.example[:64]!r} is not one of "
                             f"{sorted(paths.examples)}")
        return str(paths.examples[obj.example])
    if obj.signal is None or obj.fs is None:
        raise BadRequest(f"{where}: give 'path', or 'signal' (leads x samples, mV) with 'fs'")
    rows = obj.signal if obj.signal and isinstance(obj.signal[0], list) else [obj.signal]
    if len({len(r) for r in rows}) != 1 or not rows[0]:
        raise BadRequest(f"{where}.signal: leads of lengths {sorted({len(r) for r in rows})}; "
                         "expected equal, non-empty rows (leads x samples)")
    with np.errstate(over="ignore"):             # over float32's range: inf, refused below
        sig = np.asarray(rows, dtype=np.float32)
    bad = ~np.isfinite(sig)
    if bad.any():
        raise BadRequest(f"{where}.signal: {int(bad.sum())} samples are NaN or infinite (or too "
                         "large for float32); expected finite millivolts")
    leads = obj.leads
    if leads is None:
        if sig.shape[0] != len(STANDARD_LEADS):
            raise BadRequest(f"{where}.leads: required for a signal of {sig.shape[0]} leads")
        leads = list(STANDARD_LEADS)
    if len(leads) != sig.shape[0]:
        raise BadRequest(f"{where}.leads: {len(leads)} names for {sig.shape[0]} signal rows")
    ident = obj.id or "inline"
    return ECG(sig, float(obj.fs), tuple(leads), ident, f"{where}:{ident}")


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def upload_name(filename: str | None, i: int) -> str:
    """An uploaded file's name reduced to a safe base name (the extension is what matters)."""
    base = _SAFE.sub("_", Path(filename or f"upload{i}").name)[-100:].lstrip(".")
    return base or f"upload{i}"


def check_fs(fs: float | None) -> float | None:
    if fs is not None and not (math.isfinite(fs) and FS_MIN <= fs <= FS_MAX):
        raise BadRequest(f"fs={fs}; expected {FS_MIN:g}..{FS_MAX:g} Hz")
    return fs
