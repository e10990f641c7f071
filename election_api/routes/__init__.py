"""The routes, by responsibility: the service itself (``service``), predictions (``predictions``) and the model
(``model``). Handlers get the app's parts (``ApiState``) by Litestar dependency injection."""

from __future__ import annotations

from typing import Any

from election_api.openapi import docs_assets_router
from election_api.routes.model import AdminController, ModelController
from election_api.routes.predictions import prediction_routes
from election_api.routes.service import ServiceController
from election_api.settings import ApiSettings


def route_handlers(settings: ApiSettings) -> list[Any]:
    """Every route of an app with these settings; ``POST /admin/reload`` only when an admin token is set."""
    handlers = [ServiceController, ModelController, *prediction_routes(settings), docs_assets_router()]
    if settings.admin_token:
        handlers.append(AdminController)
    return handlers
