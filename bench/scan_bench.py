"""Benchmark `regen scan` (issue 13): episodes on spliced PTB-XL records, APC/PVC localisation
on MIT-BIH 100, and streaming speed / memory on a long tiled record. Prints figures beside a
baseline run in the same process.

    python bench/scan_bench.py --data /work/shared/data/ptbxl \\
        --mitdb /work/shared/data/other/mitdb/100 --home HOME [--hours 24]

HOME indexes PTB-XL folds 1-8; the spliced records use fold-9 ECGs only. `--tune --home H17`
(a home of folds 1-7) splices fold-8 ECGs instead and prints the episode-rule grids that chose
`regen.scan_events.OFF`, `MIN_WINDOWS` and `SUSTAINED`. `--tune-af --fold F --home H_F
--scans sF.pkl --af-weights W_F` (H_F: a home without fold F; W_F: bench/af_fit.py) scans fold
F's spliced records; `--af-cv s8.pkl s7.pkl ...` pools them into the grid that chose
`regen.scan.AF_BLEND`, `AF_CUT` and `regen.scan_events.AF_RULE`. Fold 9 chooses nothing.
"""

from __future__ import annotations

import argparse
import ast
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from regen.api import Regen
from regen.ecg import ECG
from regen.measure import measure
from regen.measured import irregularity
from regen.reader import read_ecg
from regen.scan import AF_BLEND, AF_CUT, SCAN_FINDINGS, Scan, Window, af_probability, merge, scan
from regen.scan_events import AF_RULE, MIN_WINDOWS, OFF, SINGLE, SUSTAINED, Episode
from regen.splice import Piece, splice

TARGETS = ("AFIB", "PVC", "STACH", "SBRAD")
RATE = ("STACH", "SBRAD")
BASELINE_IRR = 0.10   # RR irregularity with the best AF F1 per ECG on folds 1-8 (0.59)


def fold_ecgs(data: Path, fold: int) -> dict[str, list[tuple[int, frozenset[str]]]]:
    """Fold's ECGs with signals, by role: normal (NORM and nothing but SR), AFIB, PVC, STACH,
    SBRAD."""
    import pandas as pd

    db = pd.read_csv(data / "ptbxl_database.csv", index_col="ecg_id")
    out: dict[str, list[tuple[int, frozenset[str]]]] = {k: [] for k in ("normal",) + TARGETS}
    for i, r in db[db.strat_fold == fold].iterrows():
        if not (data / (r.filename_lr + ".hea")).exists():
            continue
        lab = frozenset(ast.literal_eval(r.scp_codes))
        if "NORM" in lab and lab <= {"NORM", "SR"}:
            out["normal"].append((int(i), lab))
        for c in TARGETS:
            if c in lab and not (c != "AFIB" and "AFIB" in lab):
                out[c].append((int(i), lab))
    return out


def make_records(data: Path, fold: int, n_records: int, per: int, seed: int = 0,
                 rate_run: tuple[int, int] = (3, 4)) -> list[tuple[ECG, tuple[Piece, ...]]]:
    """n_records spliced records of `per` ECGs: normal ECGs with, per record, two AF episodes
    of 1-3 consecutive AFIB ECGs, two PVC ECGs, and one run each of `rate_run` (lo, hi)
    consecutive STACH and SBRAD ECGs (3-4: 30-40 s, a sustained rhythm), at random places."""
    import pandas as pd

    db = pd.read_csv(data / "ptbxl_database.csv", index_col="ecg_id")
    pool = fold_ecgs(data, fold)
    rng = random.Random(seed)
    cache: dict[int, ECG] = {}

    def load(i: int) -> ECG:
        if i not in cache:
            cache[i] = read_ecg(data / db.loc[i, "filename_lr"])
        return cache[i]

    records = []
    for r in range(n_records):
        blocks: list[list[tuple[int, frozenset[str]]]] = []
        for _ in range(2):
            blocks.append(rng.sample(pool["AFIB"], rng.randint(1, min(3, len(pool["AFIB"])))))
        blocks += [[rng.choice(pool["PVC"])] for _ in range(2)]
        for c in RATE:
            n = rng.randint(*rate_run)
            run = rng.sample(pool[c], min(n, len(pool[c])))
            blocks.append(run + [rng.choice(pool[c]) for _ in range(n - len(run))])
        n_norm = per - sum(len(b) for b in blocks)
        normals = [[x] for x in rng.sample(pool["normal"], min(n_norm, len(pool["normal"])))]
        while len(normals) < n_norm:
            normals.append([rng.choice(pool["normal"])])
        # abnormal blocks never touch each other: each sits between normal ECGs
        slots = sorted(rng.sample(range(1, len(normals)), len(blocks)))
        seq: list[tuple[int, frozenset[str]]] = []
        k = 0
        for j, nb in enumerate(normals):
            while k < len(blocks) and slots[k] == j:
                seq += blocks[k]
                k += 1
            seq += nb
        ecgs = [load(i) for i, _ in seq]
        records.append(splice(ecgs, [lab for _, lab in seq], f"spliced-{fold}-{r}"))
    return records


