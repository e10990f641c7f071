"""``ElectionApi``: Litestar plus one outer layer for every HTTP request, and the app's ``ApiState``."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

from litestar import Litestar

from election_api.logs import AccessLog
from election_api.serving import ModelManager
from election_api.settings import ApiSettings
from election_api.state import ApiState


class ElectionApi(Litestar):
    """The outer layer sees every HTTP request (also 404/405/413): request id, access log, metrics.

    The route label is the matched route template (``scope["path_template"]``), never the raw path.
    """

    def __init__(self, api_state: ApiState, **config: Any) -> None:
        super().__init__(**config)
        self.api_state = api_state
        self.access_log = AccessLog()
        # Generated request ids: 32 hex digits, a random prefix per process and a counter (no syscall per request).
        self._request_id_prefix = secrets.token_hex(8)
        self._request_counter = itertools.count()

    @property
    def settings(self) -> ApiSettings:
        return self.api_state.settings

    @property
    def manager(self) -> ModelManager:
        return self.api_state.manager

    @staticmethod
    def _get_default_plugins(plugins: list[Any]) -> list[Any]:
        # Every request and response model here is a msgspec struct or a dataclass. Litestar would also load its
        # pydantic and attrs plugins whenever those libraries are installed (they are, in the dev environment),
        # which costs about 0.3 s of imports at start-up and serves nothing.
        from litestar.plugins.core import MsgspecDIPlugin

        return [*plugins, MsgspecDIPlugin()]

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 128 and candidate.isprintable():
                    request_id = candidate
                break
        if request_id is None:
            request_id = f"{self._request_id_prefix}{next(self._request_counter):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "<unmatched>"
            settings = self.api_state.settings
            self.api_state.metrics.observe_request(route, scope["method"], status, elapsed)
            if settings.access_log:
                self.access_log(request_id, scope["method"], scope["path"], route, status, elapsed)
