"""GraphiQL in a real browser: headless Chromium opens /graphql on a live server, runs a mutation,
a query and a subscription, sees their results, and asks no host but the server for anything.

Needs Debian's `chromium` and `chromium-driver` (or MAAS_TEST_CHROMIUM / MAAS_TEST_CHROMEDRIVER
pointing elsewhere); without them these tests are skipped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.graphql_client import KEY_A, bearer
from tests.support.patience import patience

CHROMIUM = os.environ.get("MAAS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MAAS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking flags Chromium keeps calling Google's services, which on a
# closed network means a stream of refused connections (and requests our origin check would see).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
]
# Schemes the browser resolves itself, without the network.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "devtools"}
WAIT_S = patience()
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
# Decided before any server starts for these tests.
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{' and '.join(MISSING)} not found: install Debian packages chromium chromium-driver "
    "(or set MAAS_TEST_CHROMIUM / MAAS_TEST_CHROMEDRIVER)",
)

ADD = """mutation { addMessages(input: {sessionId: "graphiql", messages: [
  {role: USER, content: "typed into GraphiQL"}]}) { messages { seq content } } }"""
READ = """query { session(id: "graphiql") { messages(last: 5) { nodes { seq content } } } }"""
EVENTS = """subscription { sessionEvents(sessionId: "graphiql") { type messages { content } } }"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module, on a profile of its own. Tests ask for `url` before
    `browser`, so the server starts first and stops last: Chromium's open connections would
    otherwise hold up its shutdown for seconds."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    # Every request the browser makes, WebSockets included, lands in the performance log.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # The explicit driver path already keeps Selenium Manager from looking for one online.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: WebDriver, tmp_path: Path) -> Iterator[WebDriver]:
    """The browser with its logs emptied; a screenshot of the page is left in tmp_path."""
    chromium.get_log("performance")
    chromium.get_log("browser")
    yield chromium
    chromium.save_screenshot(tmp_path / "graphiql.png")
    # Leaving the page closes its WebSocket, which would otherwise hold up the server's stop.
    chromium.get("about:blank")


def test_graphiql_runs_a_mutation_and_a_query_and_shows_their_results(url, browser):
    open_graphiql(browser, url, ADD)
    run(browser)
    wait_for_result(browser, '"content": "typed into GraphiQL"')

    open_graphiql(browser, url, READ)
    run(browser)
    wait_for_result(browser, '"seq": 1')
    assert '"content": "typed into GraphiQL"' in result_text(browser)
    assert_only_the_server_was_asked(browser, url)


def test_graphiql_shows_subscription_events_over_the_servers_websocket(url, browser):
    open_graphiql(browser, url, EVENTS)
    run(browser)
    # The subscription is live once the server has subscribed to Redis, which the page does not
    # show: write until an event arrives.
    deadline = time.monotonic() + WAIT_S
    while "MESSAGES_ADDED" not in result_text(browser):
        assert time.monotonic() < deadline, f"no event in GraphiQL: {result_text(browser)!r}"
        reply = httpx.post(
            f"{url}/graphql", json={"query": ADD}, headers=bearer(KEY_A), timeout=patience()
        )
        assert "errors" not in reply.json()
        shows(browser, "MESSAGES_ADDED", timeout=1)  # a poll interval, then write again
    assert '"content": "typed into GraphiQL"' in result_text(browser)
    sockets = assert_only_the_server_was_asked(browser, url)
    assert sockets == [url.replace("http://", "ws://") + "/graphql"]


def open_graphiql(browser: WebDriver, url: str, query: str) -> None:
    """Opens GraphiQL with `query` in its editor and tenant A's key in its headers (which
    GraphiQL sends over HTTP and in the WebSocket's connection_init payload)."""
    params = {"q": query, "headers": json.dumps(bearer(KEY_A))}
    browser.get(f"{url}/graphql?{urlencode(params, quote_via=quote)}")
    WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".graphiql-execute-button")
    )


def run(browser: WebDriver) -> None:
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()


def result_text(browser: WebDriver) -> str:
    return browser.find_element(By.CSS_SELECTOR, ".result-window").text


def shows(browser: WebDriver, expected: str, timeout: float) -> bool:
    """Whether GraphiQL's result pane shows `expected` within `timeout` seconds."""
    try:
        WebDriverWait(browser, timeout).until(lambda b: expected in result_text(b))
    except TimeoutException:
        return False
    return True


def wait_for_result(browser: WebDriver, expected: str) -> None:
    assert shows(browser, expected, WAIT_S), f"GraphiQL shows: {result_text(browser)!r}"


def assert_only_the_server_was_asked(browser: WebDriver, url: str) -> list[str]:
    """Asserts every request since the test began went to the server (and the console shows
    no error, such as a blocked request); returns the WebSocket URLs opened."""
    origin = urlsplit(url).netloc
    requests, sockets = [], []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            sockets.append(message["params"]["url"])
    network = [u for u in requests + sockets if urlsplit(u).scheme not in LOCAL_SCHEMES]
    assert network, "the performance log recorded no request"
    assert [u for u in network if urlsplit(u).netloc != origin] == []
    assert {urlsplit(u).scheme for u in network} <= {"http", "ws"}
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    return sockets
