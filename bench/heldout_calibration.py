"""How far the findings' calibration is from the truth on ECGs the encoder never saw, and the
correction (`regen.findings.HeldOut`) that the shipped encoder's folder carries.

Every probability regen states is Platt-calibrated on out-of-fold (OOF) scores inside the
corpus (`regen.findings.fit`). The shipped encoder was trained on the same corpus folds, so
its neighbours are closer there than a new ECG's, and the OOF scores are optimistic. This
measures that with encoders trained the same way, each without one corpus fold:

    regen train --data PTBXL --folds 1-7 --val-folds 8 --out runs/enc-no8
    regen train --data PTBXL --folds 1-6,8 --val-folds 7 --out runs/enc-no7
    python bench/heldout_calibration.py --data PTBXL \\
        --encoder runs/enc-no8 --heldout-fold 8 --encoder runs/enc-no7 --heldout-fold 7 \\
        [--cache DIR] [--write regen/weights/default/heldout.json]

For each pair it builds a home with that encoder on the other corpus folds (its findings and
answer models are fitted there as usual, OOF inside them), and scores the held-out fold, which
neither the encoder nor the models saw: report findings against the labeller's labels of each
ECG's own report, answer options against its PTB-XL annotations. The pairs' ECGs are pooled.
The correction is chosen among a few forms, all monotone per finding (decisions keep their
order, only the probabilities move):

* none;
* shrink: logit p' = logit q_f + a (logit p - logit q_f), one `a` for every finding, with q_f
  the finding's corpus rate (a < 1 pulls over-confident probabilities toward the base rate);
* platt: logit p' = a logit p + b, one (a, b) for every finding.

by 5-fold cross-validation over the held-out ECGs (pooled log loss), then fitted on all of
them. ECE per superclass is printed before and after, beside the floor a perfectly calibrated
model shows on as many ECGs. Folds 9 and 10 are never read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FORMS = ("none", "shrink", "platt")
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


def build_home(data: Path, encoder: Path, folds: str, home: Path) -> None:
    env = {**os.environ, "REGEN_ENCODER": str(encoder), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "regen", "index", "rebuild", "--data", str(data),
                    "--folds", folds, "--home", str(home)], check=True, env=env)


def collect(home: Path, data: Path, fold: str, encoder: Path) -> dict[str, np.ndarray]:
    """Probabilities (raw model outputs, no correction) and truths on the held-out fold."""
    from regen.api import Regen
    from regen.corpus import load_ptbxl
    from regen.findings import HeldOut
    from regen.labeller import LABELS, label_report
    from regen.qa_data import ANY_KIND, SINGLE_ANSWER_GROUPS, record_answers
    from regen.qa_model import SEP
    from regen.reader import read_ecg

    rg = Regen.open(home, encoder=encoder, heldout_calibration=False)
    assert rg.heldout_for("report") == HeldOut()
    qs = [r for r in load_ptbxl(data, folds=fold) if r.reports.get(rg.settings.language)]
    loaded = [read_ecg(q.path) for q in qs]
    z, _ = rg._embed_noted(loaded)
    dg, am = rg.diagnoser, rg.answers
    p, _, _ = dg.probabilities(z, *rg._voters(loaded, z, dg.k, dg.targets))
    nl = len(LABELS)
    y = np.array([[c in label_report(q.reports[rg.settings.language]) for c in LABELS]
                  for q in qs])
    rate = dg.model.base_rate[:nl]
    pa = am.probabilities(z, *rg._voters(loaded, z, am.k, am.targets))
    names = am.model.findings
    ya = np.zeros((len(qs), len(names)), bool)
    ka = np.ones_like(ya)
    for i, q in enumerate(qs):
        ans = record_answers(q)
        for option, group in ANY_KIND.items():
            if ans.get(group):
                ans[group] = ans[group] | {option}
        for j, n in enumerate(names):
            g, o = n.split(SEP)
            ya[i, j] = o in ans.get(g, ())
            # as in the answer model's targets: a one-answer group with no answer is unknown
            ka[i, j] = g not in SINGLE_ANSWER_GROUPS or bool(ans.get(g))
    known_a = am.targets.known.any(0) & (am.targets.y.sum(0) >= 3)
    rate_a = am.model.base_rate
    return {"p": p[:, :nl], "y": y, "known": np.ones_like(y), "rate": rate,
            "p_answers": pa[:, known_a], "y_answers": ya[:, known_a],
            "known_answers": ka[:, known_a], "rate_answers": rate_a[known_a],
            "names": np.array(LABELS), "names_answers": np.array(names)[known_a]}


def cv_forms(p: np.ndarray, y: np.ndarray, known: np.ndarray, rate: np.ndarray, seed: int = 0
             ) -> dict[str, float]:
    """5-fold CV over ECGs (rows) of each form's pooled log loss over the known entries;
    `rate` (M, F): the corpus rates each row's models had."""
    from regen.findings import HeldOut
    from regen.metrics import log_loss

    rng = np.random.default_rng(seed)
    part = rng.permutation(len(p)) % 5
    out = {}
    for form in FORMS:
        pred = np.empty_like(p)
        for k in range(5):
            tr, te = part != k, part == k
            h = HeldOut.fit(form, p[tr], y[tr], rate[tr], known[tr])
            pred[te] = h.apply(p[te], rate[te])
        out[form] = log_loss(pred[known], y[known])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, action="append", required=True,
                    help="an encoder trained without its --heldout-fold (repeat the pair for "
                         "more folds: their ECGs are pooled)")
    ap.add_argument("--heldout-fold", action="append", default=None,
                    help="the fold each --encoder never saw, in the same order (default 8)")
    ap.add_argument("--folds", default="1-8", help="the corpus folds; the others of them "
                    "are each pair's corpus")
    ap.add_argument("--home", type=Path, default=None,
                    help="folder for one home per pair (default: under /tmp)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder for an npz of each pair's collected scores")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the chosen correction here: heldout.json in the folder of "
                         "the encoder it corrects (trained on all the corpus folds)")
    args = ap.parse_args()

    from regen.corpus import parse_folds
    from regen.eval_findings import ece, ece_if_calibrated
    from regen.findings import HeldOut
    from regen.metrics import macro_auc

    held = args.heldout_fold or ["8"]
    if len(held) != len(args.encoder):
        ap.error(f"{len(args.encoder)} --encoder but {len(held)} --heldout-fold")
    folds = sorted(parse_folds(args.folds) or ())
    parts, aucs = [], []
    for enc, fold in zip(args.encoder, held):
        corpus = ",".join(str(f) for f in folds if str(f) != fold)
        cache = args.cache / f"heldout-{fold}.npz" if args.cache else None
        if cache and cache.exists():
            d = dict(np.load(cache))
        else:
            home = (args.home or Path(f"/tmp/regen-heldout-{os.getpid()}")) / f"fold{fold}"
            build_home(args.data, enc, corpus, home)
            d = collect(home, args.data, fold, enc)
            if cache:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, **d)
        d["fingerprint"] = json.loads((enc / "config.json").read_text())["fingerprint"]
        names = [str(n) for n in d["names"]]
        sup = [names.index(s) for s in SUPERCLASSES]
        aucs.append(macro_auc(d["y"][:, sup], d["p"][:, sup])[0])
        print(f"held-out fold {fold}: {len(d['p'])} ECGs; encoder {d['fingerprint']} and "
              f"findings models from folds {corpus} only; superclass macro AUC (fused "
              f"probabilities) {aucs[-1]:.4f}")
        parts.append(d)
    if len(aucs) > 1:
        print(f"superclass macro AUC over the held-out folds: {np.mean(aucs):.4f} ± "
              f"{np.std(aucs, ddof=1):.4f}")

    def pooled(key: str, rate_key: str | None = None) -> np.ndarray:
        if rate_key:        # each pair's corpus rates, one row per held-out ECG
            return np.concatenate([np.broadcast_to(d[rate_key], d[key].shape) for d in parts])
        return np.concatenate([d[key] for d in parts])

    # answer options: those every pair's answer model knows (a corpus lacking an option's
    # positives does not model it), in the first pair's order
    common = [n for n in parts[0]["names_answers"]
              if all(n in set(x["names_answers"]) for x in parts)]
    for x in parts:
        col = [list(x["names_answers"]).index(n) for n in common]
        for key in ("p_answers", "y_answers", "known_answers"):
            x[key] = x[key][:, col]
        x["rate_answers"] = x["rate_answers"][col]
    d = {k: pooled(k) for k in ("p", "y", "known", "p_answers", "y_answers", "known_answers")}
    d["rate"], d["rate_answers"] = pooled("p", "rate"), pooled("p_answers", "rate_answers")
    d["names"] = parts[0]["names"]
    p, y, rate = d["p"], d["y"], d["rate"]
    names = [str(n) for n in d["names"]]
    sup = [names.index(s) for s in SUPERCLASSES]
    rows = {}
    for what, (pp, yy, kk, rr) in {
            "report findings": (p, y, d["known"], rate),
            "answer options": (d["p_answers"], d["y_answers"], d["known_answers"],
                               d["rate_answers"])}.items():
        cv = cv_forms(pp, yy, kk, rr)
        best = min(FORMS, key=lambda f: (round(cv[f], 5), FORMS.index(f)))
        fitted = {f: HeldOut.fit(f, pp, yy, rr, kk) for f in FORMS}
        rows[what] = (cv, best, fitted)
        print(f"\n{what} ({pp.shape[1]} columns): 5-fold CV log loss over the held-out ECGs")
        for f in FORMS:
            print(f"  {f:7s} {cv[f]:.5f}  fitted on all: {fitted[f].describe()}"
                  f"{'  <- chosen' if f == best else ''}")
    cv, best, fitted = rows["report findings"]
    print("\nECE per superclass on the held-out ECGs (10 bins): "
          "uncorrected / chosen correction (in-sample) / floor if calibrated (mean, p95)")
    for s, c in zip(SUPERCLASSES, sup):
        e0 = ece(p[:, c], y[:, c])[0]
        pc = fitted[best].apply(p, rate)[:, c]
        e1 = ece(pc, y[:, c])[0]
        fl = ece_if_calibrated(pc)
        print(f"  {s:5s} {e0:.3f} / {e1:.3f}  floor {fl['mean']:.3f} / {fl['p95']:.3f};"
              f" mean p {p[:, c].mean():.3f} -> {pc.mean():.3f}, rate {y[:, c].mean():.3f}")
    if args.write:
        meta = json.loads((args.write.parent / "config.json").read_text())
        out = {"applies_to": meta["fingerprint"], "report": fitted[best].to_json(),
               "answers": rows["answer options"][2][rows["answer options"][1]].to_json(),
               "made_with": {"encoders": [str(x["fingerprint"]) for x in parts],
                             "heldout_folds": held,
                             "heldout_superclass_auc": [round(a, 4) for a in aucs],
                             "n": int(len(p)),
                             "cv_logloss": {k: v[0] for k, v in rows.items()},
                             "command": "python bench/heldout_calibration.py --data PTBXL "
                                        + " ".join(f"--encoder ENC_WITHOUT_{f} --heldout-fold "
                                                   f"{f}" for f in held) + " --write FILE"}}
        args.write.write_text(json.dumps(out, indent=1) + "\n")
        print(f"\nwrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
