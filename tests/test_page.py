"""The clinician's page in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium) against a real server on loopback: pick an example, upload a WFDB record,
see the trace, the report, the disclaimer and the neighbours, ask a question. Screenshots are
kept in tests/artifacts/ (or $REGEN_TEST_ARTIFACTS) to be looked at."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from regen import Regen
from regen.server import running

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ptbxl-sample"
Q1 = SAMPLE / "records100" / "01000" / "01469_lr"
ARTIFACTS = Path(os.environ.get("REGEN_TEST_ARTIFACTS",
                                Path(__file__).resolve().parent / "artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install -y "
           "chromium chromium-driver; `make test` installs them)")


@pytest.fixture(scope="module")
def url(sample_home):
    with Regen.open(sample_home) as rg, \
            running(rg, settings=replace(rg.settings, data_roots=str(SAMPLE))) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed: pip install 'regen[dev]'")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1360,2200"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, predicate, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def trace_drawn(d) -> bool:
    return d.execute_script("const i = document.getElementById('trace');"
                            "return i.complete && i.naturalWidth > 800;")


def test_an_example_shows_trace_report_and_neighbours_and_answers(url, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#example option"))
    browser.find_element(By.CSS_SELECTOR, "#example-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "report-text").text and trace_drawn(d))
    text = browser.find_element(By.ID, "report-text").text
    assert len(text) > 10
    assert "Decision support only" in browser.find_element(By.ID, "disclaimer").text
    items = browser.find_elements(By.CSS_SELECTOR, "#neighbours li")
    assert len(items) == 10 and "similarity" in items[0].text
    assert browser.find_elements(By.CSS_SELECTOR, "#neighbours li.cited")
    items[0].find_element(By.CSS_SELECTOR, "button").click()       # the cited neighbour's ECG
    wait_for(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#neighbours li img.thumb');"
        "return i !== null && i.complete && i.naturalWidth > 800;"))
    browser.find_element(By.ID, "question").send_keys("Does this ECG show sinus rhythm?")
    browser.find_element(By.CSS_SELECTOR, "#ask-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "answer").text.startswith("A: "))
    browser.save_screenshot(str(ARTIFACTS / "page-example.png"))


def test_an_uploaded_wfdb_record_is_reported(url, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(url + "/")
    files = "\n".join(str(Q1) + ext for ext in (".hea", ".dat"))
    browser.find_element(By.ID, "files").send_keys(files)
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "report-text").text and trace_drawn(d))
    assert browser.find_element(By.ID, "title").text == "Uploaded 01469_lr"
    assert browser.find_element(By.ID, "status").text == ""
    browser.save_screenshot(str(ARTIFACTS / "page-upload.png"))


def test_a_bad_upload_says_why(url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "notes.txt"
    bad.write_text("not an ECG")
    browser.get(url + "/")
    browser.find_element(By.ID, "files").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button").click()
    wait_for(browser, lambda d: "expected a .hea" in d.find_element(By.ID, "status").text)


def test_findings_measurements_sentences_and_input_notes_are_shown(url, browser):
    """A real report: its findings (probability over threshold, stated or not, where from),
    the measurement line and table, each sentence's source report, and the input notes."""
    from selenium.webdriver.common.by import By

    browser.get(url + "/?example=00028_lr")
    wait_for(browser, lambda d: d.find_element(By.ID, "report-text").text and trace_drawn(d))
    rows = browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    assert rows and all("%" in r.text for r in rows)
    stated = browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr.present")
    assert stated and "sinus rhythm" in browser.find_element(By.ID, "findings").text
    assert browser.find_element(By.ID, "measure-line").text.startswith("HR ")
    assert "bpm" in browser.find_element(By.ID, "measurements").text
    assert "12 of 12 leads used" in browser.find_element(By.ID, "input-notes").text
    sources = browser.find_elements(By.CSS_SELECTOR, "#sentences li .key")
    assert sources and all(k.text.startswith("ptbxl:") for k in sources)
    browser.set_window_size(1360, browser.execute_script("return document.body.scrollHeight") + 40)
    browser.save_screenshot(str(ARTIFACTS / "page-findings.png"))


def test_two_ecgs_side_by_side_with_what_changed(url, browser):
    """Two different examples picked, then an uploaded WFDB record against an example: both
    traces drawn side by side, the comparison's text and its new / resolved / persisting
    table, the notice, each side's similar ECGs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1360, 2200)
    browser.get(url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#compare-b option"))
    a, b = Select(browser.find_element(By.ID, "compare-a")), \
        Select(browser.find_element(By.ID, "compare-b"))
    names = [o.get_attribute("value") for o in a.options]
    a.select_by_value(names[0])
    b.select_by_value(names[1])
    browser.find_element(By.CSS_SELECTOR, "#compare-form button").click()

    def both_drawn(d) -> bool:
        return d.execute_script(
            "return ['trace-a', 'trace-b'].every(id => { const i = document.getElementById(id);"
            " return i.complete && i.naturalWidth > 800; });")

    wait_for(browser, lambda d: d.find_element(By.ID, "compare-text").text and both_drawn(d))
    assert browser.find_element(By.ID, "compare-title-a").text == f"First: Example {names[0]}"
    assert browser.find_element(By.ID, "compare-title-b").text == f"Second: Example {names[1]}"
    rows = browser.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")
    assert rows and all("%" in r.text for r in rows)
    changes = {r.find_elements(By.TAG_NAME, "td")[1].text.split()[0] for r in rows}
    assert changes <= {"new", "resolved", "persisting"}
    assert "Decision support only" in browser.find_element(By.ID, "compare-disclaimer").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-neighbours-a li")) == 5
    # side by side: the two pictures share a row, the first on the left
    ra, rb = (browser.find_element(By.ID, i).rect for i in ("trace-a", "trace-b"))
    assert abs(ra["y"] - rb["y"]) < 2 and ra["x"] + ra["width"] <= rb["x"]
    shot = browser.find_element(By.ID, "compare")
    browser.execute_script("arguments[0].scrollIntoView();", shot)
    shot.screenshot(str(ARTIFACTS / "page-compare.png"))

    browser.find_element(By.ID, "files-a").send_keys("\n".join(str(Q1) + e
                                                              for e in (".hea", ".dat")))
    before = browser.find_element(By.ID, "compare-text").text
    browser.execute_script("document.getElementById('compare-text').textContent = '';")
    browser.find_element(By.CSS_SELECTOR, "#compare-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "compare-text").text and both_drawn(d))
    assert browser.find_element(By.ID, "compare-title-a").text == "First: Uploaded 01469_lr"
    assert browser.find_element(By.ID, "compare-status").text == ""
    assert before  # the first comparison had text too
