"""/api/workspaces/{workspace_id}/chat-sessions: the conversations kept for the workspace's
keys (list, read, delete); /chat-sessions.json: all of them, exported as one JSON document."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from perpetuo.api.admin.deps import ActorDep, PlaneDep
from perpetuo.api.admin.envelope import CursorParam, LimitParam, one, page
from perpetuo.api.admin.responses import WORKSPACE, WORKSPACE_ROLE, json_errors
from perpetuo.control import chat_session_admin as service
from perpetuo.control.chat_sessions import ChatSessionStore

router = APIRouter(
    prefix="/api/workspaces/{workspace_id}", tags=["Chat sessions"], responses=WORKSPACE
)


def _store(request: Request) -> ChatSessionStore:
    return request.app.state.gateway.chat_sessions


class JSONStream(StreamingResponse):
    media_type = "application/json"


class ChatSessionExport(BaseModel):
    """What the export holds (written in pieces, so that a large workspace is never held
    in memory whole)."""

    object: Literal["chat_session_export"]
    workspace_id: str
    exported_at: str = Field(description="ISO 8601, UTC")
    sessions: list[dict[str, Any]] = Field(description="Each session with its messages")


@router.get("/chat-sessions", summary="List the workspace's chat sessions (newest first)")
async def list_sessions(
    workspace_id: str,
    request: Request,
    actor: ActorDep,
    plane: PlaneDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    result = await service.list_sessions(
        plane, _store(request), actor, workspace_id, limit=limit, cursor=cursor
    )
    return page(result, service.listed_view)


@router.get(
    "/chat-sessions.json",
    summary="Export every chat session with its messages as JSON (admins; audited)",
    response_class=JSONStream,
    responses={
        200: {
            "description": "Every session, with its messages",
            "content": {"application/json": {"schema": ChatSessionExport.model_json_schema()}},
        },
        **json_errors(*WORKSPACE_ROLE),
    },
)
async def export_sessions(
    workspace_id: str, request: Request, actor: ActorDep, plane: PlaneDep
) -> JSONStream:
    pieces = await service.export_sessions(plane, _store(request), actor, workspace_id)
    name = f"perpetuo-chat-sessions-{workspace_id}.json"
    return JSONStream(pieces, headers={"content-disposition": f'attachment; filename="{name}"'})


@router.get(
    "/chat-sessions/{session_id}",
    summary="A chat session with its messages (admins)",
    responses=WORKSPACE_ROLE,
)
async def get_session(
    workspace_id: str, session_id: str, request: Request, actor: ActorDep, plane: PlaneDep
) -> dict[str, Any]:
    return one(await service.get_session(plane, _store(request), actor, workspace_id, session_id))


@router.delete(
    "/chat-sessions/{session_id}",
    status_code=204,
    summary="Delete a chat session and its messages (admins; audited)",
    responses=WORKSPACE_ROLE,
)
async def delete_session(
    workspace_id: str, session_id: str, request: Request, actor: ActorDep, plane: PlaneDep
) -> Response:
    await service.delete_session(plane, _store(request), actor, workspace_id, session_id)
    return Response(status_code=204)
