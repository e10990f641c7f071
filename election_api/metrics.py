"""Prometheus metrics, one ``CollectorRegistry`` per app instance (tests create several apps in one process)."""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import HistogramMetricFamily

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONFIDENCE_BUCKETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)

disable_created_metrics()  # no *_created samples: they only add noise to the exposition


class VectorHistogram:
    """A histogram that observes a whole array at once (a 10,000-row batch costs one ``bincount``)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry):
        self.name, self.documentation = name, documentation
        self._edges = np.asarray(buckets, dtype=np.float64)
        self._edge_list = self._edges.tolist()
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, value: float) -> None:
        """One value: the same bucket as ``observe_many`` (NaN counts in +Inf), without NumPy calls."""
        index = bisect_left(self._edge_list, value) if value == value else len(self._edge_list)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def observe_many(self, values: np.ndarray) -> None:
        # Bucket i counts values <= edges[i] (Prometheus "le" semantics); the last bucket is +Inf.
        index = np.searchsorted(self._edges, values, side="left")
        counts = np.bincount(index, minlength=len(self._counts))
        total = float(np.sum(values))
        with self._lock:
            self._counts += counts
            self._sum += total

    def describe(self):
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self):
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        labels = [repr(float(edge)) for edge in self._edges] + ["+Inf"]
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], list(zip(labels, cumulative, strict=True)), total)
        yield family


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "election_api_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "election_api_request_latency_seconds",
            "Request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.confidence = VectorHistogram(
            "election_prediction_confidence",
            "Confidence (max class probability) of each predicted row",
            CONFIDENCE_BUCKETS,
            r,
        )
        self.drift = Gauge(
            "election_drift_detected", "1 when the latest drift report found dataset drift, else 0", registry=r
        )
        self.drift_report_available = Gauge(
            "election_drift_report_available", "1 when the latest drift report could be read, else 0", registry=r
        )
        self.accuracy = Gauge(
            "election_model_accuracy",
            "Held-out accuracy of the loaded model (its manifest metrics.accuracy)",
            registry=r,
        )
        self.model_loaded = Gauge("election_model_loaded", "1 when a valid model is loaded, else 0", registry=r)
        self.reloads = Counter("election_model_reloads", "Successful model loads and swaps", registry=r)
        self.reload_failures = Counter(
            "election_model_reload_failures",
            "Failed attempts to load a new model version (counted once per distinct version and error)",
            registry=r,
        )
        self.accuracy.set(float("nan"))
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... of this process (Linux).
        ProcessCollector(registry=r)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count a request and its latency; the labelled series are looked up once per (route, method, status)."""
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)
