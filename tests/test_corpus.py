"""Corpus loaders on the bundled PTB-XL sample and on a small folder, against the CSVs."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from regen.corpus import (
    SUPERCLASSES,
    CorpusRecord,
    load_folder,
    load_ptbxl,
    parse_folds,
    scp_superclass_map,
)
from regen.errors import DataError
from regen.reader import read_ecg

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "ptbxl-sample"


def csv_rows(name: str) -> list[dict[str, str]]:
    with (SAMPLE / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def records():
    return load_ptbxl(SAMPLE)


def test_counts_per_fold_match_the_database_csv(records) -> None:
    rows = csv_rows("ptbxl_database.csv")
    assert len(records) == len(rows) == 300
    assert Counter(r.split for r in records) == Counter(row["strat_fold"] for row in rows)
    # and the sample's README table
    assert [Counter(r.split for r in records)[str(f)] for f in range(1, 10)] == [
        47, 32, 29, 27, 31, 20, 33, 21, 60]


def test_records_follow_the_csv_in_ecg_id_order(records) -> None:
    rows = csv_rows("ptbxl_database.csv")
    assert [r.key for r in records] == [f"ptbxl:{int(row['ecg_id'])}" for row in rows]
    ids = [int(r.key.split(":")[1]) for r in records]
    assert ids == sorted(ids)
    for r, row in zip(records, rows):
        assert r.path == str(SAMPLE / row["filename_lr"])
        assert r.patient_id == str(int(float(row["patient_id"])))
        assert r.source == "ptbxl"


def test_every_path_is_a_readable_record(records) -> None:
    for r in records[:: 50]:
        assert read_ecg(r.path).n_samples == 1000


@pytest.mark.parametrize(("folds", "n"), [
    ("1-8", 240), ("9", 60), ([9], 60),
    ("1,3,5-7", 47 + 29 + 31 + 20 + 33),  # folds 1, 3, 5, 6, 7 of the README table
])
def test_fold_filter_counts(folds: object, n: int) -> None:
    assert len(load_ptbxl(SAMPLE, folds=folds)) == n  # type: ignore[arg-type]


def test_train_and_query_folds_are_disjoint_by_record_and_patient(records) -> None:
    train = load_ptbxl(SAMPLE, folds="1-8")
    query = load_ptbxl(SAMPLE, folds="9")
    assert {r.split for r in train} == {str(f) for f in range(1, 9)}
    assert {r.split for r in query} == {"9"}
    keys_t, keys_q = {r.key for r in train}, {r.key for r in query}
    assert not keys_t & keys_q
    assert keys_t | keys_q == {r.key for r in records}
    assert not {r.patient_id for r in train} & {r.patient_id for r in query}


def test_superclass_map_reads_diagnostic_statements_only() -> None:
    m = scp_superclass_map(SAMPLE)
    assert (m["NST_"], m["DIG"], m["IMI"], m["LVH"], m["ILBBB"], m["NORM"]) == (
        "STTC", "STTC", "MI", "HYP", "CD", "NORM")
    for code in ("SR", "PVC", "STD_", "AFLT", "PACE"):  # rhythm and form statements
        assert code not in m
    assert set(m.values()) == set(SUPERCLASSES)


@pytest.mark.parametrize(("ecg_id", "scp", "supers"), [
    # {'NST_': 100, 'DIG': 100, 'SR': 0}: NST_ and DIG are diagnostic STTC, SR is a rhythm
    (28, {"NST_": 100.0, "DIG": 100.0, "SR": 0.0}, ("STTC",)),
    # IMI -> MI, ILBBB -> CD, LVH -> HYP, ISC_ -> STTC; listed in SUPERCLASSES order
    (423, {"IMI": 50.0, "ILBBB": 100.0, "LVH": 100.0, "ISC_": 100.0},
     ("MI", "STTC", "CD", "HYP")),
    # PVC and STD_ are form statements, not diagnostic
    (349, {"ISC_": 100.0, "LVH": 100.0, "IVCD": 100.0, "PVC": 100.0, "STD_": 0.0, "SR": 0.0},
     ("STTC", "CD", "HYP")),
    (34, {"AFLT": 100.0}, ()),  # rhythm only: no superclass
])
def test_superclasses_by_hand(records, ecg_id: int, scp: dict, supers: tuple) -> None:
    rec = next(r for r in records if r.key == f"ptbxl:{ecg_id}")
    assert rec.scp == scp
    assert rec.superclasses == supers


def test_superclass_counts_match_the_sample_readme() -> None:
    def table(recs):
        c = Counter(s for r in recs for s in r.superclasses)
        return [c[s] for s in SUPERCLASSES] + [sum(not r.superclasses for r in recs)]

    assert table(load_ptbxl(SAMPLE, folds="1-8")) == [112, 53, 61, 58, 40, 1]
    assert table(load_ptbxl(SAMPLE, folds="9")) == [25, 14, 18, 13, 9, 2]


def test_reports_have_original_and_english(records) -> None:
    orig = {row["ecg_id"]: row["report"] for row in csv_rows("ptbxl_database.csv")}
    en = {row["ecg_id"]: row["report_en"] for row in csv_rows("reports_en.csv")}
    for r in records:
        ecg_id = r.key.split(":")[1]
        # the loader keeps the words and may collapse runs of whitespace
        assert r.reports["orig"].split() == orig[ecg_id].split()
        assert r.reports["en"].split() == en[ecg_id].split()
        assert r.report("en") == r.reports["en"]
    first = records[0]
    assert first.reports["orig"].startswith("sinusrhythmus verdacht auf p-sinistrocardiale")
    assert first.reports["en"].startswith("sinus rhythm suspected p-sinistrocardiale")


def test_report_falls_back_to_original(tmp_path: Path) -> None:
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    recs = load_ptbxl(tmp_path, require_signal=False)  # no reports_en.csv, no signals
    assert len(recs) == 300
    assert all("en" not in r.reports for r in recs)
    assert recs[0].report("en") == recs[0].reports["orig"]


def test_rate_500_keeps_the_records_with_500hz_files() -> None:
    recs = load_ptbxl(SAMPLE, rate=500)
    assert [r.key for r in recs] == [f"ptbxl:{i}" for i in (95, 155, 170, 346, 445, 465)]
    assert all(r.path.endswith("_hr") for r in recs)
    assert read_ecg(recs[0].path).fs == 500.0


def test_bad_rate() -> None:
    with pytest.raises(DataError, match="250"):
        load_ptbxl(SAMPLE, rate=250)


def test_missing_database_csv_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_ptbxl(tmp_path)
    assert str(tmp_path / "ptbxl_database.csv") in str(err.value)


def test_database_csv_missing_a_column(tmp_path: Path) -> None:
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,patient_id,report\n1,2,x\n")
    with pytest.raises(DataError, match="scp_codes"):
        load_ptbxl(tmp_path)


def test_malformed_scp_codes_names_the_record(tmp_path: Path) -> None:
    text = (SAMPLE / "ptbxl_database.csv").read_text(encoding="utf-8")
    bad = text.replace("\"{'NORM': 100.0, 'SR': 0.0}\"", "\"{'NORM': 100.0,\"", 1)
    assert bad != text
    (tmp_path / "ptbxl_database.csv").write_text(bad, encoding="utf-8")
    shutil.copy(SAMPLE / "scp_statements.csv", tmp_path)
    with pytest.raises(DataError, match="ecg_id 29 has scp_codes"):
        load_ptbxl(tmp_path, require_signal=False)


# --- parse_folds -------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    ("1,3,5-7", {1, 3, 5, 6, 7}),
    ("1-8", set(range(1, 9))),
    ("9", {9}),
    (" 1 , 2 ", {1, 2}),
    ([9, 10], {9, 10}),
    (None, None),
])
def test_parse_folds(spec: object, expected: set[int] | None) -> None:
    assert parse_folds(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["a", "1-x", "1-2-3", "9-", "-1", "1;2"])
def test_parse_folds_rejects(spec: str) -> None:
    with pytest.raises(DataError, match="not understood"):
        parse_folds(spec)


@pytest.mark.parametrize("spec", ["3-1", "", ","])
def test_parse_folds_rejects_specs_selecting_nothing(spec: str) -> None:
    with pytest.raises(DataError):
        parse_folds(spec)


# --- load_folder -------------------------------------------------------------------------------

def _folder(tmp_path: Path, copy_record, rows: list[str]) -> Path:
    root = tmp_path / "corpus"
    copy_record(SAMPLE / "records100" / "00000" / "00028_lr", root / "a")
    copy_record(SAMPLE / "records100" / "00000" / "00029_lr", root / "b")
    (root / "reports.csv").write_text(
        "path,report,patient_id,split,labels\n" + "".join(r + "\n" for r in rows),
        encoding="utf-8")
    return root


def test_load_folder(tmp_path: Path, copy_record) -> None:
    root = _folder(tmp_path, copy_record, [
        'a/00028_lr,"ST changes,  digitalis",p1,train,NST_;STTC',
        "b/00029_lr.hea,normal ECG,p2,test,NORM",
    ])
    recs = load_folder(root)
    assert [r.key for r in recs] == ["folder:a/00028_lr", "folder:b/00029_lr"]
    assert [r.path for r in recs] == [str(root / "a" / "00028_lr"), str(root / "b" / "00029_lr")]
    assert [r.patient_id for r in recs] == ["p1", "p2"]
    assert [r.split for r in recs] == ["train", "test"]
    assert recs[0].report("en").split() == ["ST", "changes,", "digitalis"]
    assert recs[0].superclasses == ("STTC",) and recs[0].scp == {"NST_": 100.0}
    assert recs[1].superclasses == ("NORM",) and recs[1].scp == {}
    assert read_ecg(recs[1].path).leads[0] == "I"


def test_load_folder_wrong_path_names_the_csv_line(tmp_path: Path, copy_record) -> None:
    root = _folder(tmp_path, copy_record, [
        "a/00028_lr,first,p1,,",
        "b/00029_lr,second,p2,,",
        "c/nowhere,third,p3,,",
    ])
    with pytest.raises(DataError) as err:
        load_folder(root)
    msg = str(err.value)
    assert str(root / "reports.csv") in msg and "line 4" in msg and "c/nowhere" in msg


def test_load_folder_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_folder(tmp_path)
    assert str(tmp_path / "reports.csv") in str(err.value)


def test_load_folder_csv_without_report_column(tmp_path: Path, copy_record) -> None:
    root = _folder(tmp_path, copy_record, [])
    (root / "reports.csv").write_text("path,text\na/00028_lr,x\n")
    with pytest.raises(DataError, match="report"):
        load_folder(root)


# --- report tables that broke the loaders (issue 15, item 9) -------------------------------------

def test_non_utf8_csv_is_a_data_error(tmp_path: Path, copy_record) -> None:
    root = _folder(tmp_path, copy_record, [])
    (root / "reports.csv").write_bytes("path,report\na/00028_lr,Sinusrhythmus. Lagetyp überdreht\n"
                                       .encode("latin-1"))
    with pytest.raises(DataError) as err:
        load_folder(root)
    msg = str(err.value)
    assert str(root / "reports.csv") in msg and "UTF-8" in msg and "line 2" in msg


def test_report_longer_than_the_csv_field_limit(tmp_path: Path, copy_record) -> None:
    root = _folder(tmp_path, copy_record, ["a/00028_lr,short,p1,,", "b/00029_lr," + "x" * 140_000
                                           + ",p2,,"])
    with pytest.raises(DataError) as err:
        load_folder(root)
    msg = str(err.value)
    assert str(root / "reports.csv") in msg and "line 3" in msg and "131072" in msg


def test_report_with_nul_names_the_record_before_any_embedding(tmp_path: Path,
                                                              copy_record) -> None:
    # PostgreSQL rejected the whole build after embedding, without naming the record
    root = _folder(tmp_path, copy_record, ["a/00028_lr,fine,p1,,", "b/00029_lr,bad\x00text,p2,,"])
    with pytest.raises(DataError) as err:
        load_folder(root)
    assert "folder:b/00029_lr" in str(err.value) and "NUL" in str(err.value)
    with pytest.raises(DataError, match="ptbxl:1.*NUL"):
        CorpusRecord("ptbxl:1", "ptbxl", "x", None, None, {"en": "a\x00b"})
