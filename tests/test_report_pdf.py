"""The printable report: a real one-page PDF (parsed with pypdf) holding the report text, the
findings with probability / threshold, the measurement line, cited keys and the notice; the
paper at true scale on the page; written atomically; an unwritable path fails first and
clearly. The page is also kept as a PNG in tests/artifacts/ (or $REGEN_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from regen import Regen
from regen.errors import ConfigError, StorageError
from regen.reader import read_ecg
from regen.report_pdf import PAGES, ROW_MM, draw_report_page, notable_absent, write_report_pdf

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = SAMPLE / "records100" / "01000" / "01469_lr"
ARTIFACTS = Path(os.environ.get("REGEN_TEST_ARTIFACTS",
                                Path(__file__).resolve().parent / "artifacts"))
PT = 72 / 25.4        # PDF points per mm


@pytest.fixture(scope="module")
def made(sample_home):
    with Regen.open(sample_home) as rg:
        ecg = read_ecg(Q1)
        return rg.report(ecg, log=False), ecg, rg.build_id


def pdf_text(path: Path) -> tuple[int, tuple[float, float], str]:
    pypdf = pytest.importorskip("pypdf", reason="pypdf is not installed: pip install 'regen[dev]'")
    reader = pypdf.PdfReader(str(path))
    box = reader.pages[0].mediabox
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    return len(reader.pages), (float(box.width), float(box.height)), text


def test_the_page_is_one_a4_landscape_pdf_with_the_report_and_the_notice(sample_home, tmp_path):
    with Regen.open(sample_home) as rg:
        out = rg.report_pdf(Q1, tmp_path / "r.pdf", log=False)
        r = rg.report(Q1, log=False)
    pages, (w, h), text = pdf_text(out)
    assert pages == 1 and (w, h) == pytest.approx((297 * PT, 210 * PT), abs=0.5)
    assert " ".join(r.text.split())[:60] in text
    assert "Decision support only" in text and "not a diagnosis" in text
    assert r.measurements and r.measurements["line"] in text        # HR .. bpm, PR .. ms
    stated = [f for f in r.findings if f.present]
    assert stated and f"{100 * stated[0].probability:.0f}% / {100 * stated[0].threshold:.0f}%" \
        in text
    assert r.sentences[0][1] in text and f"build {rg.build_id}" in text
    assert "12 of 12 leads" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pdf"]    # no temporary left


def test_letter_paper_and_the_trace_at_true_scale(made, tmp_path):
    r, ecg, _ = made
    _, (w, h), _ = pdf_text(write_report_pdf(r, ecg, tmp_path / "l.pdf", paper="letter"))
    assert (w, h) == pytest.approx((279.4 * PT, 215.9 * PT), abs=0.5)
    for paper, (pw, ph) in PAGES.items():
        fig = draw_report_page(r, ecg, paper=paper)
        box = fig.axes[1].get_position()               # the paper's axes, in page fractions
        assert box.width * pw == pytest.approx(260.0) and box.height * ph == pytest.approx(
            4 * ROW_MM)                                 # 1 data unit = 1 printed mm
        assert fig.axes[1].get_xlim() == (0, 260.0) and fig.axes[1].get_ylim() == (0, 120.0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    draw_report_page(r, ecg).savefig(ARTIFACTS / "report-page.png", dpi=110)


def test_notable_findings_not_stated_are_named(made):
    r, _, _ = made
    shown = notable_absent(r.findings)
    assert all(not f.present for f in shown)
    assert all(not f.assessable or f.note or f.probability >= 0.6 * f.threshold for f in shown)
    far = [f for f in r.findings if not f.present and f not in shown]
    assert all(f.assessable and not f.note for f in far)


def test_a_bad_path_fails_before_writing_and_an_old_file_is_replaced_whole(made, tmp_path):
    r, ecg, _ = made
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot write .*does not exist"):
        write_report_pdf(r, ecg, tmp_path / "missing" / "r.pdf")
    with pytest.raises(StorageError, match="cannot write"):
        write_report_pdf(r, ecg, blocker / "r.pdf")
    with pytest.raises(ConfigError, match=r"is a \.pdf"):
        write_report_pdf(r, ecg, tmp_path / "r.png")
    old = tmp_path / "r.pdf"
    old.write_bytes(b"an older file")
    write_report_pdf(r, ecg, old)
    assert old.read_bytes().startswith(b"%PDF") and sorted(
        p.name for p in tmp_path.iterdir()) == ["a-file", "r.pdf"]


def test_report_pdf_command(sample_home, tmp_path):
    out = tmp_path / "page.pdf"
    cmd = [sys.executable, "-m", "regen", "report", str(Q1), "--home", str(sample_home),
           "--no-log", "--json"]
    done = subprocess.run(cmd + ["--pdf", str(out)], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"pdf: {out}" in done.stderr and done.stdout.startswith("{")     # stdout stays JSON
    assert pdf_text(out)[0] == 1
    bad = subprocess.run(cmd + ["--pdf", str(tmp_path / "no" / "page.pdf")],
                         capture_output=True, text=True, timeout=180)
    assert bad.returncode != 0 and "cannot write" in bad.stderr and not bad.stdout
