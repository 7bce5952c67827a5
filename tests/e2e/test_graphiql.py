"""GraphiQL in a headless Chromium that can reach nothing but this machine.

Every name resolves to nothing except 127.0.0.1, so a page that needed a CDN would stay blank;
the test also checks that no request left loopback. In development the page opens with the
root token in its headers (no typing), loads the schema and runs a query.
Needs Debian's Chromium: `scripts/install-chromium` installs it; without it the test is skipped.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_settings
from tests.e2e.test_dashboard import (
    CHROMIUM,
    Browser,
    Page,
    _devtools_port,
    _kill,
    _page,
    _save_png,
)
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, create_project

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: run scripts/install-chromium (Debian's chromium package)",
)

QUERY = "{ projects(first: 5) { nodes { name } } }"


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    with live_server(make_settings(database_url)) as server:
        yield server


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[Browser]:
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
                # The network is off: no name resolves (a CDN's included), 127.0.0.1 excepted.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",  # and nothing leaves by address either
                "--proxy-bypass-list=127.0.0.1",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Browser(process, _devtools_port(process, profile, log), log)
    finally:
        _kill(process)


def _requested(page: Page) -> list[str]:
    return [
        event["params"]["request"]["url"]
        for event in page.events
        if event.get("method") == "Network.requestWillBeSent"
    ]


def _editor(selector: str) -> str:
    """The CodeMirror instance inside `selector` (GraphiQL's editors are CodeMirror 5)."""
    return f"document.querySelector({json.dumps(selector + ' .CodeMirror')})?.CodeMirror"


async def test_graphiql_opens_with_the_schema_and_runs_a_query_offline(
    live: LiveServer, offline_browser: Browser, tmp_path: Path
) -> None:
    await create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "graphiql-e2e")
    async with _page(offline_browser) as page:
        await page.navigate(f"{live.http_url}/graphql")
        await page.wait_for(_editor(".graphiql-query-editor") + " !== undefined", "GraphiQL")

        # The root token is in the headers editor already: nobody typed it.
        headers = await page.wait_for(
            _editor(".graphiql-editor-tool .graphiql-editor:not(.hidden)") + "?.getValue()",
            "the headers editor",
        )
        assert json.loads(headers) == {"Authorization": f"Bearer {ROOT_TOKEN}"}

        # The schema loaded (the introspection query was authorised): the docs list Query.
        await page.evaluate(
            "document.querySelector('[aria-label=\"Show Documentation Explorer\"]').click()"
        )
        docs = await page.wait_for(
            "document.querySelector('.graphiql-doc-explorer')?.textContent", "the docs"
        )
        await page.wait_for(
            "document.querySelector('.graphiql-doc-explorer')?.textContent.includes('Query')",
            f"the schema in the docs (they show {docs!r})",
        )

        await page.evaluate(f"{_editor('.graphiql-query-editor')}.setValue({json.dumps(QUERY)})")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        result = await page.wait_for(
            f"""(() => {{
                const text = {_editor(".result-window")}?.getValue() ?? "";
                return text.includes("graphiql-e2e") ? text : null;
            }})()""",
            "the query's result",
        )
        assert {"name": "graphiql-e2e"} in json.loads(result)["data"]["projects"]["nodes"]

        requested = _requested(page)
        assert any(url.endswith("/graphiql/assets/graphiql.min.js") for url in requested)
        elsewhere = [u for u in requested if urlsplit(u).hostname not in ("127.0.0.1", None)]
        assert elsewhere == []
        assert page.problems() == []
        shot = await page.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(_save_png, shot, tmp_path / "graphiql.png")
