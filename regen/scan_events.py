"""From scanned windows to what a Holter reader wants: episodes of a finding, beat-level events
(premature beats, pauses, runs) and the record's summary. Pure functions over arrays; no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Episode rule: a finding's episode starts at a window whose probability reaches the threshold
# and goes on while windows stay at or above OFF x threshold (hysteresis); it is kept when it
# spans at least MIN_WINDOWS windows, or a shorter one reaches SINGLE (a 10-s ECG of the
# finding covers only one whole window). An unreadable window always ends an episode. Chosen on
# spliced records of PTB-XL fold-8 ECGs scanned against an index of folds 1-7
# (`python bench/scan_bench.py --tune`); fold 9 never chose anything.
OFF = 0.5
MIN_WINDOWS = 2
SINGLE = 1.01     # > 1: never
# Rate findings are sustained rhythms: as Holter software asks a brady- or tachycardia to last
# before it is an episode, a STACH or SBRAD episode needs at least this many windows (N windows
# of a 10-s window, 5-s step span 5 (N + 1) s). Chosen among N >= 2 as the rule above (bench
# --tune, fold 8 against folds 1-7, spliced records with 30-40 s runs of STACH and SBRAD ECGs;
# docs/SCAN.md gives the grid and why N = 1 was left out).
SUSTAINED = {"STACH": 2, "SBRAD": 2}
# AF episodes have their own rule, (OFF, windows needed), chosen together with the AF blend
# (`regen.scan.AF_BLEND`) by leave-one-fold-out CV over spliced records of folds 5-8, each
# scanned against an index without its fold (`python bench/scan_bench.py --af-cv`,
# docs/SCAN.md).
AF_RULE = (OFF, 1)
PAUSE_S = 2.0      # an RR interval longer than this is a pause
RUN_BEATS = 3      # this many consecutive premature beats make a run


@dataclass(frozen=True)
class Episode:
    """A stretch of the record where `finding` (the labeller's code) held, in seconds from the
    record's start; probabilities are the windows' (peak and mean over the episode)."""

    finding: str
    start_s: float
    end_s: float
    peak_probability: float
    mean_probability: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class BeatEvent:
    """A beat-level event in seconds from the record's start. kind: "premature" (one beat),
    "run" (>= RUN_BEATS consecutive premature beats) or "pause" (RR > PAUSE_S, time_s at the
    beat before it). origin: "supraventricular" | "ventricular" for premature beats and runs
    (a run's majority), "" for pauses."""

    time_s: float
    kind: str
    origin: str = ""
    duration_s: float = 0.0
    n_beats: int = 1


def find_episodes(finding: str, start_s: np.ndarray, end_s: np.ndarray, p: np.ndarray,
                  threshold: float, off: float = OFF, min_windows: int = MIN_WINDOWS
                  ) -> list[Episode]:
    """Windows' core spans (start_s, end_s) (W,), probabilities p (W,) (NaN: unreadable) ->
    the finding's episodes by hysteresis; consecutive windows are assumed adjacent."""
    out: list[Episode] = []
    i, n = 0, len(p)
    lo = off * threshold
    while i < n:
        if not (p[i] >= threshold):      # NaN is never an onset
            i += 1
            continue
        j = i
        while j + 1 < n and p[j + 1] >= lo:
            j += 1
        # the hysteresis tail may end on windows below the onset level: trim them
        while j > i and p[j] < threshold and p[j - 1] < threshold:
            j -= 1
        if j - i + 1 >= min_windows:
            seg = p[i:j + 1]
            out.append(Episode(finding, round(float(start_s[i]), 3), round(float(end_s[j]), 3),
                               round(float(seg.max()), 4), round(float(seg.mean()), 4)))
        i = j + 1
    return out


def beat_events(r_s: np.ndarray, premature: np.ndarray, origin: Sequence[str],
                segment: np.ndarray) -> list[BeatEvent]:
    """R-peak times (B,) sorted, whether each is premature (B,), its origin, and the readable
    stretch it lies in (B,) -> premature beats, runs and pauses in time order. A gap between
    two readable stretches (an unreadable part between them) is not a pause."""
    events: list[BeatEvent] = []
    for t, pm, o in zip(r_s, premature, origin):
        if pm:
            events.append(BeatEvent(round(float(t), 3), "premature", o))
    if len(r_s) > 1:
        rr = np.diff(r_s)
        for g in np.flatnonzero((rr > PAUSE_S) & (segment[1:] == segment[:-1])):
            events.append(BeatEvent(round(float(r_s[g]), 3), "pause", "",
                                    round(float(rr[g]), 3), 0))
    k = 0
    while k < len(r_s):
        if not premature[k]:
            k += 1
            continue
        m = k
        while m + 1 < len(r_s) and premature[m + 1] and segment[m + 1] == segment[k]:
            m += 1
        if m - k + 1 >= RUN_BEATS:
            kinds = list(origin[k:m + 1])
            major = max(("ventricular", "supraventricular"), key=kinds.count)
            events.append(BeatEvent(round(float(r_s[k]), 3), "run", major,
                                    round(float(r_s[m] - r_s[k]), 3), m - k + 1))
        k = m + 1
    events.sort(key=lambda e: (e.time_s, e.kind))
    return events


@dataclass(frozen=True)
class Summary:
    """The record at a glance. Times in seconds from the record's start; rates per hour of
    analysable (readable) time; None where nothing was readable."""

    duration_s: float
    analysable_s: float
    unreadable_share: float          # share of the record too flat, clipped or missing to read
    af_burden: float                 # share of analysable time inside AFIB episodes
    hr_min_bpm: float | None
    hr_min_at_s: float | None
    hr_mean_bpm: float | None
    hr_max_bpm: float | None
    hr_max_at_s: float | None
    n_sve: int                       # supraventricular premature beats
    n_ve: int                        # ventricular premature beats
    sve_per_hour: float
    ve_per_hour: float
    n_runs: int
    n_pauses: int
    longest_pause_s: float | None
    longest_pause_at_s: float | None
    episodes: dict[str, int]         # finding -> number of episodes

    def lines(self) -> list[str]:
        """Readable summary lines (times as h:mm:ss)."""
        out = [f"duration {clock(self.duration_s)}, analysable {clock(self.analysable_s)} "
               f"({1 - self.unreadable_share:.0%}); unreadable {self.unreadable_share:.1%}"]
        if self.hr_mean_bpm is not None:
            out.append(f"heart rate mean {self.hr_mean_bpm:.0f} bpm, min {self.hr_min_bpm:.0f} "
                       f"at {clock(self.hr_min_at_s)}, max {self.hr_max_bpm:.0f} at "
                       f"{clock(self.hr_max_at_s)}")
        out.append(f"AF burden {self.af_burden:.1%}")
        out.append(f"ectopy: {self.n_sve} supraventricular ({self.sve_per_hour:.1f}/h), "
                   f"{self.n_ve} ventricular ({self.ve_per_hour:.1f}/h), {self.n_runs} runs")
        if self.longest_pause_s is not None:
            out.append(f"{self.n_pauses} pauses > {PAUSE_S:.0f} s, longest "
                       f"{self.longest_pause_s:.1f} s at {clock(self.longest_pause_at_s)}")
        else:
            out.append(f"no pause > {PAUSE_S:.0f} s")
        return out


def clock(t: float | None) -> str:
    """Seconds -> "h:mm:ss"."""
    if t is None:
        return "-"
    s = int(round(t))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summarise(duration_s: float, core_s: np.ndarray, core_e: np.ndarray, readable: np.ndarray,
              hr: np.ndarray, episodes: Sequence[Episode], events: Sequence[BeatEvent]
              ) -> Summary:
    """Windows' core spans (W,), readable (W,) bool, heart rates (W,) (NaN: none) -> Summary.
    Supraventricular premature beats inside an AFIB episode are not counted."""
    span = np.clip(np.minimum(core_e, duration_s) - core_s, 0.0, None)
    analysable = float(span[readable].sum())
    hours = analysable / 3600.0
    ok = readable & np.isfinite(hr)
    mid = (core_s + np.minimum(core_e, duration_s)) / 2
    hr_min = hr_min_at = hr_mean = hr_max = hr_max_at = None
    if ok.any():
        h, m, w = hr[ok], mid[ok], span[ok]
        lo, hi = int(np.argmin(h)), int(np.argmax(h))
        hr_min, hr_min_at = round(float(h[lo]), 1), round(float(m[lo]), 1)
        hr_max, hr_max_at = round(float(h[hi]), 1), round(float(m[hi]), 1)
        hr_mean = round(float(np.average(h, weights=np.maximum(w, 1e-9))), 1)
    af = sum(e.duration_s for e in episodes if e.finding == "AFIB")
    # inside atrial fibrillation an early narrow beat is the rhythm itself, not an SVE
    af_spans = [(e.start_s, e.end_s) for e in episodes if e.finding == "AFIB"]
    prem = [e for e in events if e.kind == "premature"
            and not (e.origin != "ventricular" and any(a <= e.time_s < b for a, b in af_spans))]
    n_ve = sum(e.origin == "ventricular" for e in prem)
    pauses = [e for e in events if e.kind == "pause"]
    longest = max(pauses, key=lambda e: e.duration_s, default=None)
    counts: dict[str, int] = {}
    for e in episodes:
        counts[e.finding] = counts.get(e.finding, 0) + 1
    return Summary(
        duration_s=round(duration_s, 3), analysable_s=round(analysable, 3),
        unreadable_share=round(1 - analysable / duration_s, 4) if duration_s > 0 else 1.0,
        af_burden=round(min(1.0, af / analysable), 4) if analysable > 0 else 0.0,
        hr_min_bpm=hr_min, hr_min_at_s=hr_min_at, hr_mean_bpm=hr_mean, hr_max_bpm=hr_max,
        hr_max_at_s=hr_max_at, n_sve=len(prem) - n_ve, n_ve=n_ve,
        sve_per_hour=round((len(prem) - n_ve) / hours, 2) if hours > 0 else 0.0,
        ve_per_hour=round(n_ve / hours, 2) if hours > 0 else 0.0,
        n_runs=sum(e.kind == "run" for e in events), n_pauses=len(pauses),
        longest_pause_s=longest.duration_s if longest else None,
        longest_pause_at_s=longest.time_s if longest else None, episodes=counts)


__all__ = ["MIN_WINDOWS", "OFF", "PAUSE_S", "RUN_BEATS", "SINGLE", "SUSTAINED", "BeatEvent",
           "Episode", "Summary", "beat_events", "clock", "find_episodes", "summarise"]
