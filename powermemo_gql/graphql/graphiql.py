"""GraphiQL served offline: our page, with GraphiQL, React and graphql-ws from an installed package.

strawberry's own page loads them from a CDN, which leaves a blank page on a machine without
internet. The PyPI package graphene-django-graphiql-static ships the same builds as plain files
(it needs no Django: only its static folder is read), so `pip install` brings them and nothing
is fetched at run time or copied into this repository.
"""

from __future__ import annotations

import ipaddress
import json
from importlib.resources import files

from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from powermemo_gql.settings import Settings

ASSETS_PATH = "/graphiql/assets"
_VENDOR_PACKAGE = "graphene_django_graphiql_static"
_VENDOR_DIRECTORY = "static/graphene_django_graphiql_static"
# React before GraphiQL, then our start-up. GraphiQL's build carries its own graphql-ws client.
_STYLES = ("graphiql.min.css",)
_SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "start.js")
_PAGE = files(__package__ or "powermemo_gql.graphql").joinpath("graphiql_static", "page.html")
# Not executed by the browser as script: the page's config is read with JSON.parse.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def assets() -> StaticFiles:
    """The vendor files first, then our own (start.js), both read from installed packages."""
    return StaticFiles(
        packages=[(_VENDOR_PACKAGE, _VENDOR_DIRECTORY), (__package__ or "", "graphiql_static")]
    )


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prefilled_headers(settings: Settings, request: Request) -> dict[str, str]:
    """The root token in GraphiQL's header editor: development only, and only for a browser on
    this machine (a development server bound to 0.0.0.0 must not hand it to the network)."""
    token = settings.root_token
    if settings.is_production or token is None or not _is_loopback(request):
        return {}
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


def page(settings: Settings, request: Request) -> str:
    headers = prefilled_headers(settings, request)
    config = {
        "url": "/graphql",
        "headers": json.dumps(headers, indent=2) if headers else "",
    }
    links = "\n".join(f'  <link rel="stylesheet" href="{ASSETS_PATH}/{name}">' for name in _STYLES)
    scripts = "\n".join(f'  <script src="{ASSETS_PATH}/{name}"></script>' for name in _SCRIPTS)
    return (
        _PAGE.read_text(encoding="utf-8")
        .replace("<!-- styles -->", links)
        .replace("<!-- scripts -->", scripts)
        .replace("{{config}}", json.dumps(config).translate(_SCRIPT_ESCAPES))
    )
