"""The OTLP decoder's series keys: a point's series is the hash of its resource, metric name,
attributes and reading (``otlp.series_key``) however the decoder builds it, so a point decoded by
this version is the same series as one stored by an earlier one (a resend is still ignored, a
cumulative run still continues)."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bot.sources.otel import otlp
from tests.support.otel import DELTA, ClaudeCode, claude_person

LIMITS = otlp.Limits(max_bytes=1_000_000, max_points=1_000, max_people=10, max_age_days=30)


def test_every_point_is_the_series_its_resource_metric_and_attributes_name():
    agent = ClaudeCode(DELTA)
    for email, model in (("ana@example.com", "claude-sonnet-4-5"), ("ben@example.com", "claude-opus-4-1")):
        agent.use(claude_person(email), model=model, input=10, output=20, cache_read=3, usd=0.5, commits=1)
    body = agent.protobuf()
    decoded = otlp.decode(
        otlp.METRICS, body, content_type=otlp.PROTOBUF, encoding="", limits=LIMITS, now_ns=time.time_ns()
    )

    request = ExportMetricsServiceRequest.FromString(body)
    expected = set()
    for resource_metrics in request.resource_metrics:
        resource = otlp.attributes(resource_metrics.resource.attributes)
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.sum.data_points:
                    own = otlp.attributes(point.attributes)
                    for reading in otlp.AGENTS["claude_code"].metric_readings(
                        metric.name, {**resource, **own}, point.as_double or point.as_int
                    ):
                        expected.add(
                            otlp.series_key(resource, metric.name, own, reading.measure, reading.model)
                        )
    assert {p.series for p in decoded.points} == expected
    assert len(expected) == len(decoded.points) == 2 * (4 + 1)  # per person: 3 token types, cost, commits
