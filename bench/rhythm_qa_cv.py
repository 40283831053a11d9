"""ECG-QA's questions about rhythm and form statements answered by the answer model's vote,
or with the report's decision (`regen.api.FROM_REPORT`) on the rhythms, or on the rhythms and
the findings a measurement decides in reports (PR, premature beats), by leave-one-fold-out
inside the corpus folds: for each fold, a home built from the others, and the derived
questions (`regen.qa_data.derive_questions`: template 1 with an option a report decides, and
101-106) about that fold's ECGs; a fourth mode takes every finding a report decides; two more
take every finding but those whose labeller label carries PTB-XL's own SCP code in under 50% /
60% of the training folds' ECGs (`agreeing`); the last takes every finding on the side of 0.5
its probability gives, not the report's decision (`regen.api.AGREE_WITH_DECISIONS` off). Prints
each fold and the pooled accuracy of each.
regen/api.py's FROM_REPORT comes from the pooled rows.

    python bench/rhythm_qa_cv.py --data PTBXL [--folds 1-8] [--per-template 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = (1, 101, 102, 103, 104, 105, 106)
RHYTHMS = frozenset({"SR", "AFIB", "STACH", "SBRAD", "SARRH"})
MEASURED = frozenset({"1AVB", "LPR", "PVC", "PAC"})
MODES = {"vote": frozenset(), "rhythms": RHYTHMS, "rhythms+measured": RHYTHMS | MEASURED,
         "all report findings": None}       # None: every finding a report decides
# Modes that leave to the vote the statements whose labeller label implies PTB-XL's SCP code
# in fewer than this share of the training folds' ECGs (LOWT: a report's "low or flat T waves"
# is coded LOWT in 44% of folds 1-8, NDT as often): computed per held-out fold.
AGREEMENT = (0.5, 0.6)


def agreeing(train, level: float) -> frozenset[str]:
    """The findings whose labeller label carries the same SCP code in at least `level` of the
    training ECGs that have the label."""
    from regen.findings import FINDINGS
    from regen.labeller import label_report

    has: dict[str, list[bool]] = defaultdict(list)
    for r in train:
        for c in label_report(r.report("en")):
            has[c].append(c in r.scp)
    return frozenset(c for c in FINDINGS if not has[c] or sum(has[c]) / len(has[c]) >= level)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--folds", default="1-8")
    ap.add_argument("--per-template", type=int, default=50)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import regen.api as api
    from regen import Regen, load_settings
    from regen.corpus import load_ptbxl
    from regen.findings import FINDINGS
    from regen.qa_data import SCP_NAMES, derive_questions, record_ecg_id
    from regen.rebuild import rebuild

    records = load_ptbxl(args.data, folds=args.folds)
    folds = sorted({int(str(r.split)) for r in records})
    pooled: dict[tuple[str, int], list[bool]] = defaultdict(list)
    asked = {SCP_NAMES[c] for c in FINDINGS if c in SCP_NAMES}
    for held in folds:
        train = [r for r in records if int(str(r.split)) != held]
        test = [r for r in records if int(str(r.split)) == held]
        by_id = {record_ecg_id(r): r for r in test}
        items = [it for it in derive_questions(test, seed=0, per_template=args.per_template)
                 if it.template_id in TEMPLATES
                 and (it.template_id != 1 or it.attribute[0] in asked)]
        with tempfile.TemporaryDirectory(prefix="regen-rhythm-cv-") as home:
            rebuild(load_settings(home), train, progress=False,
                    data_source=f"{args.data}:folds without {held}")
            modes = dict(MODES)
            for level in AGREEMENT:
                modes[f"report findings agreeing >= {level}"] = agreeing(train, level)
                print(f"fold {held}: agreeing >= {level} leaves to the vote "
                      f"{sorted(set(FINDINGS) - modes[f'report findings agreeing >= {level}'])}",
                      flush=True)
            modes["all report findings, probabilities only"] = None
            with Regen.open(home) as rg:
                for flag, codes in modes.items():
                    api.FROM_REPORT = codes
                    # the last mode: each finding's probability alone decides its side of 0.5,
                    # not the report's (consistent) decision
                    api.AGREE_WITH_DECISIONS = flag != "all report findings, probabilities only"
                    got: dict[int, list[bool]] = defaultdict(list)
                    for it in items:
                        a = rg.ask(by_id[it.ecg_ids[0]].path, it.question,
                                   options=list(it.attribute) if it.attribute else None,
                                   log=False)
                        ok = set(a.options) == set(it.answer)
                        got[it.template_id].append(ok)
                        pooled[(flag, it.template_id)].append(ok)
                    print(f"fold {held} {flag}: " + "; ".join(
                        f"template {t} {sum(v) / len(v):.3f} (n={len(v)})"
                        for t, v in sorted(got.items())), flush=True)
    for flag in dict.fromkeys(f for f, _ in pooled):      # the modes in the order they ran
        allv = [ok for (f, _), v in pooled.items() if f == flag for ok in v]
        print(f"pooled {flag}: " + "; ".join(
            f"template {t} {sum(pooled[(flag, t)]) / len(pooled[(flag, t)]):.3f} "
            f"(n={len(pooled[(flag, t)])})" for t in TEMPLATES if pooled[(flag, t)])
            + f"; all {sum(allv) / len(allv):.3f} (n={len(allv)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
