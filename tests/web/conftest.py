"""Browser fixtures: one real pool for the module's tests and one headless Chromium.

The pool is the demo's :class:`kalepool.demo.Cluster`: PostgreSQL (the test server or an
embedded one), the devnet in this process (12 s blocks, 1 s ledgers, wall clock) and
``kalepool backend serve`` as a child process, which serves the dashboard. The browser is
Debian's Chromium (``/usr/bin/chromium``, installed by ``make test`` when missing) driven
by Playwright; nothing is downloaded.

Screenshots (desktop 1280 px and phone 375 px) go to ``$KALEPOOL_SCREENSHOTS`` or to
``screenshots/`` in the test run's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from kalepool.demo import Cluster
from kalepool.testing.postgres import ENV_VAR, test_database_url
from tests.e2e.conftest import INTERVAL, LEDGER_SECONDS

CHROMIUM = os.environ.get("KALEPOOL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
#: the pages refresh their live parts this often in the tests (default 5 s)
REFRESH_SECONDS = 1

NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture(scope="session")
def web_cluster() -> Iterator[Cluster]:
    url = os.environ.get(ENV_VAR) or test_database_url()
    backend_env = {"KALEPOOL_BACKEND__DASHBOARD_REFRESH_SECONDS": str(REFRESH_SECONDS)}
    with Cluster(
        block_interval=INTERVAL, ledger_seconds=LEDGER_SECONDS, database_url=url, backend_env=backend_env
    ) as cluster:
        cluster.start_database()
        cluster.start_devnet()
        cluster.start_backend()
        yield cluster


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@dataclass
class Shots:
    """Saves each page twice: desktop and phone width, full page."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, name: str) -> None:
        size = page.viewport_size
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            # nothing scrolls sideways at this width (wide tables scroll inside their own box)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{name}: {width} px wide at {label} ({viewport['width']} px)"
            path = self.folder / f"{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        if size is not None:
            await page.set_viewport_size(size)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    where = os.environ.get("KALEPOOL_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return Shots(folder)


@pytest.fixture
async def new_context(chromium: Browser, web_cluster: Cluster) -> AsyncIterator[NewContext]:
    """``await new_context()``: a fresh browser profile (its own cookies) on the dashboard."""
    made: list[BrowserContext] = []

    async def make(viewport: dict[str, int] | None = None, **options: Any) -> BrowserContext:
        context = await chromium.new_context(
            base_url=web_cluster.backend_url,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            **options,
        )
        context.set_default_timeout(15_000)
        made.append(context)
        return context

    yield make
    for context in made:
        await context.close()
