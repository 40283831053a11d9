"""The ECG-QA reading's noise gate (regen.ecgqa_features.MIN_BEAT_CORR): how alike the beats of
lead II are (`beat_consistency`, as the reading computes it at 500 Hz) on real ECGs of the corpus
folds against white noise, and the share of each the gate stops.

    python bench/ecgqa_noise_gate.py --data PTBXL [--folds 1-8] [--every 4] [--noise 40]

The gate was set between the two: above the loudest white-noise draw, below all but a few real
ECGs.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    ap.add_argument("--every", type=int, default=4, help="every n-th record of the folds")
    ap.add_argument("--noise", type=int, default=40, help="white-noise draws (10 s, 100 Hz)")
    args = ap.parse_args()

    import neurokit2 as nk

    from regen.corpus import load_ptbxl
    from regen.ecg import ECG
    from regen.ecgqa_features import FS, MIN_BEAT_CORR, beat_consistency, lead_signal
    from regen.prepare import resample
    from regen.reader import read_ecg

    warnings.filterwarnings("ignore")

    def score(ecg: ECG) -> float:
        x, _ = lead_signal(ecg)
        assert x is not None
        x = resample(x[None, :], ecg.fs, FS)[0].astype(float)
        clean = nk.ecg_clean(x, sampling_rate=FS)
        r = np.asarray(nk.ecg_peaks(clean, sampling_rate=FS)[1]["ECG_R_Peaks"], dtype=int)
        c = beat_consistency(clean, r, FS)
        return 0.0 if c is None else c

    records = load_ptbxl(args.data, folds=args.folds)[:: args.every]
    real = np.array([score(read_ecg(r.path)) for r in records])
    rng = np.random.default_rng(1)
    noise = np.array([score(ECG(rng.normal(0, 1, (1, 1000)).astype(np.float32), 100.0, ("II",),
                                f"noise{i}")) for i in range(args.noise)])
    print(f"gate: beats kept when their median correlation with the median beat >= "
          f"{MIN_BEAT_CORR}")
    print(f"  PTB-XL folds {args.folds}, lead II, {len(real)} ECGs: percentiles 0.5/1/5/50 "
          + " / ".join(f"{v:.3f}" for v in np.percentile(real, [0.5, 1, 5, 50]))
          + f"; stopped {np.mean(real < MIN_BEAT_CORR):.1%}")
    print(f"  white noise, {len(noise)} draws: max {noise.max():.3f}, median "
          f"{np.median(noise):.3f}; stopped {np.mean(noise < MIN_BEAT_CORR):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