def truth_segments(pieces: tuple[Piece, ...], code: str) -> list[tuple[float, float]]:
    """Consecutive pieces holding `code`, merged."""
    segs: list[tuple[float, float]] = []
    for p in pieces:
        if code in p.labels:
            if segs and abs(segs[-1][1] - p.start_s) < 1e-6:
                segs[-1] = (segs[-1][0], p.end_s)
            else:
                segs.append((p.start_s, p.end_s))
    return segs


def overlaps(a: tuple[float, float], b: tuple[float, float], min_s: float = 1.0) -> bool:
    return min(a[1], b[1]) - max(a[0], b[0]) >= min_s


def score(records: list[tuple[Scan, tuple[Piece, ...]]], eps: list[list[Episode]]
          ) -> dict[str, float]:
    """Episode F1 for AFIB, PVC and STACH segment recall, false episodes per 10 min normal."""
    out: dict[str, float] = {}
    for code in ("AFIB", "STACH", "SBRAD", "PVC"):
        tp_t = n_t = tp_d = n_d = 0
        for (_, pieces), ep in zip(records, eps):
            truth = truth_segments(pieces, code)
            mine = [(e.start_s, e.end_s) for e in ep if e.finding == code]
            n_t += len(truth)
            n_d += len(mine)
            tp_t += sum(any(overlaps(t, d) for d in mine) for t in truth)
            tp_d += sum(any(overlaps(t, d) for t in truth) for d in mine)
        rec, prec = tp_t / max(n_t, 1), tp_d / max(n_d, 1) if n_d else 0.0
        out[f"{code} recall"], out[f"{code} precision"] = rec, prec
        out[f"{code} F1"] = 2 * rec * prec / (rec + prec) if rec + prec else 0.0
        out[f"{code} n"], out[f"{code} detected"] = n_t, n_d
    normal_s = false_t = false_all = 0.0
    for (_, pieces), ep in zip(records, eps):
        abnormal = [(p.start_s, p.end_s) for p in pieces if p.labels & set(TARGETS)]
        normal_s += sum(p.end_s - p.start_s for p in pieces if not p.labels & set(TARGETS))
        for e in ep:
            if not any(overlaps((e.start_s, e.end_s), a) for a in abnormal):
                false_all += 1
                false_t += e.finding in ("AFIB", "PVC", "STACH")
                out[f"false {e.finding}"] = out.get(f"false {e.finding}", 0) + 1
    out["false/10min (AFIB,PVC,STACH)"] = false_t / (normal_s / 600)
    out["false/10min (all five)"] = false_all / (normal_s / 600)
    return out


def pvc_beats_recall(records: list[tuple[Scan, tuple[Piece, ...]]]) -> tuple[float, float]:
    """Share of PVC ECGs holding >= 1 ventricular premature beat event; such events per 10 min
    of normal ECG (splice points included)."""
    hit = n = 0
    false = normal_s = 0.0
    for sc, pieces in records:
        ve = [e.time_s for e in sc.events if e.kind == "premature" and e.origin == "ventricular"]
        for p in pieces:
            inside = sum(p.start_s <= t < p.end_s for t in ve)
            if "PVC" in p.labels:
                n += 1
                hit += inside > 0
            elif not p.labels & set(TARGETS):
                false += inside
                normal_s += p.end_s - p.start_s
    return hit / max(n, 1), false / (normal_s / 600)


