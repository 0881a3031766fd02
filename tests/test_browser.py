"""A standalone HTML report opened in a real browser (headless Chromium).

The DOM must hold the finding and the embedded plots, and a screenshot of the page
must show something (not a blank page). Skipped only when no Chromium is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import telediag
from telediag.views import report

from .conftest import FIXTURES, RULES

CASE = FIXTURES / "TD002" / "pop3-every-5-minutes.csv"


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, telediag.Investigation]:
    inv = telediag.investigate(
        CASE, "13800000011", complaint_date="2008-06-16", tz="Asia/Shanghai", rules=RULES
    )
    out = tmp_path_factory.mktemp("report") / "report.html"
    out.write_text(report.render(inv, "html"), encoding="utf-8")
    return out, inv


def test_report_in_headless_chromium(
    page: tuple[Path, telediag.Investigation], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium found: install chromium (e.g. apt-get install chromium)")
    path, inv = page
    url = path.resolve().as_uri()

    dom = _run(browser, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert inv.findings[0].root_cause in dom.stdout
    assert "Dispute investigation: subscriber 13800000011" in dom.stdout
    assert dom.stdout.count('<img src="data:image/png;base64,') >= 3  # timeline, daily, gaps
    assert inv.findings[0].explanation.zh[:12] in dom.stdout  # UTF-8 read as such

    shot = tmp_path / "shot.png"
    res = _run(
        browser,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        "--hide-scrollbars",
        url,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.exists(), res.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    import matplotlib.image as mpimg

    pixels = np.asarray(mpimg.imread(shot))[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and plots, not one flat colour
    ink = (pixels < 0.9).any(axis=-1).mean()
    assert ink > 0.02  # something is drawn on the page
