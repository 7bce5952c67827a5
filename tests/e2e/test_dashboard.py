"""The live dashboard (/dashboard) in a real headless Chromium, driven over the DevTools protocol.

The page loads a user's profile over POST /graphql, follows `profileUpdated` over
graphql-transport-ws, and must show every change made through the API while it is open; its
search box ranks the user's memory through user.search. Its operator panels list the project's
users (filtered, paginated), and show the selected user's buffer, flushes (a failed one with a
retry button), events and a chart of the tokens of each flush.
Needs Debian's Chromium: `scripts/install-chromium` installs it; without it the test is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

import tests.live
from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, live_server
from tests.llm_server import Reply, ScriptedLLM, running_llm, word_count
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

CHROMIUM = Path("/usr/bin/chromium")
WAIT_SECONDS = 15.0
SCREENSHOT_FOR_HUMANS = Path("/tmp/dashboard.png")  # noqa: S108 -- a fixed path to look at

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: run scripts/install-chromium (Debian's chromium package)",
)

ADD = """
mutation($topic: String!, $sub: String!, $content: String!) {
  addProfileEntry(input: {userId: "alice", topic: $topic, subTopic: $sub, content: $content}) {
    __typename
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
UPDATE = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
DELETE = "mutation($id: ID!) { deleteProfileEntry(input: {id: $id}) { __typename } }"
INSERT_CHAT = """
mutation {
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I moved to Lyon last spring."}
  ]}}}) { __typename }
}
"""
FLUSH = 'mutation { flushBuffer(input: {userId: "alice", wait: true}) { __typename } }'


# --- the server ---------------------------------------------------------------------------


@pytest.fixture
def live_settings(database_url: str) -> Settings:
    # No LLM is needed: nothing listens on port 9, so a flush fails at once (FLUSH_FAILED).
    return make_settings(
        database_url, llm_base_url="http://127.0.0.1:9/v1", background_flushes=False
    )


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
def live(live_settings: Settings) -> Iterator[LiveServer]:
    with live_server(live_settings) as server:
        yield server


async def _make_tenant(http_url: str) -> ProjectHandle:
    project = await create_project(http_url, Api(http_url, ROOT_TOKEN), "dashboard")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


@pytest.fixture
async def tenant(live: LiveServer) -> ProjectHandle:
    return await _make_tenant(live.http_url)


async def _add(tenant: ProjectHandle, topic: str, sub: str, content: str) -> str:
    data = await tenant.api.ok(ADD, topic=topic, sub=sub, content=content)
    payload = data["addProfileEntry"]
    assert payload["__typename"] == "AddProfileEntryPayload", payload
    entry_id: str = payload["entry"]["id"]
    return entry_id


# --- the browser --------------------------------------------------------------------------


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = tmp_path / "chromium.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,800",
                f"--user-data-dir={profile}",
                # Port 0: Chromium picks a free port and writes it to DevToolsActivePort.
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the renderers go with it
        )
    try:
        yield Browser(process, _devtools_port(process, profile, log), log)
    finally:
        _kill(process)


def _devtools_port(process: subprocess.Popen[bytes], profile: Path, log: Path) -> int:
    active_port = profile / "DevToolsActivePort"
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited ({process.returncode}):\n{log.read_text()}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(active_port.read_text().splitlines()[0])
        time.sleep(0.05)
    raise AssertionError(f"chromium opened no DevTools port:\n{log.read_text()}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
            return


@dataclass
class Page:
    """One page target over the Chrome DevTools Protocol: commands, and the events seen."""

    socket: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    _next_id: int = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message_id = self._next_id
        await self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = json.loads(await self.socket.recv())
                if message.get("id") != message_id:
                    self.events.append(message)  # an event (commands are answered in order)
                    continue
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def navigate(self, url: str) -> None:
        """Open `url` and wait until its document (not the previous one) has loaded.

        "complete", not "interactive": the page's module scripts run after parsing, and a form
        submitted before they have run would not be handled by them.
        """
        result = await self.call("Page.navigate", url=url)
        assert "errorText" not in result, result
        page = url.split("?", 1)[0]
        await self.wait_for(
            f"location.href.startsWith({_js(page)}) && document.readyState === 'complete'",
            f"{page} to load",
        )

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """The first truthy value of `expression`, polled for at most WAIT_SECONDS."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                status = await self.evaluate("document.getElementById('status')?.textContent")
                raise AssertionError(
                    f"timed out waiting for {what}; status: {status!r}; "
                    f"browser messages: {self.problems()}"
                )
            await asyncio.sleep(0.05)

    def graphql_posts(self, *operations: str) -> int:
        """How many POST /graphql requests the page has sent so far (of these operations)."""
        return sum(
            1
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
            and event["params"]["request"]["method"] == "POST"
            and event["params"]["request"]["url"].endswith("/graphql")
            and (not operations or _operation(event["params"]["request"]) in operations)
        )

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and browser log errors (e.g. CSP refusals)."""
        found: list[str] = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(str(params["entry"].get("text"))[:500])
        return found


@contextlib.asynccontextmanager
async def _page(browser: Browser) -> AsyncIterator[Page]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{browser.port}") as client:
        targets = (await client.get("/json")).json()
    url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    async with connect(url, max_size=None) as socket:
        page = Page(socket)
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.call(f"{domain}.enable")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        # No row highlight animation: screenshots show the settled page.
        await page.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-reduced-motion", "value": "reduce"}],
        )
        yield page


def _operation(request: dict[str, Any]) -> str | None:
    """The name of the GraphQL operation a POST request carries."""
    with contextlib.suppress(KeyError, ValueError, IndexError):
        query: str = json.loads(request["postData"])["query"]
        return query.split("(", 1)[0].split("{", 1)[0].split()[1]
    return None


# --- DOM probes (the ids and data attributes the page promises) ---------------------------


def _js(value: str) -> str:
    return json.dumps(value)


def _row(entry_id: str) -> str:
    """{topic, subTopic, content, source} of the entry's row, or null."""
    selector = f"#profile-rows tr[data-entry-id={_js(entry_id)}]"
    return f"""(() => {{
        const row = document.querySelector({_js(selector)});
        if (!row) return null;
        const cell = (name) => row.querySelector("td." + name);
        return {{topic: cell("topic").textContent, subTopic: cell("sub-topic").textContent,
                 content: cell("content").textContent, source: cell("source").textContent,
                 elements: row.querySelectorAll("td *:not(.badge):not(time)").length}};
    }})()"""


def _content_is(entry_id: str, content: str) -> str:
    return f"""(() => {{
        const row = {_row(entry_id)};
        return row !== null && row.content === {_js(content)};
    }})()"""


def _status_is(state: str) -> str:
    return f"document.getElementById('status')?.dataset.state === {_js(state)}"


def _row_gone(entry_id: str) -> str:
    return f"{_row(entry_id)} === null"


def _log_item(kind: str, text: str) -> str:
    """The text of the newest log item of `kind` that holds `text`, or null."""
    selector = f"#log li[data-kind={_js(kind)}]"
    return f"""(() => {{
        const items = document.querySelectorAll({_js(selector)});
        for (const item of items) {{
            if (item.textContent.includes({_js(text)})) return item.textContent;
        }}
        return null;
    }})()"""


def _save_png(screenshot: dict[str, Any], *paths: Path) -> None:
    png = base64.b64decode(screenshot["data"])
    for path in paths:
        path.write_bytes(png)


# --- the tests -----------------------------------------------------------------------------


async def test_dashboard_shows_the_profile_and_follows_changes_live(
    live: LiveServer, tenant: ProjectHandle, browser: Browser, tmp_path: Path
) -> None:
    # Entries that exist before the page opens; one holds markup, which must stay text.
    name_id = await _add(tenant, "basic_info", "name", "Alice <b>Liddell</b>")
    await _add(tenant, "interest", "hobby", "rowing & chess")
    await _add(tenant, "contact_info", "city", "Oxford")

    query = urlencode({"key": tenant.api_key, "user": "alice"})
    async with _page(browser) as page:
        await page.navigate(f"{live.http_url}/dashboard?{query}")
        await page.wait_for(_status_is("connected"), "connected")
        assert "connected" in await page.evaluate("document.getElementById('status').textContent")

        # Rendered on load, escaped, sorted by topic; the key has left the address bar.
        name = await page.wait_for(_row(name_id), "the entry made before the page loaded")
        assert name == {
            "topic": "basic_info",
            "subTopic": "name",
            "content": "Alice <b>Liddell</b>",
            "source": "MANUAL",
            "elements": 0,
        }
        topics = await page.evaluate(
            "[...document.querySelectorAll('#profile-rows tr')].map(r => r.dataset.topic)"
        )
        assert topics == ["basic_info", "contact_info", "interest"]
        assert await page.evaluate("location.search") == "?user=alice"
        assert await page.evaluate("document.querySelectorAll('#log li').length") == 3

        # Added, updated, deleted through the API: the page follows each change.
        title_id = await _add(tenant, "work", "title", "teacher")
        await page.wait_for(_content_is(title_id, "teacher"), "the added row")
        row = await page.evaluate(_row(title_id))
        assert (row["topic"], row["subTopic"], row["source"]) == ("work", "title", "MANUAL")

        await tenant.api.ok(UPDATE, id=title_id, content="chemistry teacher")
        await page.wait_for(_content_is(title_id, "chemistry teacher"), "the updated cell")
        updated = await page.wait_for(
            _log_item("ENTRY_UPDATED", "chemistry teacher"), "the update in the log"
        )
        assert "work / title" in updated
        assert "teacher→chemistry teacher" in updated

        city_id = await page.evaluate(
            "document.querySelector('#profile-rows tr[data-sub-topic=\"city\"]').dataset.entryId"
        )
        await tenant.api.ok(DELETE, id=city_id)
        await page.wait_for(_row_gone(city_id), "the deleted row to disappear")
        assert await page.evaluate("document.getElementById('entry-count').textContent") == (
            "3 entries"
        )
        await page.wait_for(_log_item("ENTRY_DELETED", "Oxford"), "the deletion in the log")

        # A flush that fails (no LLM listens) is logged with its reason.
        await tenant.api.ok(INSERT_CHAT)
        await tenant.api.ok(FLUSH)
        failed = await page.wait_for(_log_item("FLUSH_FAILED", ""), "the failed flush in the log")
        assert "flush failed" in failed

        assert await page.evaluate("document.getElementById('status').dataset.state") == (
            "connected"
        )
        assert page.problems() == []

        shot = await page.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard.png", SCREENSHOT_FOR_HUMANS)


async def test_dashboard_reads_every_panel_again_after_the_server_restarts(
    live_settings: Settings,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    async with _page(browser) as page:
        with live_server(live_settings) as first:
            tenant = await _make_tenant(first.http_url)
            kept_id = await _add(tenant, "work", "title", "teacher")
            gone_id = await _add(tenant, "contact_info", "city", "Oxford")
            # Without a key in the URL the page asks for one.
            await page.navigate(f"{first.http_url}/dashboard?user=alice")
            await page.wait_for(_status_is("idle"), "the form")
            await page.evaluate(
                f"""document.getElementById("key-input").value = {_js(tenant.api_key)};
                document.getElementById("connect-form").requestSubmit();"""
            )
            await page.wait_for(_status_is("connected"), "connected")
            await page.wait_for(_content_is(kept_id, "teacher"), "the profile")
        # The server is gone: the page keeps its table and retries with a backoff.
        await page.wait_for(_status_is("reconnecting"), "reconnecting")

        # Changes the page cannot see, made through another server on the same database;
        # a blob joining the buffer is in no feed: only reading the panels again shows it.
        with live_server(live_settings) as other:
            api = Api(other.http_url, tenant.api_key)
            await api.ok(UPDATE, id=kept_id, content="chemistry teacher")
            await api.ok(DELETE, id=gone_id)
            added = await api.ok(ADD, topic="interest", sub="sport", content="rowing")
            added_id = added["addProfileEntry"]["entry"]["id"]
            await api.ok(INSERT_CHAT)
        assert await page.evaluate(_row(kept_id)) is not None  # nothing redrawn meanwhile
        assert await page.evaluate("document.querySelectorAll('#buffer-rows tr').length") == 0
        assert page.graphql_posts("DashboardProfile") == 1
        ops_reads = page.graphql_posts("DashboardUserOps")

        # The same address again: the page reads the feed's cursor and the profile again,
        # resubscribes from that cursor, and reads the operator panels again.
        port = int(first.http_url.rsplit(":", 1)[1])
        monkeypatch.setattr(tests.live, "free_port", lambda: port)
        with live_server(live_settings):
            await page.wait_for(_status_is("connected"), "connected again")
            await page.wait_for(_content_is(kept_id, "chemistry teacher"), "the missed update")
            await page.wait_for(_row_gone(gone_id), "the missed deletion")
            await page.wait_for(_content_is(added_id, "rowing"), "the missed addition")
            await page.wait_for(
                _log_item("ENTRY_UPDATED", "chemistry teacher"), "the missed update in the log"
            )
            await page.wait_for(
                "document.querySelector('#buffer-rows tr')?.dataset.status === 'IDLE'",
                "the blob inserted while offline, in the buffer panel",
            )
            assert page.graphql_posts("DashboardProfile") == 2
            assert page.graphql_posts("DashboardUserOps") == ops_reads + 1
            # Its failed attempts while the server was down are the only complaints.
            unexpected = [p for p in page.problems() if "ERR_CONNECTION_REFUSED" not in p]
            assert unexpected == []
            shot = await page.call("Page.captureScreenshot", format="png")
            await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard-resumed.png")


async def _not_embedded(tenant: ProjectHandle) -> int:
    """Alice's rows search cannot compare by meaning yet (not embedded)."""
    data = await tenant.api.ok(
        'query { user(userId: "alice") { search(query: "x") { ... on SearchResults '
        "{ keywordOnlyRows } } } }"
    )
    waiting: int = data["user"]["search"]["keywordOnlyRows"]
    return waiting


def _hits() -> str:
    """[{kind, score, text}] of the search results shown, best first."""
    return """[...document.querySelectorAll('#search-results li')].map(li => ({
        kind: li.dataset.kind, score: li.querySelector('.score').textContent,
        text: li.querySelector('.text').textContent}))"""


async def test_dashboard_searches_the_users_memory(
    database_url: str, browser: Browser, llm: ScriptedLLM, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        llm_base_url="http://127.0.0.1:9/v1",
        background_flushes=False,
        embedding_provider="openai",
        embedding_base_url=llm.base_url,
        embedding_model="scripted-embedder",
    )
    with live_server(settings) as server:
        tenant = await _make_tenant(server.http_url)
        await _add(tenant, "interest", "hobby", "rowing & <i>chess</i>")
        await _add(tenant, "contact_info", "city", "Oxford")
        deadline = time.monotonic() + WAIT_SECONDS
        while await _not_embedded(tenant):  # both entries embedded, after their commits
            assert time.monotonic() < deadline, "the entries were not embedded"
            await asyncio.sleep(0.05)

        query = urlencode({"key": tenant.api_key, "user": "alice"})
        async with _page(browser) as page:
            await page.navigate(f"{server.http_url}/dashboard?{query}")
            await page.wait_for(_status_is("connected"), "connected")
            await page.evaluate(
                """document.getElementById("search-input").value = "who plays chess?";
                document.getElementById("search-form").requestSubmit();"""
            )
            hits = await page.wait_for(
                f"(() => {{ const h = {_hits()}; return h.length ? h : null; }})()", "a hit"
            )
            assert hits[0]["kind"] == "PROFILE", hits
            assert hits[0]["text"] == "interest / hobby: rowing & <i>chess</i>", hits  # not markup
            assert float(hits[0]["score"]) > 0
            mode = await page.evaluate("document.getElementById('search-mode').textContent")
            assert mode == "hybrid"
            # The key went in a header, never in an address the page asked for.
            urls = [
                e["params"]["request"]["url"]
                for e in page.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            assert any(url.endswith("/graphql") for url in urls)
            assert not any(tenant.api_key in url for url in urls[1:])  # [0]: the page's own
            assert await page.evaluate(
                "document.querySelectorAll('#search-results li *').length"
            ) == (3 * len(hits))
            assert page.problems() == []
            shot = await page.call("Page.captureScreenshot", format="png")
            await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard-search.png")


def _texts(selector: str) -> str:
    return f"[...document.querySelectorAll({_js(selector)})].map(e => e.textContent)"


def _user_ids() -> str:
    return "[...document.querySelectorAll('#users-list li')].map(li => li.dataset.userId)"


def _user_ids_are(ids: list[str]) -> str:
    return f"JSON.stringify({_user_ids()}) === {_js(json.dumps(ids, separators=(',', ':')))}"


def _click(element_id: str) -> str:
    return f"document.getElementById({_js(element_id)}).click()"


def _request_urls(page: Page) -> list[str]:
    return [
        e["params"]["request"]["url"]
        for e in page.events
        if e.get("method") == "Network.requestWillBeSent"
    ]


async def test_dashboard_lists_filters_and_pages_through_users(
    live: LiveServer, tenant: ProjectHandle, browser: Browser, tmp_path: Path
) -> None:
    create = "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }"
    others = [f"user-{n:02d}" for n in range(1, 11)]  # 11 users with alice: 8 + 3
    for user_id in others:
        await tenant.api.ok(create, id=user_id)

    async with _page(browser) as page:
        # A key and no user: the list, and nothing subscribed yet.
        await page.navigate(f"{live.http_url}/dashboard?{urlencode({'key': tenant.api_key})}")
        await page.wait_for(_user_ids_are(["alice", *others[:7]]), "the first page of users")
        assert await page.evaluate("document.getElementById('users-prev').disabled") is True
        assert await page.evaluate(_status_is("idle"))

        await page.evaluate(_click("users-next"))
        await page.wait_for(_user_ids_are(others[7:]), "the second page")
        assert await page.evaluate("document.getElementById('users-next').disabled") is True
        await page.evaluate(_click("users-prev"))
        await page.wait_for(_user_ids_are(["alice", *others[:7]]), "the first page again")

        await page.evaluate(
            """document.getElementById("users-search").value = "ER-1";
            document.getElementById("users-form").requestSubmit();"""
        )
        await page.wait_for(_user_ids_are(["user-10"]), "the users matching the filter")
        await page.evaluate(
            """document.getElementById("users-search").value = "nobody";
            document.getElementById("users-form").requestSubmit();"""
        )
        await page.wait_for(_user_ids_are([]), "no user matching")
        assert await page.evaluate("document.getElementById('users-empty').textContent") == (
            "No user matches."
        )
        await page.evaluate(
            """document.getElementById("users-search").value = "";
            document.getElementById("users-form").requestSubmit();"""
        )
        await page.wait_for(_user_ids_are(["alice", *others[:7]]), "every user again")

        # Picking a user follows them live.
        entry_id = await _add(tenant, "work", "title", "teacher")
        await page.evaluate(
            "document.querySelector('#users-list li[data-user-id=\"alice\"] button').click()"
        )
        await page.wait_for(_status_is("connected"), "connected to alice")
        await page.wait_for(_content_is(entry_id, "teacher"), "alice's profile")
        assert await page.evaluate("location.search") == "?user=alice"
        assert (
            await page.evaluate("document.querySelector('#users-list li.selected').dataset.userId")
            == "alice"
        )
        assert not any(tenant.api_key in url for url in _request_urls(page)[1:])
        assert page.problems() == []
        shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard-users.png")


def _flush_rows() -> str:
    """[{status, trigger, error}] of the flushes shown, newest first."""
    return """[...document.querySelectorAll('#flush-rows tr')].map(tr => ({
        status: tr.dataset.status, trigger: tr.querySelector('td.trigger').textContent,
        error: tr.querySelector('td.error').textContent}))"""


def _chart_points() -> str:
    """[{series, tokens}] of the usage chart's points."""
    return """[...document.querySelectorAll('#usage-chart svg circle.point')].map(c => ({
        series: c.dataset.series, tokens: Number(c.dataset.tokens)}))"""


async def test_dashboard_shows_a_failed_flush_live_and_retries_it(
    database_url: str, browser: Browser, llm: ScriptedLLM, tmp_path: Path
) -> None:
    # The LLM fails (HTTP 500) until the test lets it answer.
    llm.responder = lambda _request: Reply(status=500)
    settings = make_settings(database_url, llm_base_url=llm.base_url, background_flushes=False)
    with live_server(settings) as server:
        tenant = await _make_tenant(server.http_url)
        query = urlencode({"key": tenant.api_key, "user": "alice"})
        async with _page(browser) as page:
            await page.navigate(f"{server.http_url}/dashboard?{query}")
            await page.wait_for(_status_is("connected"), "connected")
            await page.wait_for(
                "document.getElementById('flushes-empty').textContent === 'No flushes yet.'",
                "alice's (empty) flushes",
            )
            assert await page.evaluate("document.getElementById('retry-button').hidden") is True

            # A blob joins the buffer (no feed change): shown on Refresh.
            await tenant.api.ok(INSERT_CHAT)
            await page.evaluate(_click("ops-refresh"))
            await page.wait_for(
                "document.querySelector('#buffer-rows tr')?.dataset.status === 'IDLE'",
                "the idle buffer item",
            )
            status = await page.evaluate("document.getElementById('buffer-status').textContent")
            assert status.startswith("idle · "), status

            # The flush fails while the page is open: the feed brings it in, unasked.
            await tenant.api.ok(FLUSH)
            flushes = await page.wait_for(
                f"(() => {{ const f = {_flush_rows()}; return f.length ? f : null; }})()",
                "the failed flush",
            )
            assert [(f["status"], f["trigger"]) for f in flushes] == [("FAILED", "manual")]
            assert "HTTP 500" in flushes[0]["error"]
            buffer = await page.evaluate(_texts("#buffer-rows td.status"))
            assert buffer == ["failed"]
            assert "HTTP 500" in await page.evaluate(
                "document.querySelector('#buffer-rows td.error').textContent"
            )
            assert (
                await page.evaluate("document.getElementById('retry-button').textContent")
                == "Retry 1 failed item"
            )
            failed_shot = await page.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            await asyncio.to_thread(_save_png, failed_shot, tmp_path / "dashboard-failed.png")

            # The LLM answers again: the button retries, and the panels show the outcome.
            llm.responder = memory_responder()  # 100 tokens in, 20 out per call
            failed_calls = len(llm.requests)
            await page.evaluate(_click("retry-button"))
            result = await page.wait_for(
                "(() => { const t = document.getElementById('retry-result').textContent;"
                " return t.includes('retried') ? t : null; })()",
                "the retry's outcome",
            )
            assert result == "1 retried: flushed, done"
            await page.wait_for(
                f"{_flush_rows()}.length === 2 && {_flush_rows()}[0].status === 'DONE'",
                "the retried flush",
            )
            assert [(f["status"], f["trigger"]) for f in await page.evaluate(_flush_rows())] == [
                ("DONE", "retry"),
                ("FAILED", "manual"),
            ]
            await page.wait_for(
                "document.getElementById('retry-button').hidden", "the retry button to go"
            )
            events = _texts("#events .summary")
            summaries = await page.wait_for(
                f"(() => {{ const s = {events}; return s.length ? s : null; }})()",
                "the event the retry made",
            )
            assert summaries == ["Alice teaches chemistry in Lyon."]

            # The chart: LLM tokens (input and output) of both flushes (the failed one spent
            # none), and their embedding tokens (none: embeddings are off).
            calls = len(llm.requests) - failed_calls
            assert calls >= 2  # summarize and extract at least
            points = await page.evaluate(_chart_points())
            assert sorted((p["series"], p["tokens"]) for p in points) == [
                ("embeddingTokens", 0),
                ("embeddingTokens", 0),
                ("llmTokens", 0),
                ("llmTokens", 120 * calls),
            ], points
            totals = await page.evaluate("document.getElementById('usage-totals').textContent")
            assert totals.startswith(
                f"project: 2 flushes · {calls} LLM calls · {100 * calls} in / {20 * calls} out"
            ), totals

            assert not any(tenant.api_key in url for url in _request_urls(page)[1:])
            assert page.problems() == []
            shot = await page.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard-retried.png")


FLUSH_EMBEDDING = """
query { user(userId: "alice") { flushes { id embeddingTexts embeddingTokens } } }
"""


def _legend() -> str:
    """[{series, text}] of the chart's legend."""
    return """[...document.querySelectorAll('#usage-legend li')].map(li => ({
        series: li.dataset.series, text: li.textContent}))"""


async def test_dashboard_charts_the_embedding_tokens_of_each_flush(
    database_url: str, browser: Browser, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.responder = memory_responder()
    # Slow embeddings: the flush's rows are indexed seconds after the page was told of it,
    # so the page must read the flush again to see what they cost.
    llm.add_embedding_replies(*[Reply(delay=1.0)] * 3)
    settings = make_settings(
        database_url,
        llm_base_url=llm.base_url,
        background_flushes=False,
        embedding_provider="openai",
        embedding_base_url=llm.base_url,
        embedding_model="scripted-embedder",
    )
    with live_server(settings) as server:
        tenant = await _make_tenant(server.http_url)
        query = urlencode({"key": tenant.api_key, "user": "alice"})
        async with _page(browser) as page:
            await page.navigate(f"{server.http_url}/dashboard?{query}")
            await page.wait_for(_status_is("connected"), "connected")
            await tenant.api.ok(INSERT_CHAT)
            await tenant.api.ok(FLUSH)

            # The server's figure, once the event, its fact and the two entries are indexed.
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                [flush] = (await tenant.api.ok(FLUSH_EMBEDDING))["user"]["flushes"]
                if flush["embeddingTexts"] == 4:
                    break
                assert time.monotonic() < deadline, flush
                await asyncio.sleep(0.1)
            embedded = [text for batch in llm.embedding_inputs() for text in batch]
            assert flush["embeddingTokens"] == word_count(embedded) > 0

            # The page shows it unasked: a point of the embedding series, and in the table.
            point = (
                "document.querySelector('#usage-chart circle.point"
                f'[data-series="embeddingTokens"][data-flush-id={_js(flush["id"])}]\')'
            )
            expected = str(flush["embeddingTokens"])
            await page.wait_for(f"{point}?.dataset.tokens === {_js(expected)}", "the figure")
            cell = await page.evaluate(
                f"document.querySelector('#flush-rows tr[data-flush-id={_js(flush['id'])}]"
                " td.embedding').textContent"
            )
            assert cell == f"{expected} (4)"
            llm_point = await page.evaluate(
                f"{point.replace('embeddingTokens', 'llmTokens')}.dataset.tokens"
            )
            calls = len(llm.requests)
            assert llm_point == str(120 * calls)  # 100 in + 20 out per call
            assert await page.evaluate(_legend()) == [
                {"series": "llmTokens", "text": "● LLM tokens (input + output)"},
                {"series": "embeddingTokens", "text": "● embedding tokens"},
            ]
            totals = await page.evaluate("document.getElementById('usage-totals').textContent")
            assert totals.endswith(f"4 texts embedded ({expected} tokens)"), totals
            assert page.problems() == []
            shot = await page.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            await asyncio.to_thread(_save_png, shot, tmp_path / "dashboard-embeddings.png")