def baseline_af(sc: Scan, ecg: ECG) -> list[Episode]:
    """RR irregularity >= BASELINE_IRR per window as AF (probability 1/0), same episode rule."""
    from dataclasses import replace

    wins: list[Window] = []
    for w in sc.windows:
        a, b = int(w.start_s * ecg.fs), int(w.end_s * ecg.fs)
        m = measure(ECG(ecg.signal[:, a:b], ecg.fs, ecg.leads, "w"))
        p = 1.0 if irregularity(m) >= BASELINE_IRR else 0.0
        wins.append(replace(w, probabilities={"AFIB": p}, thresholds={"AFIB": 0.5}))
    return merge(wins, ["AFIB"], af_rule=(OFF, MIN_WINDOWS))


def with_af(windows: tuple[Window, ...], blend: float, cut: float) -> list[Window]:
    """The windows with AFIB re-derived from what each one kept (its retrieved probability,
    measured AF score and RR irregularity) under another blend and cut-off."""
    from dataclasses import replace

    out = []
    for w in windows:
        if w.unreadable or "AFIB" not in w.retrieved:
            out.append(w)
            continue
        irr = w.measured.get("rr_irregularity")
        p = af_probability(w.retrieved["AFIB"], w.thresholds["AFIB"], w.measured.get("af_score"),
                           float("inf") if irr is None else irr, blend, cut)
        out.append(replace(w, probabilities=w.probabilities | {"AFIB": round(p, 4)}))
    return out


def old_af(sc: Scan) -> list[Episode]:
    """The rule before the measured AF score: the retrieved AFIB probability alone, zeroed
    where the rhythm is regular (AF_BLEND 0), through the same episode rule."""
    return merge(with_af(sc.windows, 0.0, AF_CUT), SCAN_FINDINGS, af_rule=(OFF, MIN_WINDOWS))


def false_af_pieces(runs: list[tuple[Scan, tuple[Piece, ...]]], eps: list[list[Episode]]
                    ) -> str:
    """What lies under AF episodes that match no AF segment: the labels of the pieces they
    overlap (sinus arrhythmia, PACs, rate runs?), and how many start within 5 s of a splice."""
    from collections import Counter

    under: Counter[str] = Counter()
    near = n = 0
    for (_, pieces), ep in zip(runs, eps):
        truth = truth_segments(pieces, "AFIB")
        for e in ep:
            if e.finding != "AFIB" or any(overlaps(t, (e.start_s, e.end_s)) for t in truth):
                continue
            n += 1
            near += any(abs(e.start_s - p.start_s) <= 5 for p in pieces)
            for p in pieces:
                if overlaps((p.start_s, p.end_s), (e.start_s, e.end_s)):
                    under.update(sorted(p.labels - {"SR"}) or ["SR only"])
    return f"{n} false AF episodes ({near} start within 5 s of a splice); pieces under them: " + \
        ", ".join(f"{k} {v}" for k, v in under.most_common(8))


AF_GRID = [(blend, cut, off, mw) for blend in (0.0, 0.25, 0.5, 0.75, 1.0)
           for cut in ((0.5,) if blend == 0 else (0.3, 0.5, 0.7))
           for off in (0.5, 0.7, 1.0) for mw in (1, 2, 3)]


