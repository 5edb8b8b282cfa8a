"""Stored Responses answers are kept for the workspace's `response_retention_days` (30 days
unless set), a setting the workspace's admins can change."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from perpetuo.api import responses
from perpetuo.control.workspaces import WorkspaceUpdate


@pytest.mark.parametrize(("settings", "days"), [({}, 30), ({"response_retention_days": 2}, 2)])
def test_stored_answers_expire_after_the_workspace_setting(settings, days):
    kept: list = []
    gw = SimpleNamespace(responses=SimpleNamespace(put=kept.append))
    ctx = SimpleNamespace(
        principal=SimpleNamespace(workspace_id="ws_1", key_id="key_1"),
        workspace=SimpleNamespace(settings=settings),
        alias="gpt",
        deployment=None,
    )
    keep = responses._keeper(gw, ctx, {"model": "gpt", "input": "hi"}, [])
    keep({"id": "resp_1", "object": "response"}, False)
    (stored,) = kept
    assert stored.workspace_id == "ws_1" and stored.expires_at - stored.created_at == dt.timedelta(
        days=days
    )


def test_the_retention_is_a_workspace_setting():
    patch = WorkspaceUpdate.model_validate({"settings": {"response_retention_days": 7}})
    assert patch.settings is not None and patch.settings.response_retention_days == 7
