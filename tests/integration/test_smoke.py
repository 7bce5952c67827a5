from __future__ import annotations

from tests.support import Api, ProjectHandle


async def test_root_creates_project_and_key_that_authenticates(
    root: Api, project: ProjectHandle
) -> None:
    viewer = await project.api.ok("{ viewer { isRoot project { id name } } }")
    assert viewer["viewer"] == {"isRoot": False, "project": {"id": project.id, "name": "acme"}}
    root_viewer = await root.ok("{ viewer { isRoot project { id } } }")
    assert root_viewer["viewer"] == {"isRoot": True, "project": None}
