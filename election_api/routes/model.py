"""The loaded model: its manifest, and the admin route that checks the model store now."""

from __future__ import annotations

import asyncio
import hmac

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from election_api.errors import ApiError, FieldError
from election_api.openapi import ADMIN_SECURITY, error_responses
from election_api.schemas import ModelInfo, ReadyStatus
from election_api.state import ApiState


class ModelController(Controller):
    @get("/model/info", sync_to_thread=False, summary="Manifest of the loaded model", responses=error_responses(503))
    def model_info(self, api: NamedDependency[ApiState]) -> Response[ModelInfo]:
        # The body is the ModelInfo encoded once, when the model was loaded.
        return Response(api.manager.serving().info_json, media_type="application/json")


def _require_bearer_token(request: Request, token: str | None) -> None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    valid = token is not None and hmac.compare_digest(credential.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not valid:
        raise ApiError(
            401,
            "a valid bearer token is required",
            [FieldError("authorization", "missing or wrong token")],
            headers={"WWW-Authenticate": "Bearer"},
        )


class AdminController(Controller):
    """Registered only when ELECTION_API_ADMIN_TOKEN is set."""

    @post(
        "/admin/reload",
        status_code=200,
        summary="Check the model store now (bearer token required)",
        security=[{ADMIN_SECURITY: []}],
        responses=error_responses(401),
    )
    async def admin_reload(self, request: Request, api: NamedDependency[ApiState]) -> ReadyStatus:
        _require_bearer_token(request, api.settings.admin_token)
        swapped = await asyncio.to_thread(api.manager.poll_once)
        return msgspec.structs.replace(api.manager.status(), swapped=swapped)
