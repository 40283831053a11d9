"""Report label F1 on one query fold read by two labellers and against PTB-XL's own codes.

The labeller decides what `regen eval report`'s label F1 counts, so a change to it moves that
figure for the same texts. This bench writes a report for every query-fold ECG with an English
reference (through `Regen.reports`, the home's build), then prints, for the texts:

- label F1 against the reference, both read by the labeller of this checkout;
- the same with both read by the labeller of git revision `--old` (default 05f1619, before a
  prolonged PR interval was read as first-degree AV block);
- label F1 against the queries' PTB-XL SCP codes (`regen.labeller.truth_labels`), the text read
  by each of the two labellers.

Run it from an older checkout (PYTHONPATH=that checkout, with a home built by it) to score that
code's texts the same way.

    python bench/labeller_readings.py --data PTBXL --home HOME [--folds 9] [--old REV]
        [--labels 1AVB,LPR,CD] [--dump texts.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def old_labeller(rev: str):
    """regen/labeller.py as of `rev`, loaded as a module of its own."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:regen/labeller.py"],
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="regen-labeller-")) / "labeller_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("labeller_old", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["labeller_old"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--folds", default="9")
    ap.add_argument("--old", default="05f1619")
    ap.add_argument("--labels", default="1AVB,LPR,CD")
    ap.add_argument("--dump", type=Path, default=None, help="write the texts here (JSON)")
    args = ap.parse_args()

    from regen import Regen
    from regen.corpus import load_ptbxl
    from regen.labeller import label_f1, label_report, truth_labels

    queries = [q for q in load_ptbxl(args.data, folds=args.folds) if q.reports.get("en")]
    with Regen.open(args.home) as rg:
        reports = list(rg.reports([q.path for q in queries], log=False))
    hyps = [r.text for r in reports]
    refs = [q.reports["en"] for q in queries]
    codes = [truth_labels(q.scp) for q in queries]
    if args.dump:
        args.dump.write_text(json.dumps([{"path": str(q.path), "text": h}
                                         for q, h in zip(queries, hyps)]))
    show = [c for c in args.labels.split(",") if c]
    print(f"{len(queries)} reports, folds {args.folds}, home {args.home}")
    for name, read in (("this checkout's labeller", label_report),
                       (f"labeller of {args.old}", old_labeller(args.old).label_report)):
        said = [read(h) for h in hyps]
        vs_text = label_f1(said, [read(r) for r in refs])
        vs_codes = label_f1(said, codes)
        per = "; ".join(f"{c} {vs_text.per_label[c]['f1']:.3f} / {vs_codes.per_label[c]['f1']:.3f}"
                        for c in show)
        print(f"{name}: label F1 against the reference {vs_text.macro_f1:.4f}, against PTB-XL's "
              f"codes {vs_codes.macro_f1:.4f}; per label (reference / codes): {per}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