def af_cv(paths: list[Path]) -> None:
    """The AF grid (AF_BLEND x AF_CUT x the AF episode rule's OFF and windows) over spliced
    records of several held-out folds, each pickle written by `--tune-af --fold F --scans P`
    against an index without fold F; the records of all folds pooled per lead set. Rule: the
    best mean AFIB episode F1 over both lead sets among the settings with <= 1 false episode
    per 10 min of normal ECG (all five findings) in both; among those within 0.01 of it, the
    fewest AF episodes (one AF stretch cut into several is worse for a reader, and F1 does not
    see it), then the smaller blend, then the rule before."""
    import pickle

    folds: list[int] = []
    runs: dict[str, list[tuple[Scan, tuple[Piece, ...], int]]] = {"12-lead": [], "lead II": []}
    for path in paths:
        fold, made, scanned = pickle.loads(path.read_bytes())
        folds.append(fold)
        for name in runs:
            runs[name] += [(sc, pieces, fold) for sc, (_, pieces) in zip(scanned[name], made)]
    print(f"(a) AF grid, spliced records of folds {folds} (each against an index without its "
          f"fold): {len(runs['12-lead'])} records per lead set; blend 0 is the retrieved "
          f"finding alone; the rule before: blend 0, OFF {OFF}, {MIN_WINDOWS} windows")
    grid: dict[tuple[float, float, float, int], dict[str, dict[str, float]]] = {}
    others = [c for c in SCAN_FINDINGS if c != "AFIB"]
    for name, rs in runs.items():
        pooled = [(sc, p) for sc, p, _ in rs]
        rest = [merge(sc.windows, others) for sc, _ in pooled]
        for blend, cut in dict.fromkeys((b, c) for b, c, _, _ in AF_GRID):
            wins = [with_af(sc.windows, blend, cut) for sc, _ in pooled]
            for key in [k for k in AF_GRID if k[:2] == (blend, cut)]:
                eps = [r + merge(w, ["AFIB"], af_rule=key[2:]) for r, w in zip(rest, wins)]
                s = score(pooled, eps)
                for f in folds:
                    s[f"fold {f}"] = score([(sc, p) for sc, p, g in rs if g == f],
                                           [e for e, (_, _, g) in zip(eps, rs) if g == f]
                                           )["AFIB F1"]
                s["why"] = false_af_pieces(pooled, eps)  # type: ignore[assignment]
                grid.setdefault(key, {})[name] = s

    def mean_f1(k: tuple[float, float, float, int]) -> float:
        return round(float(np.mean([x["AFIB F1"] for x in grid[k].values()])), 6)

    ok = [k for k, ss in grid.items()
          if all(x["false/10min (all five)"] <= 1.0 for x in ss.values())]
    old = (0.0, 0.5, OFF, MIN_WINDOWS)
    top = max((mean_f1(k) for k in ok), default=0.0)
    near = [k for k in ok if mean_f1(k) >= top - 0.01]

    def n_episodes(k: tuple[float, float, float, int]) -> float:
        return sum(x["AFIB detected"] for x in grid[k].values())

    pick = min(near, key=lambda k: (n_episodes(k), k[0], k[2:] != old[2:], -mean_f1(k)),
               default=None)
    shown = sorted(grid, key=mean_f1, reverse=True)[:12]
    for k in dict.fromkeys([old, *([pick] if pick else []), *shown]):
        print(f"  blend {k[0]:.2f} cut {k[1]:.1f} OFF {k[2]:.1f} windows {k[3]}: mean AFIB F1 "
              f"{mean_f1(k):.3f}" + ("  <- the rule before" if k == old else "")
              + ("  <- chosen" if k == pick else ""))
        for name, x in grid[k].items():
            print(f"    {name}: AFIB F1 {x['AFIB F1']:.3f} (recall {x['AFIB recall']:.3f} of "
                  f"{x['AFIB n']:.0f}, precision {x['AFIB precision']:.3f} of "
                  f"{x['AFIB detected']:.0f}; per fold "
                  + " ".join(f"{f}: {x[f'fold {f}']:.2f}" for f in folds)
                  + f"); false per 10 min {x['false/10min (all five)']:.2f}; {x['why']}")
    print(f"  AF choice (both lead sets, <= 1 false episode per 10 min; within 0.01 of the "
          f"best mean AFIB F1 the fewest AF episodes, then the smaller blend, then the rule "
          f"before): AF_BLEND, AF_CUT, AF_RULE = "
          f"{pick and (pick[0], pick[1], pick[2:])}")


