#!/usr/bin/env python3
"""Make a small, deterministic, stratified PTB-XL sample in the official release layout.

    python data/make_sample.py --ptbxl SRC_PTBXL_DIR --out data/ptbxl-sample \
        [--n 300] [--n-hr 6] [--seed 0]

SRC_PTBXL_DIR must hold the official PTB-XL layout (ptbxl_database.csv, scp_statements.csv,
LICENSE.txt, records100/, records500/) plus reports_en.csv (ecg_id,report_en), an English
translation of the `report` column that is not part of the official release.

Selection (only rows whose 100 Hz .hea/.dat exist and whose English report is non-empty and
free of mojibake, i.e. contains no 'Ã'):
  * about 80% of --n from strat_fold 1-8 (the retrieval corpus), 20% from strat_fold 9 (held-out
    queries); strat_fold 10 is never used;
  * in each part, the rarer diagnostic superclasses (NORM, MI, STTC, CD, HYP) are oversampled
    first, rarest first, until each has at least ~10.4% of the part (25 of 240 in the corpus,
    6 of 60 in fold 9 for --n 300); the rest is filled by proportional allocation over the
    superclass combinations (largest remainder), drawn at random within each combination;
  * the 38 duplicate ecg_ids dropped in PTB-XL v1.0.3 are never selected;
  * --n-hr of the selected records that have 500 Hz files also get their records500 copy,
    half from fold 9 and half from the corpus, covering as many superclasses as possible.
PTB-XL folds are patient-stratified, so no patient is in both parts.

The output is a pure function of the source files and --n/--n-hr/--seed. Only the Python standard
library is used. Exit status 2 with a message naming the file or column when something needed is
missing.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import random
import shlex
import shutil
import sys
from pathlib import Path
from typing import NoReturn

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
CORPUS_FOLDS = frozenset(range(1, 9))
QUERY_FOLD = 9
QUERY_SHARE = 0.2
# Minimum share of a part that each superclass must reach: 25/240 and 6/60 at --n 300.
MIN_SHARE_CORPUS = 25 / 240
MIN_SHARE_QUERY = 6 / 60
MOJIBAKE = "Ã"
# The 38 duplicate recordings that PTB-XL v1.0.3 drops (list at the end of its
# ptbxl_v103_changelog.txt). Some duplicate pairs sit in different strat_folds (140 in fold 9 /
# 1370 in fold 3; 461 in fold 9 / 9823 in fold 10), which would break the patient-stratified
# split, so they are never sampled. Every sampled ecg_id therefore also exists in v1.0.3.
V103_DROPPED = frozenset(
    (137, 139, 140, 141, 142, 143, 145, 11817, 456, 458, 459, 461, 462, 13796, 2506, 2511, 3795)
    + (3798, 3832, 5817, 7777, 7779, 7782, 9821, 9825, 9888, 15742, 11810, 11838, 13791, 13793)
    + (13797, 13799, 18150, 11814, 11815, 3800, 3801)
)

DB_COLUMNS = ("ecg_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
SCP_COLUMNS = ("diagnostic", "diagnostic_class")
REPORT_COLUMNS = ("ecg_id", "report_en")

csv.field_size_limit(sys.maxsize)


class SampleError(Exception):
    """A needed input is missing or unusable; reported with exit status 2."""


def fail(msg: str) -> NoReturn:
    raise SampleError(msg)


def need_file(path: Path) -> Path:
    if not path.is_file():
        fail(f"missing file: {path}")
    return path


def read_raw_rows(path: Path) -> tuple[str, list[str], list[tuple[list[str], str]]]:
    """Parse a CSV and keep, for every row, the exact raw text (all its lines) it came from.

    Returns (raw header text, header fields, [(fields, raw text)]).
    """
    buf: list[str] = []

    def lines():
        with open(path, encoding="utf-8", newline="") as f:
            for line in f:
                buf.append(line)
                yield line

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        fail(f"empty CSV file: {path}")
    header_raw = "".join(buf)
    buf.clear()
    rows = []
    for fields in reader:
        rows.append((fields, "".join(buf)))
        buf.clear()
    return header_raw, header, rows


def column_index(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        fail(f"missing column {name!r} in {path} (columns: {', '.join(header)})")
    return header.index(name)


def load_scp(path: Path) -> dict[str, str]:
    """Return {code: superclass} for the diagnostic statements."""
    _, header, rows = read_raw_rows(need_file(path))
    di = column_index(header, "diagnostic", path)
    ci = column_index(header, "diagnostic_class", path)
    out = {}
    for fields, _ in rows:
        if not fields:
            continue
        diag = fields[di].strip()
        if diag and float(diag) == 1.0 and fields[ci].strip():
            out[fields[0].strip()] = fields[ci].strip()
    return out


def load_reports(path: Path) -> tuple[str, dict[int, tuple[str, str]]]:
    """Return (raw header, {ecg_id: (report_en, raw line)})."""
    header_raw, header, rows = read_raw_rows(need_file(path))
    ii = column_index(header, "ecg_id", path)
    ri = column_index(header, "report_en", path)
    out = {}
    for fields, raw in rows:
        if fields:
            out[int(fields[ii])] = (fields[ri], raw)
    return header_raw, out


def superclasses_of(scp_codes: str, diag: dict[str, str]) -> tuple[str, ...]:
    codes = ast.literal_eval(scp_codes)
    found = {diag[c] for c in codes if c in diag}
    return tuple(s for s in SUPERCLASSES if s in found)


def choose_part(cands: list[dict], n: int, min_per_class: int, rng: random.Random) -> list[dict]:
    """Stratified pick of n records: superclass minimums first (rarest first), then fill."""
    if len(cands) < n:
        fail(f"only {len(cands)} eligible records, {n} requested")
    pool = sorted(cands, key=lambda r: r["ecg_id"])
    rng.shuffle(pool)
    chosen: list[dict] = []
    ids: set[int] = set()

    def count(cls: str) -> int:
        return sum(cls in r["classes"] for r in chosen)

    available = {s: sum(s in r["classes"] for r in pool) for s in SUPERCLASSES}
    for cls in sorted(SUPERCLASSES, key=lambda s: (available[s], s)):
        for r in pool:
            if count(cls) >= min_per_class or len(chosen) >= n:
                break
            if cls in r["classes"] and r["ecg_id"] not in ids:
                chosen.append(r)
                ids.add(r["ecg_id"])

    rest = [r for r in pool if r["ecg_id"] not in ids]
    k = n - len(chosen)
    if k > 0:
        groups: dict[tuple[str, ...], list[dict]] = {}
        for r in rest:
            groups.setdefault(r["classes"], []).append(r)
        keys = sorted(groups)
        quota = {g: k * len(groups[g]) / len(rest) for g in keys}
        take = {g: int(quota[g]) for g in keys}
        by_remainder = sorted(keys, key=lambda g: (-(quota[g] - take[g]), g))
        for g in by_remainder[: k - sum(take.values())]:
            take[g] += 1
        for g in keys:
            chosen.extend(groups[g][: take[g]])
    return sorted(chosen, key=lambda r: r["ecg_id"])


def choose_hr(part: list[dict], k: int, rng: random.Random) -> list[dict]:
    """Pick k records with 500 Hz files, covering as many superclasses as possible."""
    pool = [r for r in part if r["has_hr"]]
    rng.shuffle(pool)
    chosen: list[dict] = []
    seen: set[str] = set()
    for r in pool:
        if len(chosen) >= k:
            break
        if r["classes"] and not set(r["classes"]) <= seen:
            chosen.append(r)
            seen.update(r["classes"])
    for r in pool:
        if len(chosen) >= k:
            break
        if r not in chosen:
            chosen.append(r)
    return chosen


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def copy_record(src_root: Path, out: Path, stem: str) -> None:
    for ext in (".hea", ".dat"):
        dst = out / (stem + ext)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / (stem + ext), dst)


def counts_table(selected: list[dict]) -> list[str]:
    parts = [
        ("corpus (folds 1-8)", [r for r in selected if r["fold"] in CORPUS_FOLDS]),
        ("queries (fold 9)", [r for r in selected if r["fold"] == QUERY_FOLD]),
        ("total", selected),
    ]
    head = "| part | records | " + " | ".join(SUPERCLASSES) + " | none | 500 Hz |"
    lines = [head, "|" + "---|" * (len(SUPERCLASSES) + 4)]
    for name, rows in parts:
        cells = [str(len(rows))]
        cells += [str(sum(s in r["classes"] for r in rows)) for s in SUPERCLASSES]
        cells.append(str(sum(not r["classes"] for r in rows)))
        cells.append(str(sum(r["hr"] for r in rows)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def fold_table(selected: list[dict]) -> list[str]:
    folds = sorted({r["fold"] for r in selected})
    lines = ["| strat_fold | " + " | ".join(str(f) for f in folds) + " |"]
    lines.append("|" + "---|" * (len(folds) + 1))
    per_fold = [str(sum(r["fold"] == f for r in selected)) for f in folds]
    lines.append("| records | " + " | ".join(per_fold) + " |")
    return lines


def write_readme(out: Path, selected: list[dict], command: str, src_hashes: dict[str, str]) -> None:
    hr_ids = [r["ecg_id"] for r in selected if r["hr"]]
    text = [
        "# PTB-XL sample (subset)",
        "",
        f"A deterministic, stratified subset of {len(selected)} ECGs from PTB-XL, in the layout of",
        "the official release, for development, tests and demos. It is a **subset**: use the full",
        "PTB-XL download (same layout) for real experiments.",
        "",
        "## Source and licence",
        "",
        "PTB-XL: Wagner, P., Strodthoff, N., Bousseljot, R.-D., Samek, W., Schaeffter, T. (2020).",
        "PTB-XL, a large publicly available electrocardiography dataset. *Scientific Data* 7, 154.",
        "https://doi.org/10.1038/s41597-020-0495-6. Distributed on PhysioNet",
        "(https://physionet.org/content/ptb-xl/) under the Creative Commons Attribution 4.0",
        "International licence (CC BY 4.0, see `LICENSE.txt`). Files here are unchanged copies;",
        "the CSVs keep only the selected rows, each copied byte for byte.",
        "",
        "`reports_en.csv` (`ecg_id,report_en`) is **not** part of PTB-XL. It is a third-party",
        "machine translation of the `report` column (mostly German, some Swedish; rows whose",
        "source was already English are kept as is), taken from the GitHub repository",
        "tasinahon/ecg-regen (`data/ptbxl/ptbxl_database.csv` @ cd1d13d2). The translator is not",
        'stated there, and that repository gives its terms only as "for research purposes',
        'only". It contains translation artefacts (e.g. "sine rhythm", "layer type" for',
        "Lagetyp). Cite PTB-XL for the underlying text and say that the English is a third-party",
        "machine translation.",
        "",
        "## Selection",
        "",
        "Made with:",
        "",
        "```",
        command,
        "```",
        "",
        "Eligible: strat_fold 1-9 with the 100 Hz record present and a non-empty English report",
        "without mojibake (no 'Ã'). About 80% come from folds 1-8 (the retrieval corpus) and 20%",
        "from fold 9 (held-out queries); fold 10 (the test fold) is never included. The 38",
        "duplicate ecg_ids that PTB-XL v1.0.3 drops are excluded (some duplicate pairs cross",
        "folds), so every record here is also in v1.0.3. A record's",
        "superclasses are the `diagnostic_class` values of its `scp_codes` keys whose",
        "`scp_statements.csv` `diagnostic` is 1.0; rarer superclasses were oversampled so that",
        "each reaches a minimum count in both parts, and the rest was drawn in proportion to the",
        "superclass combinations. PTB-XL folds are patient-stratified, so no patient appears in",
        "both parts. A record can have several superclasses, or none.",
        "",
        "Records per superclass (a record counts once for each of its superclasses):",
        "",
        *counts_table(selected),
        "",
        "Records per fold:",
        "",
        *fold_table(selected),
        "",
        f"500 Hz copies (`records500/`) exist for ecg_id {', '.join(map(str, hr_ids))}.",
        "",
        "Source files (sha256):",
        "",
        *[f"- `{name}`: `{digest}`" for name, digest in src_hashes.items()],
        "",
        "`SHA256SUMS.txt` lists the sha256 of every other file in this folder.",
        "",
    ]
    (out / "README.md").write_text("\n".join(text), encoding="utf-8")


def build(args: argparse.Namespace, command: str) -> list[dict]:
    src = Path(args.ptbxl)
    if not src.is_dir():
        fail(f"missing PTB-XL directory: {src}")
    db_path = need_file(src / "ptbxl_database.csv")
    scp_path = need_file(src / "scp_statements.csv")
    rep_path = need_file(src / "reports_en.csv")
    lic_path = need_file(src / "LICENSE.txt")
    if not (src / "records100").is_dir():
        fail(f"missing directory: {src / 'records100'}")
    if args.n_hr > 0 and not (src / "records500").is_dir():
        fail(f"missing directory: {src / 'records500'} (needed for --n-hr {args.n_hr})")
    if args.n < 2:
        fail("--n must be at least 2")
    if args.n_hr < 0:
        fail("--n-hr must not be negative")

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not (out / "SHA256SUMS.txt").is_file():
        fail(f"{out} exists and is not an earlier sample (no SHA256SUMS.txt); not replacing it")

    diag = load_scp(scp_path)
    rep_header, reports = load_reports(rep_path)
    db_header_raw, header, rows = read_raw_rows(db_path)
    col = {name: column_index(header, name, db_path) for name in DB_COLUMNS}

    corpus, queries = [], []
    for fields, raw in rows:
        if not fields:
            continue
        fold = int(fields[col["strat_fold"]])
        if fold not in CORPUS_FOLDS and fold != QUERY_FOLD:
            continue
        ecg_id = int(fields[col["ecg_id"]])
        if ecg_id in V103_DROPPED:
            continue
        text, rep_raw = reports.get(ecg_id, ("", ""))
        if not text.strip() or MOJIBAKE in text:
            continue
        lr, hr = fields[col["filename_lr"]], fields[col["filename_hr"]]
        if not all((src / (lr + ext)).is_file() for ext in (".hea", ".dat")):
            continue
        rec = {
            "ecg_id": ecg_id,
            "fold": fold,
            "classes": superclasses_of(fields[col["scp_codes"]], diag),
            "lr": lr,
            "hr_stem": hr,
            "has_hr": bool(hr) and all((src / (hr + e)).is_file() for e in (".hea", ".dat")),
            "hr": False,
            "raw": raw,
            "rep_raw": rep_raw,
        }
        (queries if fold == QUERY_FOLD else corpus).append(rec)

    n_query = round(args.n * QUERY_SHARE)
    n_corpus = args.n - n_query
    min_c = max(1, round(n_corpus * MIN_SHARE_CORPUS))
    min_q = max(1, round(n_query * MIN_SHARE_QUERY))
    try:
        sel_c = choose_part(corpus, n_corpus, min_c, random.Random(f"{args.seed}:corpus"))
    except SampleError as e:
        fail(f"strat_fold 1-8 in {src}: {e}")
    try:
        sel_q = choose_part(queries, n_query, min_q, random.Random(f"{args.seed}:query"))
    except SampleError as e:
        fail(f"strat_fold {QUERY_FOLD} in {src}: {e}")
    for name, part, need in (("strat_fold 1-8", sel_c, min_c), ("strat_fold 9", sel_q, min_q)):
        for cls in SUPERCLASSES:
            got = sum(cls in r["classes"] for r in part)
            if got < need:
                print(f"warning: {name}: {cls} has {got} records, wanted {need}", file=sys.stderr)

    k_q = min(args.n_hr // 2 + args.n_hr % 2, sum(r["has_hr"] for r in sel_q))
    hr_q = choose_hr(sel_q, k_q, random.Random(f"{args.seed}:hr-query"))
    hr_c = choose_hr(sel_c, args.n_hr - len(hr_q), random.Random(f"{args.seed}:hr-corpus"))
    for r in hr_q + hr_c:
        r["hr"] = True
    if len(hr_q) + len(hr_c) < args.n_hr:
        print(f"warning: only {len(hr_q) + len(hr_c)} 500 Hz records available", file=sys.stderr)

    selected = sorted(sel_c + sel_q, key=lambda r: r["ecg_id"])

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with open(tmp / "ptbxl_database.csv", "w", encoding="utf-8", newline="") as f:
        f.write(db_header_raw)
        f.writelines(r["raw"] for r in selected)
    with open(tmp / "reports_en.csv", "w", encoding="utf-8", newline="") as f:
        f.write(rep_header)
        f.writelines(r["rep_raw"] for r in selected)
    shutil.copyfile(scp_path, tmp / "scp_statements.csv")
    shutil.copyfile(lic_path, tmp / "LICENSE.txt")
    for r in selected:
        copy_record(src, tmp, r["lr"])
        if r["hr"]:
            copy_record(src, tmp, r["hr_stem"])
    src_hashes = {p.name: sha256(p) for p in (db_path, rep_path, scp_path)}
    write_readme(tmp, selected, command, src_hashes)

    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    sums = [f"{sha256(p)}  {p.relative_to(tmp).as_posix()}\n" for p in files]
    (tmp / "SHA256SUMS.txt").write_text("".join(sums), encoding="utf-8")

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return selected


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ptbxl", required=True, help="source PTB-XL directory (official layout)")
    p.add_argument("--out", required=True, help="output directory (replaced if an old sample)")
    p.add_argument("--n", type=int, default=300, help="number of records (default 300)")
    p.add_argument("--n-hr", type=int, default=6, help="records that also get 500 Hz files")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    command = shlex.join(["python", "data/make_sample.py", *argv])
    try:
        selected = build(args, command)
    except SampleError as e:
        print(f"make_sample: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(selected)} records to {args.out}")
    print("\n".join(counts_table(selected)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
