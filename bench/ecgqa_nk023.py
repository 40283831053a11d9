"""Does regen's ECG-QA reading (regen.ecgqa_features: neurokit2 0.3 with 0.2.3's choices restored)
give the points neurokit2 0.2.3 itself gives? 0.2.3 needs an old numpy and pandas, so it runs in
a throw-away environment, and this script has two halves:

    python3 -m venv /tmp/nk023 && /tmp/nk023/bin/pip install numpy==1.23.5 pandas==1.5.3 \
        scipy==1.10.1 scikit-learn==1.2.2 matplotlib==3.7.1 PyWavelets==1.4.1 \
        neurokit2==0.2.3 wfdb==4.1.0
    /tmp/nk023/bin/python bench/ecgqa_nk023.py dump --data PTBXL --ids 1-200 --out pts023.json
    python bench/ecgqa_nk023.py compare --data PTBXL --points pts023.json

`dump` (old environment: wfdb and neurokit2 only) writes 0.2.3's delineation of lead II at
500 Hz per ECG; `compare` (regen's environment) reads the same ECGs with regen's reading, with
and without the restored choices, and prints the share of equal points per wave point.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

POINTS = ("P_Onsets", "P_Offsets", "Q_Peaks", "R_Onsets", "S_Peaks", "T_Offsets")


def _ids(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _path(data: Path, ecg_id: int) -> Path:
    return data / "records100" / f"{ecg_id // 1000 * 1000:05d}" / f"{ecg_id:05d}_lr"


def dump(data: Path, ids: list[int], out: Path) -> None:
    import neurokit2 as nk
    import wfdb
    from scipy.signal import resample_poly

    warnings.filterwarnings("ignore")
    got: dict[str, dict] = {}
    for e in ids:
        if not _path(data, e).with_suffix(".hea").exists():
            continue
        sig, fields = wfdb.rdsamp(str(_path(data, e)))
        x = resample_poly(sig[:, [n.upper() for n in fields["sig_name"]].index("II")], 5, 1)
        try:
            clean = nk.ecg_clean(x, sampling_rate=500)
            r = np.asarray(nk.ecg_peaks(clean, sampling_rate=500)[1]["ECG_R_Peaks"])
            waves = nk.ecg_delineate(clean, r, sampling_rate=500, method="dwt")[1]
        except Exception as exc:  # noqa: BLE001 - a bad signal: recorded, not fatal
            got[str(e)] = {"error": repr(exc)[:100]}
            continue
        got[str(e)] = {k[4:]: [None if v is None or not np.isfinite(v) else int(v)
                               for v in np.asarray(waves[k], float)] for k in waves}
    out.write_text(json.dumps({"neurokit2": nk.__version__, "points": got}))
    print(f"neurokit2 {nk.__version__}: {len(got)} ECGs -> {out}")


def compare(data: Path, points: Path) -> None:
    from regen.ecgqa_features import beat_points
    from regen.reader import read_ecg

    doc = json.loads(points.read_text())
    for as_ecgqa in (True, False):
        same: dict[str, list[bool]] = {k: [] for k in POINTS}
        for e, old in doc["points"].items():
            if "error" in old:
                continue
            new, _ = beat_points(read_ecg(_path(data, int(e))), as_ecgqa=as_ecgqa)
            if new is None:
                continue
            for k in POINTS:
                a = np.array([np.nan if v is None else v for v in old[k]], float)
                n = min(len(a), len(new[k]))
                b = new[k][:n]
                same[k] += ((a[:n] == b) | (np.isnan(a[:n]) & np.isnan(b))).tolist()
        label = "0.2.3's choices restored" if as_ecgqa else "the installed version's own"
        print(f"regen's reading, {label}, against neurokit2 {doc['neurokit2']}: share of equal "
              "points: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in same.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("dump", "compare"))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--ids", default="1-200")
    ap.add_argument("--out", type=Path, default=Path("pts023.json"))
    ap.add_argument("--points", type=Path, default=Path("pts023.json"))
    args = ap.parse_args()
    if args.mode == "dump":
        dump(args.data, _ids(args.ids), args.out)
    else:
        compare(args.data, args.points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
