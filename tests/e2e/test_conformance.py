"""GraphQL-over-HTTP conformance: graphql-http's auditServer finds no MUST or SHOULD failure,
and schemathesis no server error."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import Server, _env
from tests.support import ROOT_TOKEN

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".conformance"

SCHEMATHESIS = TOOLS / "venv" / "bin" / "st"
# Operations only the root token may call; everything else runs with a project key.
ROOT_OPERATIONS = (
    r"^(Query\.(projects|project)|Mutation\.(createProject|createApiKey|revokeApiKey))$"
)


@pytest.mark.skipif(
    shutil.which("node") is None or not (TOOLS / "node_modules" / "graphql-http").is_dir(),
    reason="needs Node.js and scripts/install-conformance-tools (CI runs both)",
)
def test_graphql_over_http_audit_has_no_must_failures(tmp_path: Path, database_url: str) -> None:
    # The audit script must sit beside node_modules for Node to resolve graphql-http.
    shutil.copyfile(Path(__file__).parent.parent / "conformance" / "audit.mjs", TOOLS / "audit.mjs")
    server = Server(
        _env(POWERMEMO_DATABASE_URL=database_url, POWERMEMO_ROOT_TOKEN=ROOT_TOKEN), tmp_path
    )
    try:
        audit = subprocess.run(
            [
                shutil.which("node") or "node",
                str(TOOLS / "audit.mjs"),
                f"{server.url}/graphql",
                ROOT_TOKEN,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        server.stop()
    results = json.loads(audit.stdout)
    assert len(results) > 40  # the audit ran in full
    failures = [r for r in results if r["status"] == "error"]
    assert failures == [], failures
    # MUSTs are audited as "error" when they fail; SHOULDs and MAYs as "warn" and "notice".
    # Every SHOULD holds too: application/graphql-response+json, 400 for parse, validation
    # and variable coercion failures with it, no data entry when nothing ran.
    warnings = [r for r in results if r["status"] == "warn"]
    assert warnings == [], warnings
    # The MAYs left out are GET queries, which are off on purpose.
    notices = [r for r in results if r["status"] == "notice"]
    assert all("GET" in r["name"] for r in notices), notices
    assert all(r["status"] in ("ok", "notice") for r in results)


def _project_key(server: Server) -> str:
    create = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": 'mutation { createProject(input: {name: "fuzz"}) '
            "{ ... on CreateProjectPayload { project { id } } } }"
        },
        headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
        timeout=10,
    )
    project_id = create.json()["data"]["createProject"]["project"]["id"]
    issued = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": "mutation($p: ID!) { createApiKey(input: {projectId: $p}) "
            "{ ... on CreateApiKeyPayload { secret } } }",
            "variables": {"p": project_id},
        },
        headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
        timeout=10,
    )
    secret: str = issued.json()["data"]["createApiKey"]["secret"]
    return secret


@pytest.mark.skipif(
    not SCHEMATHESIS.exists(),
    reason="needs scripts/install-conformance-tools (CI runs it)",
)
def test_schemathesis_finds_no_server_errors(tmp_path: Path, database_url: str) -> None:
    server = Server(
        _env(
            POWERMEMO_DATABASE_URL=database_url,
            POWERMEMO_ROOT_TOKEN=ROOT_TOKEN,
            POWERMEMO_RATE_LIMIT_PER_MINUTE="0",
            POWERMEMO_LLM_BASE_URL="http://127.0.0.1:9/v1",  # nothing online, ever
            POWERMEMO_LLM_MAX_RETRIES="0",
        ),
        tmp_path,
    )
    env = {**_env(), "SCHEMATHESIS_HOOKS": "tests.conformance.st_hooks", "PYTHONPATH": str(REPO)}
    try:
        key = _project_key(server)
        runs = [
            ("--exclude-name-regex", ROOT_OPERATIONS, key),
            ("--include-name-regex", ROOT_OPERATIONS, ROOT_TOKEN),
        ]
        for selector, operations, token in runs:
            run = subprocess.run(
                [
                    str(SCHEMATHESIS),
                    "run",
                    str(REPO / "schema.graphql"),
                    "--url",
                    f"{server.url}/graphql",
                    "-H",
                    f"Authorization: Bearer {token}",
                    "--checks",
                    "no_internal_error",
                    "--max-examples",
                    "25",
                    "--seed",
                    "20261124",
                    selector,
                    operations,
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
                cwd=REPO,
                check=False,
            )
            # On failure, show the server's log too: the traceback behind a masked error.
            assert run.returncode == 0, (
                run.stdout[-4000:]
                + run.stderr[-2000:]
                + "\n--- server log ---\n"
                + server.output()[-6000:]
            )
            assert " passed" in run.stdout
    finally:
        server.stop()
