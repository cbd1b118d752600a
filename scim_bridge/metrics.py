"""Prometheus metrics, served at `/metrics` on the admin listener (names and labels: docs/operations.md).

One `Metrics` per application, on its own registry: nothing is registered at import time, and two bridges in
one process (as in tests) never share a counter. Label values are bounded: SCIM resource names, route and
SonarQube endpoint templates, HTTP statuses and methods, store operation names — never ids, logins or paths.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: from a store read to SonarQube's slowest answers within a deadline.
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
NO_ANSWER: Final = "none"  # the status label of a SonarQube call that got no HTTP answer


class Metrics:
    """Every collector of one bridge, on `registry`."""

    def __init__(self, *, service_token: bool = False) -> None:
        """`service_token`: the bridge calls SonarQube with its own token (auth static), whose validity is
        then a gauge."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        scim_labels = ("resource", "method")
        self.scim_requests = Counter(
            "scim_bridge_scim_requests",
            "SCIM requests answered, by resource, method and status",
            (*scim_labels, "status"),
            registry=self.registry,
        )
        self.scim_seconds = Histogram(
            "scim_bridge_scim_request_seconds",
            "Time to answer a SCIM request, SonarQube calls included",
            scim_labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "scim_bridge_requests_in_flight",
            "Requests being answered now (SCIM and proxied)",
            registry=self.registry,
        )
        sonar_labels = ("endpoint", "method")
        self.sonar_calls = Counter(
            "scim_bridge_sonarqube_calls",
            "Attempts of SonarQube Web API calls by endpoint template, method, status ('none': no answer)",
            (*sonar_labels, "status"),
            registry=self.registry,
        )
        self.sonar_seconds = Histogram(
            "scim_bridge_sonarqube_call_seconds",
            "Time of one attempt of a SonarQube Web API call",
            sonar_labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sonar_retries = Counter(
            "scim_bridge_sonarqube_retries",
            "SonarQube calls retried, by endpoint template and the status or failure that caused it",
            ("endpoint", "cause"),
            registry=self.registry,
        )
        self.sonar_up = Gauge(
            "scim_bridge_sonarqube_up",
            "1 while SonarQube answers UP to api/system/status, else 0",
            registry=self.registry,
        )
        self.sonar_info = Gauge(
            "scim_bridge_sonarqube_info",
            "The SonarQube version detected and the Web API dialect chosen for it (value 1)",
            ("version", "dialect"),
            registry=self.registry,
        )
        self.proxy_requests = Counter(
            "scim_bridge_proxy_requests",
            "Requests streamed through to SonarQube, by the status answered",
            ("status",),
            registry=self.registry,
        )
        self.proxy_seconds = Histogram(
            "scim_bridge_proxy_request_seconds",
            "Time until a proxied request was answered",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "scim_bridge_store_operation_seconds",
            "Time of one state-store operation, by operation",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.service_token_valid = Gauge(
            "scim_bridge_service_token_valid",
            "auth 'static': 1 while SonarQube accepts the bridge's own token as an administrator's, else 0",
            registry=self.registry if service_token else None,
        )

    # -- observations the layers below report ----------------------------------------------------------
    def _labelled(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label set: prometheus-client's own look-up takes a
        lock and builds tuples on every call, which showed in the profiles (docs/performance.md). The label
        sets are few (endpoints, methods, statuses, store operations)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def sonarqube_attempt(self, endpoint: str, method: str, status: int | None, seconds: float) -> None:
        answer = NO_ANSWER if status is None else str(status)
        self._labelled(self.sonar_calls, endpoint, method, answer).inc()
        self._labelled(self.sonar_seconds, endpoint, method).observe(seconds)

    def sonarqube_retry(self, endpoint: str, cause: str) -> None:
        self.sonar_retries.labels(endpoint, cause).inc()

    def sonarqube_state(self, *, up: bool, version: str | None, dialect: str | None) -> None:
        self.sonar_up.set(1 if up else 0)
        self.sonar_info.clear()
        if version is not None and dialect is not None:
            self.sonar_info.labels(version, dialect).set(1)

    def store_operation(self, operation: str, seconds: float) -> None:
        self._labelled(self.store_seconds, operation).observe(seconds)

    def proxy_answer(self, status: int, seconds: float) -> None:
        self._labelled(self.proxy_requests, str(status)).inc()
        self.proxy_seconds.observe(seconds)

    def scim_answer(self, resource: str, method: str, status: int, seconds: float) -> None:
        self._labelled(self.scim_requests, resource, method, str(status)).inc()
        self._labelled(self.scim_seconds, resource, method).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format Prometheus scrapes."""
        return generate_latest(self.registry)
