"""`--prometheus-port`: the running load test as Prometheus metrics, so a Grafana board can
show it beside CloudWatch's view of the endpoint.

Prometheus, not OpenTelemetry: it needs no collector in between (Prometheus or an agent
scrapes the port), one small maintained library (prometheus_client, the `metrics` extra),
and its text format is what Grafana users already point dashboards at. The exporter reads
the runner's once-a-second Snapshot (recommender.loadgen.progress), so it adds nothing to
Locust's hot path, and serves on 127.0.0.1 only unless told otherwise.

    recommender_requests_total                  requests completed (counter)
    recommender_errors_total{kind}              errors by kind (counter)
    recommender_latency_seconds                 successes' latency from the intended send,
                                                coordinated-omission corrected (histogram)
    recommender_offered_rps, recommender_achieved_rps, recommender_stage,
    recommender_stage_within_slo, recommender_generator_cpu_percent   (gauges)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recommender.errors import ConfigError
from recommender.loadgen.progress import BUCKETS_MS, Snapshot


class PrometheusExporter:
    """Serves the latest snapshot at http://<host>:<port>/metrics until `close()`."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            from prometheus_client import start_http_server
            from prometheus_client.registry import CollectorRegistry
        except ImportError:
            raise ConfigError("--prometheus-port needs prometheus_client",
                              "pip install 'sagemaker-recommender[metrics]'") from None  # fmt: skip
        self.snapshot: Snapshot | None = None
        registry = CollectorRegistry(auto_describe=True)
        registry.register(self)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}",
                              "pick a free --prometheus-port") from None  # fmt: skip
        self.port = int(self._server.server_port)

    def update(self, snapshot: Snapshot | None) -> None:
        if snapshot is not None:  # None: the load is over; the last values stay scrapeable
            self.snapshot = snapshot

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def collect(self) -> Iterator[Any]:
        """prometheus_client's collector protocol: the metrics, built from the snapshot."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        s = self.snapshot
        if s is None:
            return
        yield CounterMetricFamily("recommender_requests", "Requests completed.",
                                  value=s.total_requests)  # fmt: skip
        errors = CounterMetricFamily("recommender_errors", "Errors by kind.", labels=["kind"])
        for kind, n in sorted(s.total_errors.items()):
            errors.add_metric([kind], n)
        yield errors
        buckets = [(f"{bound / 1000:g}", n) for bound, n in zip(BUCKETS_MS, s.latency_buckets,
                                                                 strict=True)]  # fmt: skip
        buckets.append(("+Inf", s.latency_count))
        yield HistogramMetricFamily(
            "recommender_latency_seconds",
            "Successes' latency from the intended send (coordinated-omission corrected).",
            buckets=buckets, sum_value=s.latency_sum_ms / 1000,
        )  # fmt: skip
        gauges = {
            "recommender_offered_rps": ("Offered arrival rate of the stage.", s.offered_rps),
            "recommender_achieved_rps": ("Completions per second, last seconds.",
                                         s.achieved_rps),
            "recommender_stage": ("Stage now playing (1-based, rests counted).", s.stage + 1),
            "recommender_stage_within_slo": (
                "1 while the stage so far is within the SLO, 0 when not.",
                None if s.within_slo is None else float(s.within_slo)),
            "recommender_generator_cpu_percent": ("Load generator CPU.", s.cpu_percent),
        }  # fmt: skip
        for name, (text, value) in gauges.items():
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)