def spliced(rg: Regen, args: argparse.Namespace, fold: int) -> None:
    made = make_records(args.data, fold, args.records, args.per, rate_run=args.rate_run)
    scanned: dict[str, list[Scan]] = {}
    print(f"(a) spliced PTB-XL fold-{fold} records: {len(made)} x {args.per} ECGs "
          f"({sum(p[-1].end_s for _, p in made) / 60:.0f} min per lead set; STACH and SBRAD "
          f"runs of {args.rate_run[0]}-{args.rate_run[1]} ECGs); index {args.home}")
    grid: dict[int, list[dict[str, float]]] = {}
    for leads in (None, ("II",)):
        name = "12-lead" if leads is None else "lead II"
        t = time.perf_counter()
        scanned[name] = [scan(rg, e if leads is None else e.select(list(leads)),
                              progress=False) for e, _ in made]
        runs = [(sc, p) for sc, (_, p) in zip(scanned[name], made)]
        dt = time.perf_counter() - t
        if args.tune:
            tune(name, runs, grid)
            continue
        if args.tune_af:
            continue
        s = score(runs, [list(sc.episodes) for sc, _ in runs])
        o = score(runs, [old_af(sc) for sc, _ in runs])
        b = score(runs, [baseline_af(sc, e if leads is None else e.select(list(leads)))
                         for (sc, _), (e, _) in zip(runs, made)])
        rec, false_ve = pvc_beats_recall(runs)
        print(f"  {name} ({dt:.1f} s, OFF {OFF}, MIN_WINDOWS {MIN_WINDOWS}, SINGLE {SINGLE}, "
              f"SUSTAINED {SUSTAINED}, AF_BLEND {AF_BLEND}, AF_CUT {AF_CUT}, AF_RULE "
              f"{AF_RULE})")
        print(f"    old AF rule (retrieved alone, zeroed where regular; same windows): AFIB F1 "
              f"{o['AFIB F1']:.3f} (recall {o['AFIB recall']:.3f}, precision "
              f"{o['AFIB precision']:.3f} of {o['AFIB detected']:.0f}); false per 10 min "
              f"{o['false/10min (all five)']:.2f}")
        print(f"      {false_af_pieces(runs, [old_af(sc) for sc, _ in runs])}")
        print(f"    now: {false_af_pieces(runs, [list(sc.episodes) for sc, _ in runs])}")
        print(f"    AFIB episode F1 {s['AFIB F1']:.3f} (recall {s['AFIB recall']:.3f} of "
              f"{s['AFIB n']:.0f} AF segments, precision {s['AFIB precision']:.3f} of "
              f"{s['AFIB detected']:.0f} episodes);  baseline RR irregularity >= "
              f"{BASELINE_IRR}: F1 {b['AFIB F1']:.3f} (recall {b['AFIB recall']:.3f}, "
              f"precision {b['AFIB precision']:.3f})")
        print(f"    PVC segments ({s['PVC n']:.0f}): recall by PVC episode "
              f"{s['PVC recall']:.3f}, by a ventricular "
              f"premature beat event {rec:.3f} (such events in normal ECG: {false_ve:.2f} "
              f"per 10 min)")
        for c in RATE:
            print(f"    {c} episode F1 {s[c + ' F1']:.3f} (recall {s[c + ' recall']:.3f} of "
                  f"{s[c + ' n']:.0f} runs, precision {s[c + ' precision']:.3f} of "
                  f"{s[c + ' detected']:.0f} episodes)")
        print(f"    false episodes per 10 min of normal ECG: AFIB/PVC/STACH "
              f"{s['false/10min (AFIB,PVC,STACH)']:.2f}, all of {'/'.join(SCAN_FINDINGS)} "
              f"{s['false/10min (all five)']:.2f} ("
              + ", ".join(f"{k[6:]} {v:.0f}" for k, v in s.items() if k.startswith("false "))
              + f" over {sum(q[-1].end_s for _, q in runs) / 60:.0f} min of records); "
              f"baseline AF {b['false/10min (all five)']:.2f}")
    if args.tune_af:
        import pickle

        out = args.scans or Path(f"scans-fold{fold}.pkl")
        out.write_bytes(pickle.dumps((fold, made, scanned)))
        print(f"  scans written to {out}; the grid: --af-cv {out} [more folds' scans]")
    if args.tune:
        # the rule: among sustained rates (N >= 2 windows, >= 15 s: a single 10-s window of
        # fast or slow rate is not a Holter episode; N = 1 is printed for reference), the N
        # with the best mean STACH and SBRAD F1 over both lead sets among those with <= 1
        # false episode per 10 min of normal ECG (all five findings) in both
        ok = [n for n, ss in grid.items()
              if n >= 2 and all(x["false/10min (all five)"] <= 1.0 for x in ss)]
        best = max(ok, key=lambda n: (np.mean([x[c + " F1"] for x in grid[n] for c in RATE]),
                                      -n), default=None)
        print(f"  SUSTAINED choice (N >= 2, both lead sets, <= 1 false episode per 10 min, best "
              f"mean STACH/SBRAD F1, fewer windows on a tie): {best}")


