"""The live updater's Prometheus metrics (served on ``ELECTION_LIVE_METRICS_PORT``, 9108 by default).

Names are the contract with ``monitoring/`` (the Grafana panels and the lag alert); one registry per updater, so
tests can run several in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from election_assets.core.live import DEAD_LETTER_REASONS

disable_created_metrics()  # no *_created samples, as in the API's exposition: they only add noise

# From the time JetStream stored a county report to the time the estimate that includes it is in the bucket.
UPDATE_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.applied = Counter(
            "election_live_messages_applied",
            "County result messages applied to the live estimate.",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "election_live_messages_duplicate",
            "County result messages delivered again after they were applied (acknowledged, not applied twice).",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "election_live_messages_dead_lettered",
            "County result messages set aside on the dead-letter subject, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in DEAD_LETTER_REASONS:
            self.dead_lettered.labels(reason=reason)  # every reason exported from the start, at 0
        self.consumer_lag = Gauge(
            "election_live_consumer_lag_messages",
            "Messages in the results stream the updater's durable consumer has not yet received.",
            registry=self.registry,
        )
        self.update_latency = Histogram(
            "election_live_update_latency_seconds",
            "From a county report's arrival in JetStream to the key-value bucket holding the estimate that "
            "includes it.",
            buckets=UPDATE_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.states_called = Gauge(
            "election_live_states_called", "States (and DC) called so far.", registry=self.registry
        )
        self.national_p_dem = Gauge(
            "election_live_national_p_dem",
            "Probability the Democratic candidate wins the electoral college.",
            registry=self.registry,
        )
        self.last_update = Gauge(
            "election_live_last_update_timestamp_seconds",
            "Unix time of the last estimate written to the bucket.",
            registry=self.registry,
        )
