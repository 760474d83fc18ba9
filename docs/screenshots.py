"""The README's viewer screenshots: docs/viewer-run.png and docs/viewer-study.png.

Usage: python docs/screenshots.py

Runs the example table offline (8 turns, seed 3) and the example study
(examples/layouts.yaml) in a temporary directory, serves them with the viewer, and
photographs a run page (one turn's details open) and the study page in headless Debian
Chromium (Playwright with the system browser; nothing is downloaded).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from roundtable.view import create_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "2026-11-22T10-00-00"
        run = [sys.executable, "-m", "roundtable", "--table", str(REPO), "--turns", "8",
               "--seed", "3", "--out", str(out), "--offline", "-q"]  # fmt: skip
        subprocess.run(run, check=True, capture_output=True)
        study = [sys.executable, "-m", "roundtable", "study", str(REPO / "examples/layouts.yaml"),
                 "--out", str(root / "studies" / "layouts"), "--no-progress"]  # fmt: skip
        subprocess.run(study, check=True, capture_output=True)
        server = make_server("127.0.0.1", 0, create_app(root), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 960, "height": 1400}, color_scheme="light")
            page.goto(f"{url}/run/2026-11-22T10-00-00")
            page.locator("#items > .turn").nth(1).locator("details.facts").evaluate(
                "d => { d.open = true }"
            )
            page.screenshot(path=str(REPO / "docs" / "viewer-run.png"))
            dark = {"width": 1200, "height": 1040}
            page = browser.new_page(viewport=dark, color_scheme="dark")
            page.goto(f"{url}/study/studies/layouts")
            page.click("#runs-csv th:has-text('completion_tokens')")
            page.evaluate("document.querySelector('.scroll').scrollLeft = 0")
            page.screenshot(path=str(REPO / "docs" / "viewer-study.png"))
            browser.close()
        server.shutdown()
    print("written: docs/viewer-run.png, docs/viewer-study.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