def tune(name: str, runs: list[tuple[Scan, tuple[Piece, ...]]],
         grid: dict[int, list[dict[str, float]]]) -> None:
    """Print the episode-rule grids on `runs`; gather the SUSTAINED grid's scores in `grid`."""
    def line(s: dict[str, float]) -> str:
        return (", ".join(f"{k} {v:.2f}" for k, v in s.items() if "F1" in k or "/10min" in k)
                + f", PVC recall {s['PVC recall']:.2f}; false: "
                + " ".join(f"{k[6:]} {v:.0f}" for k, v in s.items() if k.startswith("false ")))

    print(f"  {name}: grid of the episode rule (OFF x MIN_WINDOWS x SINGLE; STACH/SBRAD as "
          f"the other findings)")
    for off in (1.0, 0.7, 0.5):
        for mw in (2, 3):
            for single in (1.01, 0.99, 0.95, 0.9):
                s = score(runs, [merge(sc.windows, SCAN_FINDINGS, off, mw, single, {},
                                       (off, mw)) for sc, _ in runs])
                print(f"    OFF {off:.1f} MIN_WINDOWS {mw} SINGLE {single:.2f}: {line(s)}")
    print(f"  {name}: SUSTAINED grid (windows a STACH / SBRAD episode needs; OFF {OFF}, "
          f"MIN_WINDOWS {MIN_WINDOWS}, SINGLE {SINGLE})")
    for n in (1, 2, 3, 4, 5, 6):
        s = score(runs, [merge(sc.windows, SCAN_FINDINGS, OFF, MIN_WINDOWS, SINGLE,
                               dict.fromkeys(RATE, n), (OFF, MIN_WINDOWS)) for sc, _ in runs])
        grid.setdefault(n, []).append(s)
        print(f"    SUSTAINED {n}: {line(s)}")


def mitdb(rg: Regen, record: Path) -> None:
    import wfdb

    ann = wfdb.rdann(str(record), "atr")
    sym = np.array(ann.symbol)
    fs = float(wfdb.rdheader(str(record)).fs)
    truth = {k: ann.sample[sym == k] / fs for k in ("A", "V")}
    t = time.perf_counter()
    sc = scan(rg, record, progress=False)
    dt = time.perf_counter() - t
    m = measure(read_ecg(record))
    print(f"(b) MIT-BIH {record.name}: {len(truth['A'])} APCs, {len(truth['V'])} PVC "
          f"(.atr); scan {dt:.1f} s")
    for name, beats in (("regen scan", [(e.time_s, e.origin) for e in sc.events
                                        if e.kind == "premature"]),
                        ("baseline: one measure() over the whole record",
                         [(b.time_s, b.kind) for b in m.premature_beats])):
        t_all = np.array([b[0] for b in beats])
        found = {k: sum(len(t_all) and np.abs(t_all - x).min() <= 1.0 for x in v)
                 for k, v in truth.items()}
        kinds = {k: sum(len(t_all) and np.abs(t_all - x).min() <= 1.0
                        and beats[int(np.abs(t_all - x).argmin())][1]
                        == ("ventricular" if k == "V" else "supraventricular") for x in v)
                 for k, v in truth.items()}
        print(f"    {name}: {len(beats)} premature beats; APCs within 1 s "
              f"{found['A']}/{len(truth['A'])} ({kinds['A']} as supraventricular), PVC "
              f"{found['V']}/{len(truth['V'])} ({kinds['V']} as ventricular)")
    af = [e for e in sc.episodes if e.finding == "AFIB"]
    print(f"    AF episodes {len(af)} (truth 0); AF burden {sc.summary.af_burden:.1%}; "
          f"episodes {sc.summary.episodes}")


def tile(record: Path, hours: float, out: Path) -> Path:
    """A WFDB record of `hours` made by repeating `record`'s samples (format 16), written
    tile by tile so memory stays small."""
    import wfdb

    r = wfdb.rdrecord(str(record), physical=False)
    d = np.asarray(r.d_signal, np.int16)                    # (samples, leads)
    total = int(hours * 3600 * r.fs)
    name = out / f"tiled{hours:g}h"
    with open(str(name) + ".dat", "wb") as f:
        done = 0
        while done < total:
            part = d[: total - done]
            f.write(part.astype("<i2").tobytes())
            done += len(part)
    lines = [f"{name.name} {r.n_sig} {r.fs:g} {total}"]
    for i in range(r.n_sig):
        lines.append(f"{name.name}.dat 16 {r.adc_gain[i]:g}/{r.units[i]} 11 "
                     f"{r.baseline[i]} 0 0 0 {r.sig_name[i]}")
    Path(str(name) + ".hea").write_text("\n".join(lines) + "\n")
    return name


