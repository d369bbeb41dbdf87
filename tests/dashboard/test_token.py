"""With STQ_TOKEN set the page shows only a prompt, then works; a lost server is announced."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import TOKEN, Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, open_view
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser


def test_token_prompt_then_the_page_works_and_an_outage_shows_a_banner(
    watched: Watched, guarded: LiveServer
) -> None:
    page = watched.page
    ApiClient(guarded.url, token=TOKEN).submit(
        {"name": "guarded-flow", "tasks": {"only": {"command": "true"}}}
    )
    open_view(page, guarded.url)
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    assert "guarded-flow" not in page.locator("body").inner_text()
    watched.shot("token_prompt")

    page.fill("#token", "wrong")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("That token was refused. Try again.")
    expect(page.locator("#app")).to_be_hidden()

    # A character no header can carry: the browser would refuse the request unsent,
    # which must not read as "cannot reach the server".
    page.fill("#token", "s\u20accret")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("ASCII or Latin-1")
    expect(page.locator("#banner")).to_be_hidden()
    page.reload()  # the token kept for the tab asks again rather than failing every call
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()

    page.fill("#token", TOKEN)
    page.click("#login button[type=submit]")
    expect(page.locator("table.list tbody tr", has_text="guarded-flow")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('stq.token')") == TOKEN
    page.reload()
    expect(page.locator("table.list tbody tr", has_text="guarded-flow")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()

    guarded.stop()
    banner = page.locator("#banner")
    expect(banner).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(banner).to_contain_text("Cannot reach the STQ server")
    expect(page.locator("table.list tbody tr", has_text="guarded-flow")).to_be_visible()
    watched.shot("server_unreachable")
