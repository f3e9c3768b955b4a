"""The built page in a real browser (Debian's headless chromium via selenium, from a file:// URL):
every row renders, sorting reorders, the family filter hides the others, the plots are there, and
a model named `<script>...` runs nothing. Skips, saying why, only where no browser is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from board_records import BOARD, HOSTILE, HOSTILE_NAME, record, run_cli, write
from sinkbench.board.store import submission_path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
RECORDS = [*BOARD, HOSTILE]

if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip("no browser: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                ".ci/run does)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    board = folder / "board"
    for options in RECORDS:
        r = record(**options)
        write(r, board / submission_path(r))
    assert run_cli(["board", "build", "--board", board]) == 0
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={folder / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        driver.get((board / "site" / "index.html").resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")


def column(driver, name: str) -> list[str]:
    """The data-sort values of one column, in the rows' current order."""
    index = [th.get_attribute("data-column") for th in driver.find_elements(By.CSS_SELECTOR, "#board thead th")].index(name)
    return [row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-sort") for row in rows(driver)]


def click_heading(driver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#board thead th[data-column="{name}"] button').click()


def test_table_renders_every_row(page):
    names = [" ".join(cell.text.split()) for cell in page.find_elements(By.CSS_SELECTOR, "#board tbody td.model")]
    expected = {" ".join(r["model"].split()) for r in RECORDS}
    assert len(names) == len(RECORDS) and set(names) == expected
    assert " ".join(HOSTILE_NAME.split()) in names  # shown as text, not run
    assert page.execute_script("return window.pwned === undefined") is True
    assert page.find_element(By.ID, "row-count").text == f"{len(RECORDS)} of {len(RECORDS)} records"


def test_sorting_a_column_reorders_the_rows(page):
    assert [float(v) for v in column(page, "suite_score")] == sorted((r["score"] for r in RECORDS), reverse=True)
    click_heading(page, "sink_rate_0_8")  # descriptive column: largest first
    values = [float(v) for v in column(page, "sink_rate_0_8")]
    assert values == sorted(values, reverse=True)
    click_heading(page, "sink_rate_0_8")
    assert [float(v) for v in column(page, "sink_rate_0_8")] == sorted(values)
    click_heading(page, "bos_dependence")  # lower is better: best (lowest) first
    values = [float(v) for v in column(page, "bos_dependence")]
    assert values == sorted(values)
    click_heading(page, "model")
    names = column(page, "model")
    assert names == sorted(names, key=lambda n: (n.lower(), n)) and names != sorted(names, reverse=True)
    heading = page.find_element(By.CSS_SELECTOR, '#board thead th[data-column="model"]')
    assert heading.get_attribute("aria-sort") == "ascending"


def test_family_filter_hides_the_other_families(page):
    choose = Select(page.find_element(By.ID, "family-filter"))
    choose.select_by_value("smollm2")
    shown = [row for row in rows(page) if row.is_displayed()]
    assert {row.get_attribute("data-family") for row in shown} == {"smollm2"}
    assert len(shown) == sum(r["family"] == "smollm2" for r in RECORDS)
    assert page.find_element(By.ID, "row-count").text == f"{len(shown)} of {len(RECORDS)} records"
    choose.select_by_value(HOSTILE["family"])  # a family with a quote and <i> in it still matches itself
    assert [row.get_attribute("data-family") for row in rows(page) if row.is_displayed()] == [HOSTILE["family"]]
    choose.select_by_value("")
    assert all(row.is_displayed() for row in rows(page))


def test_plots_are_present_and_drawn(page):
    for plot_id in ("plot-bos_dependence", "plot-knockout_dependence", "plot-prefix", "plot-length"):
        figure = page.find_element(By.ID, plot_id)
        chart = figure.find_element(By.TAG_NAME, "svg")
        assert chart.is_displayed() and chart.size["width"] > 300 and chart.size["height"] > 200
        assert len(figure.find_elements(By.CSS_SELECTOR, "g.point, g.series")) == len(RECORDS)
        labels = [t.text for t in figure.find_elements(By.CSS_SELECTOR, "g.labels text")]
        assert "SmolLM2-135M" in labels  # model names visible, not only on hover
    heatmaps = page.find_elements(By.CSS_SELECTOR, "figure.heatmap svg")
    assert len(heatmaps) == len(RECORDS) and all(h.size["width"] > 100 for h in heatmaps)


def test_no_script_errors(page):
    severe = [entry["message"] for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []  # a wrong CSP hash or a JS error would show here
