"""The dashboard page and its scripts are served by the app itself, and nothing else is."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette


async def _get(app: Starlette, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.get(path)


async def test_the_page_loads_its_scripts_from_this_server(app: Starlette) -> None:
    page = await _get(app, "/dashboard")
    assert page.status_code == 200
    # Only scripts of this origin may run: no inline script, no CDN.
    assert "script-src 'self'" in page.text
    assert '<script type="module" src="/dashboard/app.js"></script>' in page.text
    for name in ("app.js", "ops.js"):
        script = await _get(app, f"/dashboard/{name}")
        assert script.status_code == 200, name
        assert script.headers["content-type"].startswith("text/javascript")
    app_js = (await _get(app, "/dashboard/app.js")).text
    assert 'import { createOperator, shortId } from "./ops.js";' in app_js


async def test_no_other_file_is_served_from_the_dashboard_folder(app: Starlette) -> None:
    for path in ("/dashboard/index.html", "/dashboard/missing.js", "/dashboard/..%2Fapp.py"):
        response = await _get(app, path)
        assert response.status_code == 404, path


async def test_a_connect_before_the_script_runs_puts_no_key_in_a_url(app: Starlette) -> None:
    # The browser's own submit of the form: a POST (key in the body), which is refused.
    page = (await _get(app, "/dashboard")).text
    assert '<form id="connect-form" method="post"' in page
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.post("/dashboard", data={"key": "pm_secret", "user": "alice"})
    assert response.status_code == 405
