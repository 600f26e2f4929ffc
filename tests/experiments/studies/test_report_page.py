"""report.html as a browser shows it: headless Chromium renders a study's page and the chapter
report's, a small script added to a copy of each writes what the page shows into the DOM, and
the test checks every table row is laid out, every image decoded with a non-zero size, and that
the page asked for nothing (no resource loads, no host resolved, no http(s) links)."""

import html
import json
import re
import subprocess

import pytest

PROBE = """<pre id="page-probe"></pre>
<script>
window.addEventListener("load", () => {
  const rows = [...document.querySelectorAll("tr")];
  document.getElementById("page-probe").textContent = JSON.stringify({
    rows: rows.length,
    shown_rows: rows.filter(r => r.getBoundingClientRect().height > 0).length,
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight,
                                             i.getBoundingClientRect().width]),
    requests: performance.getEntriesByType("resource").map(e => e.name),
  });
});
</script>
"""


def render(chromium: str, page, tmp_path) -> dict:
    """What the page shows, written by the probe into a copy of it and read from the DOM."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=10000",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="page-probe">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def _check(page, figures, table_rows, chromium, tmp_path):
    source = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", source, re.I)
    shown = render(chromium, page, tmp_path)
    assert shown["rows"] == source.count("<tr") and shown["rows"] >= table_rows
    assert shown["shown_rows"] == shown["rows"]
    assert len(shown["images"]) == len(figures)
    for complete, width, height, laid_out in shown["images"]:
        assert complete and width > 0 and height > 0 and laid_out > 0
    assert shown["requests"] == []


@pytest.mark.parametrize("name", ["bn-lr", "densenet-memory"])
def test_a_study_page_shows_every_row_and_image(name, tiny_study, chromium, tmp_path):
    report = tiny_study(name)
    rows = len(report.results.rows) + 1  # and the header
    _check(report.html, report.page.figures, rows, chromium, tmp_path)


def test_the_chapter_report_page_shows_every_row_and_image(tiny_chapter_report, chromium,
                                                          tmp_path):
    report = tiny_chapter_report
    _check(report.html, report.page.figures, len(report.rows) + 1, chromium, tmp_path)
