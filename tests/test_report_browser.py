"""report.html in a real headless browser (Debian's chromium): at phone (420 px) and desktop
(1400 px) widths the page is never wider than the window, the console shows no error and every
figure loads. Skipped with a reason when chromium is missing outside CI; in CI (``CI=true``) a
missing chromium fails the test (``.ci/run`` installs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restudy.cli import app

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Runs first in the report's <head>: records errors and console errors, then measures the page after
# load and posts the result to the frame around it, which writes it into its DOM (--dump-dom prints
# the top document). The frame sets the report's viewport width: headless windows are >= 500 px.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
const _err = console.error;
console.error = (...a) => { window.__errors.push(a.map(String).join(" ")); _err(...a); };
window.addEventListener("load", () => {
  const d = document.documentElement;
  const imgs = Array.from(document.images);
  const wide = Array.from(document.querySelectorAll("body *"))
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".scroll"))
    .slice(0, 5).map(el => el.tagName + "." + el.className);
  const out = {inner: window.innerWidth, scroll: d.scrollWidth, errors: window.__errors, wide: wide,
    images: imgs.length, broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    toc: document.querySelectorAll("nav.toc a[href^='#']").length,
    deadLinks: Array.from(document.querySelectorAll("a[href^='#']"))
      .filter(a => !document.getElementById(a.getAttribute("href").slice(1))).length};
  parent.postMessage(JSON.stringify(out), "*");
});
</script>"""
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="border:0;width:{width}px;height:900px"></iframe>
<pre id="restudy-probe"></pre>
<script>addEventListener("message", e => {{ document.getElementById("restudy-probe").textContent = e.data; }});</script>
</body></html>"""


def _browser() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    path = _browser()
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium)")
        pytest.skip("no chromium found (apt-get install -y chromium); CI runs this test")
    return path


@pytest.fixture(scope="module")
def smoke_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "nondeterminism-smoke"
    r = CliRunner().invoke(
        app,
        ["run", "nondeterminism", "--scale", "smoke", "--workers", "0", "--out", str(out)],
        env={"COLUMNS": "160"},
    )
    assert r.exit_code == 0, r.output
    return out / "report.html"


def _probe(browser: str, html: Path, width: int, tmp: Path) -> dict:
    page = tmp / f"probe-{width}.html"
    text = html.read_text(encoding="utf-8")
    page.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    frame = tmp / f"frame-{width}.html"
    frame.write_text(FRAME.format(src=page.name, width=width), encoding="utf-8")
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width + 100},1000",
        "--virtual-time-budget=5000",
        f"--user-data-dir={tmp / f'profile-{width}'}",
        "--dump-dom",
        "--allow-file-access-from-files",
        frame.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="restudy-probe">(.+?)</pre>', done.stdout, re.S)
    assert m, f"no measurement from the browser: {done.stderr[-2000:]}"
    raw = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(raw)


@pytest.mark.parametrize("width", [420, 1400])
def test_report_fits_the_window_without_errors(browser: str, smoke_html: Path, width: int, tmp_path: Path) -> None:
    m = _probe(browser, smoke_html, width, tmp_path)
    assert m["inner"] == width
    assert m["scroll"] <= m["inner"], f"page is {m['scroll']} px wide in a {width} px window: {m['wide']}"
    assert not m["wide"], f"elements overflow the window: {m['wide']}"
    assert m["errors"] == [], m["errors"]
    assert m["images"] > 0 and m["broken"] == 0
    assert m["toc"] >= 5 and m["deadLinks"] == 0


def _dom(browser: str, url: str, tmp: Path) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000"]
    cmd += [f"--user-data-dir={tmp / 'profile-dom'}", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def test_a_link_to_a_folded_table_opens_its_fold(browser: str, tmp_path: Path) -> None:
    """Tables with no runs at this scale are folded together; a link to one of them (from another
    page, or the address bar) opens the fold instead of landing on nothing visible."""
    out = tmp_path / "deconv-smoke"
    args = ["run", "deconv", "--scale", "smoke", "--workers", "0", "--out", str(out)]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    page = (out / "report.html").as_uri()
    fold = re.compile(r'<details class="fold"[^>]*>')
    assert fold.findall(_dom(browser, page, tmp_path)) == ['<details class="fold">']  # closed by default
    opened = _dom(browser, page + "#table-orig_cifar10_e1", tmp_path)
    assert fold.findall(opened) == ['<details class="fold" open="">']
    assert opened.index('<details class="fold"') < opened.index('id="table-orig_cifar10_e1"')
