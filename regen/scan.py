"""Long and ambulatory records: findings per window, streamed, merged into episodes.

`scan(rg, ecg_or_path, window_s, step_s)` reads the record in chunks (WFDB `sampfrom`/`sampto`,
EDF by data records, so memory does not grow with its length), and for each window (step
`step_s`): drops leads that are flat, clipped or missing; when none is left the window is
unreadable (never an episode); otherwise measures it (`regen.measure`), embeds it, and takes
the build's calibrated findings, with the measured findings replacing rate and premature-beat
findings as `regen.diagnose` does (MEASURED_DECIDES, MEASURED_ONLY). Windows become episodes
and beat events in `regen.scan_events`.

Each window owns a core: the middle `step_s` of it (from the record's start for the first,
to its end for the last). Beats are counted in the window whose core holds them, so
overlapping windows count each beat once, away from the window's edges.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from regen.ecg import ECG, standard_lead
from regen.errors import ConfigError, ECGReadError
from regen.measured import AF_CUT, AF_REGULAR
from regen.measured import af_probability as _af_probability
from regen.scan_events import (
    AF_RULE,
    MIN_WINDOWS,
    OFF,
    SINGLE,
    SUSTAINED,
    BeatEvent,
    Episode,
    Summary,
    beat_events,
    find_episodes,
    summarise,
)

if TYPE_CHECKING:
    from regen.api import Regen

SCAN_FINDINGS = ("AFIB", "PVC", "PAC", "STACH", "SBRAD")
FLAT_MV = 0.05       # a lead whose 1st-99th percentile range is below this (mV) is a flat line
CLIPPED_SHARE = 0.2  # ... or one with this share of samples at its extreme values is clipped
CHUNK_S = 600.0      # seconds of signal read at a time from a WFDB record
BATCH = 64           # windows embedded together
# The window's AFIB probability blends the retrieved one with the measured AF score
# (`regen.measured.af_probability`: RR irregularity and no P wave, works on one lead; 0 where
# the rhythm is regular, AF_REGULAR), in logit units each relative to its own cut-off:
# AF_BLEND = 0 is the retrieved finding alone, 1 the measured score alone; AF_CUT is the
# measured score's cut-off. Chosen with AF_RULE by
# leave-one-fold-out CV over spliced records of folds 5-8, each scanned against an index
# without its fold (`python bench/scan_bench.py --tune-af ...`, then `--af-cv`;
# docs/SCAN.md); fold 9 chose nothing.
AF_BLEND = 0.5
MEASURED_FIELDS = ("rr_sd_ms", "pr_ms", "qrs_ms", "qtc_bazett_ms", "n_beats")


@dataclass(frozen=True)
class Window:
    """One window, seconds from the record's start. probabilities: finding -> calibrated
    probability (empty when unreadable); threshold: finding -> the level that decides it
    (0.5 where the measurement decides). core: the part of the window that owns its beats and
    its share of episodes (see the module's docstring). noise: the quality model's largest
    per-lead noise probability (NaN when unreadable). measured: MEASURED_FIELDS of the
    window's `regen.measure.Measurements` (None: not measurable), its RR irregularity and
    measured AF score (`af_score`). retrieved: the build's calibrated probability of each
    finding before measurements replaced or blended it, so the rule can be shown and
    re-chosen (bench/scan_bench.py)."""

    start_s: float
    end_s: float
    unreadable: bool
    core: tuple[float, float]
    probabilities: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    hr_bpm: float | None = None
    noise: float = float("nan")
    leads_used: tuple[str, ...] = ()
    measured: dict[str, float | None] = field(default_factory=dict)
    retrieved: dict[str, float] = field(default_factory=dict)

    def present(self) -> list[str]:
        return [c for c, p in self.probabilities.items() if p >= self.thresholds[c]]


@dataclass(frozen=True)
class Scan:
    """A scanned record: its windows, episodes, beat events and summary."""

    source: str
    fs: float
    leads: tuple[str, ...]
    window_s: float
    step_s: float
    windows: tuple[Window, ...]
    episodes: tuple[Episode, ...]
    events: tuple[BeatEvent, ...]
    summary: Summary

    def unreadable_spans(self) -> list[tuple[float, float]]:
        """(start_s, end_s) of each stretch of consecutive unreadable windows' cores."""
        spans: list[tuple[float, float]] = []
        for w in self.windows:
            if not w.unreadable:
                continue
            if spans and abs(spans[-1][1] - w.core[0]) < 1e-6:
                spans[-1] = (spans[-1][0], w.core[1])
            else:
                spans.append(w.core)
        return spans

    def to_json(self) -> dict[str, Any]:
        """{summary, episodes, windows, events, unreadable, record}: JSON-ready."""
        from dataclasses import asdict

        def win(w: Window) -> dict[str, Any]:
            d = asdict(w)
            d["present"] = w.present()
            d["noise"] = None if not np.isfinite(w.noise) else round(w.noise, 4)
            d["leads_used"] = list(w.leads_used)
            return d

        return {"record": {"source": self.source, "fs": self.fs, "leads": list(self.leads),
                           "window_s": self.window_s, "step_s": self.step_s},
                "summary": asdict(self.summary),
                "episodes": [asdict(e) | {"duration_s": round(e.duration_s, 3)}
                             for e in self.episodes],
                "windows": [win(w) for w in self.windows],
                "events": [asdict(e) for e in self.events],
                "unreadable": [{"start_s": a, "end_s": b} for a, b in self.unreadable_spans()]}


class _Source:
    """Random access to a record's samples, (leads, samples) float32 mV; NaN where missing.
    WFDB records and EDF files are read chunk_s seconds at a time (EDF by its data records);
    other inputs are held whole."""

    def __init__(self, src: ECG | str | Path, chunk_s: float = CHUNK_S):
        self._ecg: ECG | None = None
        self._edf: Any = None
        self._chunk_s = chunk_s
        self._buf = np.zeros((0, 0), np.float32)
        self._at = 0
        if isinstance(src, ECG):
            self._ecg = src
            self.fs, self.leads, self.n, self.name = src.fs, src.leads, src.n_samples, \
                src.source or src.id
            return
        p = Path(src)
        rec = p.with_suffix("") if p.suffix.lower() in (".hea", ".dat") else p
        hea = rec.parent / (rec.name + ".hea")
        self.name = str(p)
        if p.suffix.lower() == ".edf":
            from regen.edf import EDFFile

            self._edf = EDFFile(p)
            self.fs, self.leads, self.n = self._edf.fs, self._edf.leads, self._edf.n
            return
        if p.suffix.lower() in (".npy", ".npz") or not hea.exists():
            from regen.reader import read_ecg

            self._ecg = read_ecg(p)
            self.fs, self.leads, self.n = self._ecg.fs, self._ecg.leads, self._ecg.n_samples
            return
        import wfdb

        from regen.reader import _UNIT_TO_MV

        try:
            h = wfdb.rdheader(str(rec))
        except Exception as exc:  # wfdb raises bare ValueError/IndexError on bad headers
            raise ECGReadError(f"{hea}: malformed WFDB header ({exc})") from exc
        if not h.fs or not h.sig_len or not h.n_sig:
            raise ECGReadError(f"{hea}: fs={h.fs}, {h.sig_len} samples, {h.n_sig} leads; "
                               f"expected a positive rate, length and lead count")
        units = [(u or "").strip().lower() for u in (h.units or [""] * h.n_sig)]
        bad = [u for u in units if u not in _UNIT_TO_MV]
        if bad:
            raise ECGReadError(f"{hea}: units {bad}; expected mV, uV or V")
        self._scale = np.array([_UNIT_TO_MV[u] for u in units], np.float32)[:, None]
        self._rec = str(rec)
        self.fs, self.leads, self.n = float(h.fs), tuple(h.sig_name), int(h.sig_len)

    @property
    def duration_s(self) -> float:
        return self.n / self.fs

    def _load(self, a: int, end: int) -> np.ndarray:
        if self._edf is not None:
            return np.asarray(self._edf.read(a, end))
        import wfdb

        try:
            r = wfdb.rdrecord(self._rec, sampfrom=a, sampto=end, physical=True)
        except Exception as exc:
            raise ECGReadError(f"{self._rec}: could not read samples {a}-{end} ({exc})"
                               ) from exc
        return np.asarray(r.p_signal, np.float32).T * self._scale

    def read(self, a: int, b: int) -> np.ndarray:
        b = min(b, self.n)
        if self._ecg is not None:
            return self._ecg.signal[:, a:b]
        if a < self._at or b > self._at + self._buf.shape[1]:
            end = min(self.n, max(b, a + int(self._chunk_s * self.fs)))
            self._buf = self._load(a, end)
            self._at = a
        return self._buf[:, a - self._at:b - self._at]


def record_duration_s(ecg_or_path: ECG | str | Path) -> float:
    """A record's length in seconds from its header (WFDB, EDF) or its array (numpy, an ECG),
    without reading a long record's samples."""
    return _Source(ecg_or_path).duration_s


def usable_leads(sig: np.ndarray, leads: tuple[str, ...]) -> np.ndarray:
    """(leads, samples) -> (leads,) bool: a standard lead with finite samples, not a flat line
    (1-99th percentile range < FLAT_MV) and not clipped (CLIPPED_SHARE of samples at its
    minimum or maximum)."""
    ok = np.array([standard_lead(n) is not None for n in leads])
    ok &= np.isfinite(sig).all(axis=1)
    if not ok.any():
        return ok
    x = np.where(np.isfinite(sig), sig, 0.0)
    lo, hi = np.percentile(x, [1, 99], axis=1)
    ok &= (hi - lo) >= FLAT_MV
    mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    at_edge = ((x <= mn + 1e-4) | (x >= mx - 1e-4)).mean(axis=1)
    ok &= at_edge < CLIPPED_SHARE
    return ok


def _windows(n: int, w: int, s: int) -> list[int]:
    """Window starts: every s samples, the last kept when it holds >= half a window."""
    out = []
    for start in range(0, max(1, n - w // 2), s):
        out.append(start)
        if start + w >= n:
            break
    return out


def scan(rg: Regen, ecg_or_path: ECG | str | Path, window_s: float = 10.0,
         step_s: float = 5.0, progress: bool | None = None,
         findings: tuple[str, ...] = SCAN_FINDINGS, chunk_s: float = CHUNK_S,
         on_progress: Callable[[int, int], None] | None = None) -> Scan:
    """Scan a long record (an ECG, or a path: WFDB and EDF streamed `chunk_s` seconds at a
    time, numpy read whole). progress: a tqdm bar on stderr (None: when the record is longer
    than 30 minutes). findings: the labeller's codes to follow (FINDINGS of
    `regen.findings`). on_progress(windows done, windows in all): called after each batch."""
    if window_s <= 0 or step_s <= 0 or step_s > window_s:
        raise ConfigError(f"window {window_s} s, step {step_s} s; expected 0 < step <= window "
                          f"(for example --window 10 --step 5)")
    src = _Source(ecg_or_path, chunk_s)
    fs = src.fs
    w, s = int(round(window_s * fs)), int(round(step_s * fs))
    starts = _windows(src.n, w, s)
    show = progress if progress is not None else src.n / fs > 1800
    from tqdm import tqdm

    bar = tqdm(total=len(starts), disable=not show, file=sys.stderr, unit="win",
               desc=f"scan {Path(src.name).name}")
    dg = rg.diagnoser
    quality = rg.quality
    acc = _Accumulator(findings, dg, rg, fs, w, s, src.n)
    batch: list[tuple[int, ECG | None]] = []
    for k, a in enumerate(starts):
        sig = src.read(a, a + w)
        ok = usable_leads(sig, src.leads)
        part = None
        if ok.any():
            keep = np.flatnonzero(ok)
            part = ECG(np.ascontiguousarray(sig[keep]), fs, tuple(src.leads[i] for i in keep),
                       f"{Path(src.name).name}@{a / fs:.1f}s")
        batch.append((a, part))
        if len(batch) == BATCH or k == len(starts) - 1:
            acc.add(batch, quality)
            bar.update(len(batch))
            if on_progress is not None:
                on_progress(k + 1, len(starts))
            batch = []
    bar.close()
    return acc.result(src.name, src.leads, window_s, step_s)


class _Accumulator:
    """Per-window results and the beats in each window's core, gathered batch by batch; only
    small per-window and per-beat arrays are kept."""

    def __init__(self, findings: tuple[str, ...], dg: Any, rg: Regen, fs: float, w: int,
                 s: int, n: int):
        from regen.findings import FINDINGS

        self.findings, self.dg, self.rg, self.fs, self.w, self.s, self.n = \
            findings, dg, rg, fs, w, s, n
        unknown = [c for c in findings if c not in FINDINGS]
        if unknown:
            raise ConfigError(f"scan findings {unknown} are not findings of the model; "
                              f"expected codes among {list(FINDINGS)}")
        self.idx = [FINDINGS.index(c) for c in findings]
        self.windows: list[Window] = []
        self.core: list[tuple[float, float]] = []
        self.r: list[float] = []
        self.prem: dict[float, str] = {}
        self.seg: list[int] = []
        self.segment = 0

    def _core(self, a: int) -> tuple[float, float]:
        lo = 0 if a == 0 else a + (self.w - self.s) // 2
        hi = self.n if a + self.w >= self.n else a + (self.w + self.s) // 2
        return lo / self.fs, hi / self.fs

    def add(self, batch: list[tuple[int, ECG | None]], quality: Any) -> None:
        from regen.diagnose import MEASURED_DECIDES, MEASURED_ONLY
        from regen.measure import measure
        from regen.measured import af_score, irregularity, measured_findings

        ecgs = [e for _, e in batch if e is not None]
        p = np.zeros((0, len(self.findings)))
        if ecgs:
            z, _ = self.rg._embed_noted(ecgs)
            full, _, _ = self.dg.probabilities(z, *self.rg._voters(ecgs, z, self.dg.k,
                                                                    self.dg.targets))
            p = full[:, self.idx]
        thr0 = {c: float(self.dg.model.threshold[i]) for c, i in zip(self.findings, self.idx)}
        j = 0
        for a, e in batch:
            lo, hi = self._core(a)
            self.core.append((lo, hi))
            t0, t1 = a / self.fs, min(a + self.w, self.n) / self.fs
            if e is None:
                self.windows.append(Window(round(t0, 3), round(t1, 3), True,
                                           (round(lo, 3), round(hi, 3))))
                self.segment += 1
                continue
            m = measure(e)
            probs = {c: float(p[j, k]) for k, c in enumerate(self.findings)}
            thr = dict(thr0)
            # premature beats count in the window whose core holds them, so one early beat
            # (or a splice) does not make two overlapping windows PAC
            own = tuple(b for b in m.premature_beats if lo <= t0 + b.time_s < hi)
            measured = {mf.label: mf
                        for mf in measured_findings(replace(m, premature_beats=own))}
            retrieved = {c: round(v, 4) for c, v in probs.items()}
            irr, afs = irregularity(m), af_score(m)
            if "AFIB" in probs:
                probs["AFIB"] = af_probability(probs["AFIB"], thr["AFIB"], afs, irr)
            for c in self.findings:
                if c in measured and c in MEASURED_DECIDES | MEASURED_ONLY:
                    probs[c], thr[c] = float(measured[c].probability), 0.5
                elif c in MEASURED_ONLY:     # stated only when measured
                    probs[c], thr[c] = 0.0, 0.5
            qp = quality.probabilities(e)
            noise = max((v for d in qp.values() for v in d.values()), default=float("nan"))
            self.windows.append(Window(
                round(t0, 3), round(t1, 3), False, (round(lo, 3), round(hi, 3)),
                {c: round(v, 4) for c, v in probs.items()}, thr,
                None if m.hr_bpm is None else round(float(m.hr_bpm), 1), float(noise),
                e.leads, {k: None if getattr(m, k) is None else round(float(getattr(m, k)), 1)
                          for k in MEASURED_FIELDS}
                | {"rr_irregularity": round(irr, 4) if np.isfinite(irr) else None,
                   "af_score": None if afs is None else round(afs, 4)}, retrieved))
            j += 1
            for r in m.r_peaks_s:
                t = t0 + r
                if lo <= t < hi:
                    self.r.append(round(t, 4))
                    self.seg.append(self.segment)
            rp = np.asarray(m.r_peaks_s, np.float64)
            for b in m.premature_beats:
                t = t0 + b.time_s
                if lo <= t < hi and len(rp):
                    # keyed by the R peak it belongs to (the two may differ by a sample)
                    near = rp[np.argmin(np.abs(rp - b.time_s))]
                    self.prem[round(t0 + float(near), 4)] = b.kind

    def result(self, source: str, leads: tuple[str, ...], window_s: float, step_s: float
               ) -> Scan:
        W = self.windows
        core_s = np.array([c[0] for c in self.core])
        core_e = np.array([c[1] for c in self.core])
        readable = np.array([not x.unreadable for x in W], bool)
        episodes = merge(W, self.findings)
        r = np.array(self.r, np.float64)
        order = np.argsort(r, kind="stable")
        r = r[order]
        seg = np.array(self.seg, np.int64)[order]
        is_p = np.array([t in self.prem for t in r], bool)
        origin = [self.prem.get(t, "") for t in r]
        events = beat_events(r, is_p, origin, seg)
        hr = np.array([np.nan if x.hr_bpm is None else x.hr_bpm for x in W], np.float64)
        summary = summarise(self.n / self.fs, core_s, core_e, readable, hr, episodes, events)
        return Scan(source, self.fs, leads, window_s, step_s, tuple(W), tuple(episodes),
                    tuple(events), summary)


def af_probability(retrieved: float, threshold: float, score: float | None,
                   irregularity: float, blend: float = AF_BLEND, cut: float = AF_CUT,
                   regular: float = AF_REGULAR) -> float:
    """A window's AFIB probability: `regen.measured.af_probability` at the scan's blend."""
    return _af_probability(retrieved, threshold, score, irregularity, blend, cut, regular)


def merge(windows: Sequence[Window], findings: Sequence[str], off: float = OFF,
          min_windows: int = MIN_WINDOWS, single: float = SINGLE,
          sustained: dict[str, int] | None = None,
          af_rule: tuple[float, int] | None = None) -> list[Episode]:
    """Windows -> episodes of each finding over the windows' cores, by `find_episodes`; a
    window the measurement decided (threshold 0.5) is put on the retrieved threshold's scale
    first, so both kinds of window merge into one episode. An episode of fewer than
    `min_windows` windows (`sustained[finding]` for the findings it names; default SUSTAINED)
    is kept only when its peak probability reaches `single`. AFIB follows `af_rule` (its own
    OFF and windows needed; default AF_RULE) instead of `off` and `min_windows`."""
    sustained = SUSTAINED if sustained is None else sustained
    af_off, af_windows = AF_RULE if af_rule is None else af_rule
    core_s = np.array([w.core[0] for w in windows])
    core_e = np.array([w.core[1] for w in windows])
    readable = np.array([not w.unreadable for w in windows], bool)
    episodes: list[Episode] = []
    for c in findings:
        pc = np.array([w.probabilities.get(c, np.nan) for w in windows], np.float64)
        thr = np.array([w.thresholds.get(c, np.nan) for w in windows], np.float64)
        level = float(np.nanmax(thr)) if np.isfinite(thr).any() else 0.5
        scaled = np.where(np.isfinite(thr), pc / np.where(thr > 0, thr, 1.0) * level, np.nan)
        need = af_windows if c == "AFIB" else sustained.get(c, min_windows)
        for ep in find_episodes(c, core_s, core_e, scaled, level,
                                af_off if c == "AFIB" else off, 1):
            sel = (core_s >= ep.start_s - 1e-6) & (core_e <= ep.end_s + 1e-6) & readable
            if sel.sum() < need and not np.nanmax(pc[sel]) >= single:
                continue
            episodes.append(Episode(c, ep.start_s, ep.end_s,
                                    round(float(np.nanmax(pc[sel])), 4),
                                    round(float(np.nanmean(pc[sel])), 4)))
    episodes.sort(key=lambda e: (e.start_s, e.finding))
    return episodes


__all__ = ["SCAN_FINDINGS", "BeatEvent", "af_probability", "Episode", "Scan", "Summary", "Window",
           "merge", "record_duration_s", "scan", "usable_leads"]
