"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

``python -m tests.support.browser PAGE.html OUT.png [WIDTH HEIGHT]`` takes a screenshot the
way the browser tests do (the ones in ``docs/`` are made so).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.support.programs import on_path

CHROMIUM = on_path("chromium")
CHROMEDRIVER = on_path("chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def available() -> bool:
    return CHROMIUM is not None and CHROMEDRIVER is not None


@contextmanager
def chromium(width: int = 1200, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A fresh headless browser with a throw-away profile, closed afterwards."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        raise RuntimeError(
            "chromium and chromedriver are not on PATH (Debian: chromium, chromium-driver)"
        )
    profile = tempfile.mkdtemp(prefix="tradefleet-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 1400) -> None:
    """Open ``page`` and save what a ``width`` x ``height`` window shows as PNG."""
    with chromium(width, height) as driver:
        driver.get(page.resolve().as_uri())
        driver.save_screenshot(str(out))


if __name__ == "__main__":
    size = [int(v) for v in sys.argv[3:5]]
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), *size)
