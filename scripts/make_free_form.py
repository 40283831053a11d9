"""Write the free-form question set (tests/fixtures/free_form_fold9.json) from PTB-XL's labels.

    python scripts/make_free_form.py --data PTBXL [--out tests/fixtures/free_form_fold9.json]

Questions in plain words, none in an ECG-QA template's wording, about fold-9 ECGs, with the
answer from the ECG's PTB-XL `scp_codes` (the cardiologists' annotation, not regen's
labeller). Per yes/no concept: two ECGs that have it and two that do not (seeded draw), so the
majority answer scores 0.5 on them; plus "What is the rhythm?" on two ECGs each of sinus
rhythm, AF, sinus tachycardia and sinus bradycardia. Written once, before anything was
measured on it; the file is committed and `regen eval free-form` reads it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (phrasings, PTB-XL codes that make the answer "yes")
CONCEPTS = [
    (["Is there evidence of an old inferior infarction?",
      "Could this be an inferior wall MI?"], {"IMI", "ILMI", "IPLMI", "IPMI"}),
    (["Are there signs of left ventricular hypertrophy?",
      "Is LV hypertrophy present?"], {"LVH"}),
    (["Is this ECG normal?", "Would you call this a normal tracing?"], {"NORM"}),
    (["Is the patient in atrial fibrillation?", "Is there AF on this tracing?"], {"AFIB"}),
    (["Is there an anteroseptal infarction?",
      "Any sign of a previous anteroseptal MI?"], {"ASMI"}),
    (["Is there a complete right bundle branch block?",
      "Does the QRS show a complete RBBB pattern?"], {"CRBBB"}),
    (["Is there a left anterior fascicular block?", "Any left anterior hemiblock?"],
     {"LAFB"}),
    (["Is the PR interval prolonged, i.e. first degree AV block?",
      "Is there first-degree heart block?"], {"1AVB"}),
    (["Are there ST-T changes?", "Do the ST segments or T waves look abnormal?"],
     {"NDT", "NST_", "DIG", "LNGQT", "ISC_", "ISCAL", "ISCIN", "ISCIL", "ISCAS", "ISCLA",
      "ANEUR", "EL", "INJAS", "INJAL", "INJIN", "INJLA", "INJIL", "STD_", "STE_", "ISCAN"}),
    (["Is there a conduction problem?", "Any conduction disturbance on this ECG?"],
     {"LAFB", "IRBBB", "1AVB", "IVCD", "CRBBB", "CLBBB", "LPFB", "WPW", "ILBBB", "3AVB",
      "2AVB"}),
    (["Is the heart rate too fast with a sinus rhythm?", "Is this sinus tachycardia?"],
     {"STACH"}),
    (["Is this sinus bradycardia?", "Is the sinus rate slow?"], {"SBRAD"}),
    (["Are there premature ventricular beats?", "Any PVCs?"], {"PVC"}),
]
RHYTHMS = {"SR": "sinus rhythm", "AFIB": "atrial fibrillation", "STACH": "sinus tachycardia",
           "SBRAD": "sinus bradycardia", "SARRH": "sinus arrhythmia", "AFLT": "atrial flutter"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="tests/fixtures/free_form_fold9.json")
    args = ap.parse_args()
    from regen.corpus import load_ptbxl

    recs = load_ptbxl(args.data, folds="9")
    rng = random.Random(20261206)
    items = []
    for phrasings, codes in CONCEPTS:
        pos = [r for r in recs if codes & set(r.scp)]
        neg = [r for r in recs if not codes & set(r.scp)]
        for pool, ans in ((pos, "yes"), (neg, "no")):
            for j, r in enumerate(rng.sample(pool, min(2, len(pool)))):
                items.append({"ecg_id": int(r.key.split(":")[1]), "question": phrasings[j % 2],
                              "answer": ans, "kind": "yes/no",
                              "codes": sorted(codes & set(r.scp))})
    with_rhythm = [r for r in recs if len([c for c in r.scp if c in RHYTHMS]) == 1]
    for want in ("SR", "AFIB", "STACH", "SBRAD"):         # two of each: not all sinus rhythm
        pool = [r for r in with_rhythm if want in r.scp]
        for r in rng.sample(pool, min(2, len(pool))):
            items.append({"ecg_id": int(r.key.split(":")[1]),
                          "question": "What is the rhythm?", "answer": RHYTHMS[want],
                          "kind": "rhythm", "codes": [want]})
    out = {"source": "PTB-XL fold 9 scp_codes (ptbxl_database.csv); questions written by the "
                     "regen team in plain words, answers from the annotations",
           "made_by": "python scripts/make_free_form.py --data PTBXL", "items": items}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(items)} questions -> {args.out}")


if __name__ == "__main__":
    main()