def scale(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rec = tile(args.mitdb, args.hours, Path(tmp))
        size = Path(str(rec) + ".dat").stat().st_size / 2**20
        print(f"(c) scale: {args.hours:g} h of MIT-BIH 100 tiled, 2 leads at 360 Hz "
              f"({size:.0f} MiB on disk), streamed in a child process (progress bar on stderr)")
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--scale-child", str(rec), "--home",
                        str(args.home)] + (["--plot", str(args.plot)] if args.plot else []),
                       check=True)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"    wall {dt:.0f} s (with start-up), {args.hours / (dt / 60):.2f} h of ECG per "
              f"minute -> 24 h in {24 / (args.hours / (dt / 60)):.1f} min; peak RSS "
              f"{rss:.0f} MiB")


def scale_child(rec: str, home: Path, plot: Path | None) -> None:
    with Regen.open(home) as rg:
        _ = rg.diagnoser    # fitted or loaded before the clock starts
        t = time.perf_counter()
        sc = scan(rg, rec, progress=True)
        dt = time.perf_counter() - t
    if plot:
        from regen.scan_plot import plot_scan

        print(f"    timeline: {plot_scan(sc, plot)}")
    print(f"    scan alone {dt:.0f} s for {len(sc.windows)} windows; summary: "
          + "; ".join(sc.summary.lines()[:2]))


def edf_of(rec: Path, out: Path) -> Path:
    """The WFDB record `rec` written as EDF (16-bit at the record's gain, 1-s data records),
    read and written 10 minutes at a time."""
    import wfdb

    from regen.edf import write_edf

    h = wfdb.rdheader(str(rec))
    step = int(600 * h.fs)
    chunks = (np.asarray(wfdb.rdrecord(str(rec), sampfrom=a, sampto=min(h.sig_len, a + step)
                                       ).p_signal, np.float64).T
              for a in range(0, h.sig_len, step))
    return write_edf(out, chunks, float(h.fs), h.sig_name, h.sig_len, gain=h.adc_gain[0])


def edf(args: argparse.Namespace) -> None:
    """(d) EDF streamed by data records: the scan of an EDF file equals the scan of the WFDB
    record it was written from, and peak memory stays flat with the length; baseline: the
    EDF read whole (`read_ecg`, wfdb's EDF reader) and then scanned."""
    with tempfile.TemporaryDirectory() as tmp:
        print("(d) EDF: MIT-BIH 100 tiled and written as EDF, each scan in its own child "
              "process (peak RSS of that process)")
        for hours in args.edf_hours:
            rec = tile(args.mitdb, hours, Path(tmp))
            e = edf_of(rec, Path(tmp) / f"tiled{hours:g}h.edf")
            size = e.stat().st_size / 2**20
            got = {}
            for how, path in (("WFDB streamed", rec), ("EDF streamed", e),
                              ("EDF read whole (baseline)", e)):
                out = subprocess.run([sys.executable, __file__, "--edf-child", str(path),
                                      "--home", str(args.home)]
                                     + (["--whole"] if "whole" in how else []),
                                     check=True, capture_output=True, text=True).stdout
                digest, rss, dt = out.split()[-3:]
                got[how] = digest
                print(f"    {hours:g} h ({size:.0f} MiB EDF), {how}: scan {float(dt):.0f} s, "
                      f"peak RSS {float(rss):.0f} MiB, result {digest}")
            same = len(set(got.values())) == 1
            print(f"    {hours:g} h: the three scans give the same windows, episodes, events "
                  f"and summary: {same}")


def edf_reading(args: argparse.Namespace) -> None:
    """(e) Reading alone (no model, so the reader's own memory shows): every 10-s window of a
    long EDF file read as the scan reads it, in a child process; baseline: the file read
    whole by `read_ecg` (wfdb's EDF reader), in another."""
    with tempfile.TemporaryDirectory() as tmp:
        for hours in args.read_hours:
            rec = tile(args.mitdb, hours, Path(tmp))
            e = edf_of(rec, Path(tmp) / f"tiled{hours:g}h.edf")
            Path(str(rec) + ".dat").unlink()
            size = e.stat().st_size / 2**20
            for how in ("streamed by data records", "read whole (baseline)"):
                out = subprocess.run([sys.executable, __file__, "--read-child", str(e), "--home",
                                      "-"] + (["--whole"] if "whole" in how else []),
                                     check=True, capture_output=True, text=True).stdout
                n, rss, dt = out.split()[-3:]
                print(f"(e) EDF {hours:g} h ({size:.0f} MiB), {how}: {n} windows read in "
                      f"{float(dt):.1f} s, peak RSS {float(rss):.0f} MiB")


