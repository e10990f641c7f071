"""The Litestar application: ``create_app(settings)`` builds one independent instance (own metrics registry,
own model manager, own poller), so tests can run several side by side.

The parts: ``routes`` (the handlers, by responsibility), ``state`` (what they serve with, handed to them by
dependency injection), ``errors`` (the one error shape), ``openapi`` (the document and the docs pages), ``codec``
(request bodies), ``schemas`` (response models), ``serving`` (the model and its hot swap), ``live`` and
``live_page`` (election night's estimate, watched on NATS, and its page) and ``asgi`` (the request id, access log and
metrics around every request).
"""

from __future__ import annotations

from election_api.asgi import ElectionApi
from election_api.errors import EXCEPTION_HANDLERS
from election_api.openapi import openapi_config
from election_api.routes import route_handlers
from election_api.routes.live import live_routes
from election_api.settings import ApiSettings
from election_api.state import ApiState


def create_app(settings: ApiSettings | None = None) -> ElectionApi:
    settings = settings or ApiSettings.from_env()
    state = ApiState.build(settings)
    return ElectionApi(
        state,
        route_handlers=[*route_handlers(settings), *live_routes(settings)],
        dependencies=state.dependencies(),
        lifespan=[state.poller.lifespan, *([state.live.lifespan] if state.live else [])],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(settings.data_mode),
        debug=False,
    )
