"""The operator console in headless Chromium, served by a real ``tradefleet console``.

An admin signs in with a session token, watches the queue depth change without a reload
while jobs are enqueued, retries a dead job, verifies a strategy and finds it in the audit
log; a user and an expired session are turned away. Screenshots are kept under the test's
tmp folder (the path is printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import browser, console
from tests.support.db import create_user

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not browser.available(), reason="needs chromium and chromium-driver"),
]

WAIT_S = 20


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    with browser.chromium(1280, 1000) as d:
        yield d


def text(driver: webdriver.Chrome, css: str) -> str:
    """The element's text; live pages swap their parts in, so a found element may be gone."""
    for _ in range(10):
        try:
            return str(driver.find_element(By.CSS_SELECTOR, css).text)
        except StaleElementReferenceException:
            continue
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def click(driver: webdriver.Chrome, css: str) -> None:
    for _ in range(10):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            continue
    driver.find_element(By.CSS_SELECTOR, css).click()


def until(driver: webdriver.Chrome, what: str, check: Any) -> None:
    WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: check(d), message=f"waiting for {what}"
    )


def sign_in(driver: webdriver.Chrome, base: str, token: str) -> None:
    driver.get(f"{base}/login")
    box = driver.find_element(By.ID, "token")
    driver.execute_script("arguments[0].value = arguments[1]", box, token)
    driver.find_element(By.ID, "sign-in").click()


async def test_an_admin_runs_the_platform_from_the_console(
    db_url: str, tmp_path: Path, driver: webdriver.Chrome
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nconsole screenshots: {shots}")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        admin = await create_user(conn, "ops@console.test", role="admin")
        provider = await create_user(conn, "pat@console.test", role="provider")
        cur = await conn.execute(
            "insert into public.strategies (user_id, name, strategy_type, engine, is_public, "
            "parameters) values (%s, 'Breakout hunter', 'marketplace', 'rules', true, '{}') "
            "returning id",
            (provider.id,),
        )
        strategy = (await cur.fetchone() or [None])[0]

    with (
        psycopg.connect(db_url, autocommit=True) as db,
        console.serve(db_url, tmp_path / "console.log") as base,
    ):
        sign_in(driver, base, console.token(admin))
        until(driver, "the overview", lambda d: d.find_elements(By.ID, "users-total"))
        assert text(driver, "header .who").startswith("● ops@console.test")
        driver.save_screenshot(str(shots / "overview.png"))

        # The queue depth follows enqueued jobs without a reload.
        driver.get(f"{base}/queue")
        assert text(driver, "#queue-depth") == "0"
        until(
            driver,
            "live updates",
            lambda d: "live" in d.find_element(By.TAG_NAME, "body").get_attribute("class"),
        )
        driver.execute_script("window.notReloaded = true")
        db.execute("select public.enqueue_jobs('demo.sync', array['{}', '{}', '{}']::jsonb[])")
        until(driver, "a depth of 3", lambda d: text(d, "#queue-depth") == "3")
        assert driver.execute_script("return window.notReloaded") is True
        driver.save_screenshot(str(shots / "queue-live.png"))

        # A dead job shows up live with its error, and is retried from the page.
        dead = db.execute(
            "insert into public.jobs (kind, status, attempts, max_attempts, last_error, finished_at) "
            "values ('demo.sync', 'dead', 5, 5, 'exchange timed out', now()) returning id"
        ).fetchone()
        assert dead is not None
        row = f'#dead-jobs tr[data-job="{dead[0]}"]'
        until(driver, "the dead job", lambda d: d.find_elements(By.CSS_SELECTOR, row))
        assert "exchange timed out" in text(driver, row)
        assert driver.execute_script("return window.notReloaded") is True
        click(driver, f"{row} button.retry")
        until(driver, "the retry's outcome", lambda d: d.find_elements(By.ID, "flash"))
        assert text(driver, "#flash") == f"job {dead[0]} is queued again"
        assert db.execute("select status from jobs where id = %s", dead).fetchone() == ("queued",)
        assert not driver.find_elements(By.CSS_SELECTOR, row)

        # Verify a strategy; the audit log shows it, with the reason.
        driver.get(f"{base}/marketplace")
        srow = f'#strategies tr[data-strategy="{strategy}"]'
        assert text(driver, f"{srow} td.verified") == "no"
        driver.find_element(By.CSS_SELECTOR, f"{srow} input[name=reason]").send_keys(
            "rules reviewed"
        )
        driver.find_element(By.CSS_SELECTOR, f"{srow} button.verify").click()
        until(driver, "the verification", lambda d: d.find_elements(By.ID, "flash"))
        assert text(driver, "#flash") == "strategy Breakout hunter is verified"
        assert text(driver, f"{srow} td.verified") == "yes"
        driver.get(f"{base}/audit")
        actions = [
            [c.text for c in r.find_elements(By.TAG_NAME, "td")][:5]
            for r in driver.find_elements(By.CSS_SELECTOR, "#audit-log tr")[1:]
        ]
        assert actions[0][1:] == ["ops@console.test", "verify_strategy", f"strategy {strategy}",
                                  "rules reviewed"]  # fmt: skip
        assert actions[1][1:4] == ["ops@console.test", "retry_job", f"job {dead[0]}"]
        driver.save_screenshot(str(shots / "audit.png"))

        # A user's session is refused; an expired one goes back to the login page.
        driver.find_element(By.CSS_SELECTOR, "header .who button").click()
        until(driver, "signing out", lambda d: d.current_url == f"{base}/login")
        assert not driver.get_cookies()
        sign_in(driver, base, console.token(provider))
        until(driver, "the refusal", lambda d: d.find_elements(By.ID, "denied"))
        assert "not an admin" in text(driver, "#denied")
        driver.save_screenshot(str(shots / "refused.png"))
        driver.get(f"{base}/queue")
        assert driver.current_url == f"{base}/login"

        sign_in(driver, base, console.token(admin, expires_in=-120))
        until(driver, "the expiry", lambda d: d.find_elements(By.ID, "login-message"))
        assert "expired" in text(driver, "#login-message")
        driver.add_cookie(
            {"name": "tradefleet_console", "value": console.token(admin, expires_in=-120)}
        )
        driver.get(f"{base}/queue")
        assert driver.current_url == f"{base}/login?expired=1"
        assert "Your session has expired" in text(driver, "#login-message")