def read_child(path: str, whole: bool) -> None:
    from regen.scan import _Source, _windows

    t = time.perf_counter()
    src = _Source(read_ecg(path) if whole else path)
    w = int(10 * src.fs)
    starts = _windows(src.n, w, w // 2)
    for a in starts:
        src.read(a, a + w)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(len(starts), f"{rss:.0f}", f"{dt:.1f}")


def edf_child(path: str, home: Path, whole: bool) -> None:
    import hashlib
    import json

    with Regen.open(home) as rg:
        _ = rg.diagnoser
        t = time.perf_counter()
        sc = scan(rg, read_ecg(path) if whole else path, progress=False)
        dt = time.perf_counter() - t
    j = sc.to_json()
    j.pop("record")
    digest = hashlib.sha256(json.dumps(j, sort_keys=True).encode()).hexdigest()[:12]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(digest, f"{rss:.0f}", f"{dt:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--mitdb", type=Path)
    ap.add_argument("--home", type=Path, help="the home to scan with (all parts but --af-cv)")
    ap.add_argument("--records", type=int, default=6)
    ap.add_argument("--per", type=int, default=60)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--tune-af", action="store_true",
                    help="scan spliced records of --fold (HOME without that fold) and write "
                         "them to --scans, for --af-cv")
    ap.add_argument("--fold", type=int, default=8,
                    help="the held-out fold of --tune / --tune-af (1-8; never 9)")
    ap.add_argument("--scans", type=Path, help="where --tune-af writes its scans")
    ap.add_argument("--af-weights", type=lambda v: tuple(float(x) for x in v.split(",")),
                    help="--tune-af: the measured AF score's weights fitted without --fold "
                         "(bench/af_fit.py prints them), in place of AF_WEIGHTS")
    ap.add_argument("--af-cv", type=Path, nargs="+",
                    help="--tune-af scans of held-out folds: the AF_BLEND x AF_CUT grid")
    ap.add_argument("--rate-run", default="3-4", type=lambda v: tuple(map(int, v.split("-"))),
                    help="STACH and SBRAD ECGs per run, LO-HI (1-1: single 10-s ECGs)")
    ap.add_argument("--skip", default="", help="parts to skip: a, b, c, d, e")
    ap.add_argument("--plot", type=Path, help="write the long record's timeline here")
    ap.add_argument("--edf-hours", default="1,3",
                    type=lambda v: [float(x) for x in v.split(",")],
                    help="lengths (h) of the EDF files of part d, comma-separated")
    ap.add_argument("--scale-child", help=argparse.SUPPRESS)
    ap.add_argument("--read-hours", default="1,24",
                    type=lambda v: [float(x) for x in v.split(",")],
                    help="lengths (h) of the EDF files of part e, comma-separated")
    ap.add_argument("--edf-child", help=argparse.SUPPRESS)
    ap.add_argument("--read-child", help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.af_cv:
        af_cv(args.af_cv)
        return
    if (args.tune or args.tune_af) and not 1 <= args.fold <= 8:
        ap.error(f"--fold {args.fold}: tuning uses folds 1-8 only (fold 9 reports)")
    if args.home is None:
        ap.error("--home HOME is needed to scan (all parts but --af-cv)")
    if args.af_weights:
        import regen.measured

        if not args.tune_af or len(args.af_weights) != len(regen.measured.AF_WEIGHTS):
            ap.error(f"--af-weights: {len(regen.measured.AF_WEIGHTS)} numbers, with --tune-af")
        regen.measured.AF_WEIGHTS = args.af_weights
    if args.scale_child:
        scale_child(args.scale_child, args.home, args.plot)
        return
    if args.edf_child:
        edf_child(args.edf_child, args.home, args.whole)
        return
    if args.read_child:
        read_child(args.read_child, args.whole)
        return
    with Regen.open(args.home) as rg:
        if args.data and "a" not in args.skip:
            spliced(rg, args, args.fold if args.tune or args.tune_af else 9)
        if args.tune or args.tune_af:
            return
        if args.mitdb and "b" not in args.skip:
            mitdb(rg, args.mitdb)
    if args.mitdb and "c" not in args.skip:
        scale(args)
    if args.mitdb and "d" not in args.skip:
        edf(args)
    if args.mitdb and "e" not in args.skip:
        edf_reading(args)


if __name__ == "__main__":
    main()
