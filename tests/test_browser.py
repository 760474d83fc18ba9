"""The viewer in a real browser: Debian's Chromium, driven by Playwright (nothing downloaded).

In CI (CI set) a missing browser or playwright fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _runs import HOSTILE

from roundtable.view import create_app, standalone_html

REPO = Path(__file__).resolve().parents[1]
# Every reply the dummy model writes is stitched from these lines: markup, event
# attributes, javascript: links and Markdown tricks, each of which would set the flag.
CORPUS = "\n\n".join([*HOSTILE, "We should plant trees. <b>Shade</b> matters <i>most</i>."] * 3)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser tests: .ci/run installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Viewer:
    """The viewer app on an ephemeral loopback port, in a thread."""

    def __init__(self, root: Path) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, create_app(root, poll_s=0.05), threaded=True)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[Viewer]:
    root = tmp_path / "outputs"
    root.mkdir()
    v = Viewer(root)
    yield v
    v.close()


def _wait(check: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _turns(run: Path) -> int:
    lines = (run / "transcript.jsonl").read_text().splitlines()
    return sum(json.loads(x)["type"] == "turn" for x in lines if x.endswith("}"))


def test_a_live_run_updates_in_place_in_colour_with_details_and_no_script_runs(
    browser, viewer, dummy, table, tmp_path
):
    server = dummy(corpus=CORPUS, latency_ms=250)
    run = tmp_path / "outputs" / "live"
    command = [sys.executable, "-m", "roundtable", "--table", str(table), "--out", str(run),
               "--base-url", server.base_url, "--turns", "8", "--seed", "5", "-q"]  # fmt: skip
    writer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: (run / "transcript.jsonl").is_file() and _turns(run) >= 1, what="turn 1")
        page = browser.new_page()
        page.goto(f"{viewer.url}/run/live")
        page.evaluate("window.__notReloaded = true")
        shown = page.locator("#items > .turn").count()
        assert page.locator("#status").text_content() == "running" and shown < 9
        # Polled from here: the page's CSP forbids the eval that wait_for_function uses.
        _wait(lambda: page.locator("#items > .turn").count() > shown, what="a new turn")
        _wait(lambda: page.locator("#status").text_content() == "completed", 60, "the end")
        assert writer.wait(timeout=30) == 0, writer.stderr.read() if writer.stderr else ""
        assert page.evaluate("window.__notReloaded") is True  # updated without a reload
        assert page.locator("#items > .turn").count() == _turns(run) == 9
        assert page.locator("#turn-count").text_content() == "9"
        ids = "Array.from(document.querySelectorAll('#items > .item')).map(e => e.id)"
        fresh = browser.new_page()
        fresh.goto(f"{viewer.url}/run/live")  # headers went above their questions live too
        assert page.evaluate(ids) == fresh.evaluate(ids) and fresh.locator("h2.topic").count() > 1

        colours: dict[str, set[str]] = {}
        for who in page.locator("#items > .turn .who").all():
            style = who.evaluate("e => getComputedStyle(e).color")
            colours.setdefault(who.text_content() or "", set()).add(style)
        assert len(colours) >= 3 and all(len(c) == 1 for c in colours.values())
        assert len({next(iter(c)) for c in colours.values()}) == len(colours)  # one per speaker
        moderator = page.locator(".moderator").first.evaluate("e => getComputedStyle(e).fontStyle")
        assert moderator == "italic"

        facts = page.locator("#items > .turn").first.locator("details.facts")
        assert not facts.locator("dl").is_visible()
        facts.locator("summary").click()
        assert facts.locator("dl").is_visible()
        assert "finish_reason" in (facts.locator("dl").text_content() or "")

        texts = " ".join(page.locator("#items .text").all_text_contents())
        assert "<script>" in texts and "onerror=" in texts and "javascript:" in texts
        assert page.evaluate("window.__pwned") is None
        hostile = "#items script, #items img, #items svg, #items a[href^='javascript'], #items b"
        assert page.locator(hostile).count() == 0
    finally:
        writer.kill()
        writer.wait()


def test_a_study_page_shows_its_charts_and_sorts_its_table(browser, viewer, tmp_path):
    out = tmp_path / "outputs" / "studies" / "layouts"
    study = [sys.executable, "-m", "roundtable", "study", str(REPO / "examples" / "layouts.yaml"),
             "--out", str(out), "--no-progress"]  # fmt: skip
    subprocess.run(study, check=True, capture_output=True, timeout=120)
    page = browser.new_page()
    page.goto(viewer.url)
    page.click("text=layouts")
    page.wait_for_url("**/study/studies/layouts")
    page.wait_for_load_state("load")  # a click waits for the navigation, not the images
    charts = page.locator(".charts img")
    assert charts.count() == 2
    for n in range(2):
        assert charts.nth(n).evaluate("i => i.complete && i.naturalWidth > 100")
    rows = "Array.from(document.querySelectorAll('#runs-csv tbody tr'))"
    seeds = f"{rows}.map(r => r.cells[2].textContent)"  # runs.csv: id, layout, seed, ...
    page.click("#runs-csv th:has-text('seed')")
    assert page.evaluate(seeds) == sorted(page.evaluate(seeds))
    page.click("#runs-csv th:has-text('seed')")
    assert page.evaluate(seeds) == sorted(page.evaluate(seeds), reverse=True)
    page.locator("#runs-csv tbody a").first.click()
    page.wait_for_url("**/run/studies/layouts/runs/**")
    page.wait_for_load_state("load")  # on a loaded machine the DOM may not be there yet
    assert page.locator("#items > .turn").count() == 9


def test_the_html_export_reads_offline_without_scripts(browser, viewer, dummy, table, tmp_path):
    run = tmp_path / "outputs" / "done"
    command = [sys.executable, "-m", "roundtable", "--table", str(table), "--out", str(run),
               "--base-url", dummy(corpus=CORPUS).base_url, "--turns", "6", "-q"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    file = tmp_path / "transcript.html"
    file.write_text(standalone_html(run), encoding="utf-8")
    context = browser.new_context(offline=True, java_script_enabled=False)
    requested: list[str] = []

    def refuse(route: Any) -> None:  # the file itself opens; anything else would be network
        if route.request.url == file.as_uri():
            route.continue_()
            return
        requested.append(route.request.url)
        route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    page.goto(file.as_uri())
    turns = page.locator("#items > .turn")
    assert turns.count() == _turns(run) == 7
    assert all(turns.nth(n).is_visible() for n in range(7))
    assert requested == []
    colours = {w.evaluate("e => getComputedStyle(e).color") for w in page.locator(".who").all()}
    assert len(colours) >= 3 and page.locator("h2.topic").count() >= 2  # styled, inline

    no_script = browser.new_context(java_script_enabled=False).new_page()
    no_script.goto(f"{viewer.url}/run/done")  # the viewer's own page reads fine without JS
    assert no_script.locator("#items > .turn").count() == 7
    assert no_script.locator("#replay").is_hidden()  # the replay control needs the script


def test_replay_plays_from_the_start_and_jumps_to_a_turn(browser, viewer, table, tmp_path):
    run = tmp_path / "outputs" / "r"
    command = [sys.executable, "-m", "roundtable", "--table", str(table), "--out", str(run),
               "--turns", "6", "-q"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    page = browser.new_page()
    page.goto(f"{viewer.url}/run/r")
    total = page.locator("#items > .item").count()
    page.select_option("#speed", "20")
    page.click("#play")
    visible = "document.querySelectorAll('#items > .item:not(.replay-hidden)').length"
    assert page.evaluate(visible) < total
    _wait(lambda: page.evaluate(visible) == total, what="the replay to finish")
    # Again, slowly: the replay goes on after a jump, and at 20 items/s it could show
    # turn 6 before the checks below (one item every 2 s cannot).
    page.select_option("#speed", "0.5")
    page.click("#play")
    page.fill("#jump", "4")
    page.click("#go")
    target = page.locator('#items > .turn[data-turn="4"]')
    assert target.is_visible() and target.locator("details.facts dl").is_visible()
    assert page.text_content("#jump-note") == ""
    page.fill("#jump", "99")
    page.click("#go")
    last = page.locator("#items > .turn").last.get_attribute("data-turn")
    assert page.text_content("#jump-note") == f"no turn 99; the last is turn {last}"
    assert page.locator('#items > .turn[data-turn="6"]').is_hidden() or page.evaluate(
        f"{visible} === {total}"
    )
