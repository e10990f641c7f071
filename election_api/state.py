"""What one app instance serves with. ``create_app`` builds one ``ApiState`` per app (tests run several apps side
by side, each with its own metrics registry and model manager), and Litestar's dependency injection hands it to
the route handlers that declare ``api: NamedDependency[ApiState]``.

One dependency, not one per part: Litestar resolves two or more dependencies of a handler in a task group, which
added about 0.5 ms to every prediction."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.di import Provide

from election_api.capacity import BatchSlots
from election_api.codec import RequestCodec
from election_api.live import LiveFeed
from election_api.metrics import ApiMetrics
from election_api.serving import ModelManager, Poller
from election_api.settings import ApiSettings


@dataclass(frozen=True)
class ApiState:
    settings: ApiSettings
    metrics: ApiMetrics
    manager: ModelManager
    poller: Poller
    codec: RequestCodec
    batch_slots: BatchSlots
    live: LiveFeed | None = None  # election night's bucket watch, when ``settings.live`` is set

    @classmethod
    def build(cls, settings: ApiSettings) -> ApiState:
        metrics = ApiMetrics()
        manager = ModelManager(settings, metrics)
        poller = Poller(manager, settings.reload_interval_seconds)
        slots = BatchSlots(settings.max_concurrent_batches, settings.batch_wait_seconds)
        live = LiveFeed(settings.live) if settings.live else None
        return cls(settings, metrics, manager, poller, RequestCodec(settings.data_mode), slots, live)

    def dependencies(self) -> dict[str, Provide]:
        """This state as the app's one dependency, ``api``."""
        return {"api": Provide(self._provide, use_cache=True, sync_to_thread=False)}

    def _provide(self) -> ApiState:
        return self
