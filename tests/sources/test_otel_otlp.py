"""The OTLP decoder's series keys: a point's series is the hash of its resource, metric name,
attributes and reading (``otlp.series_key``) however the decoder builds it, so a point decoded by
this version is the same series as one stored by an earlier one (a resend is still ignored, a
cumulative run still continues)."""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from bot.sources.otel import base, otlp
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


SECRET = "sk-ant-admin01-" + "Q" * 40  # a key pasted where a header or a number belongs
POINT = {"name": "claude_code.token.usage", "sum": {"dataPoints": [{"asInt": SECRET}]}}
BAD_JSON = json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [POINT]}]}]}).encode()


def test_a_refusal_names_the_field_and_the_problem_never_the_value():
    refusals = []
    for attempt in (
        lambda: otlp.inflate(b"", SECRET, 1024),
        lambda: otlp.parse(otlp.METRICS, b"{}", f"text/{SECRET}"),
        lambda: otlp.parse(otlp.METRICS, BAD_JSON, otlp.JSON),
        lambda: base.whole(SECRET, "input_tokens"),
        lambda: base.usd_micros(SECRET, "cost_usd"),
    ):
        with pytest.raises(base.BadPayload) as refused:
            attempt()
        refusals.append(str(refused.value))
    assert not [message for message in refusals if "sk-ant" in message]
    assert refusals[0] == "unsupported Content-Encoding (use gzip or none)"
    assert refusals[3] == "input_tokens is not a number but a text of 55 characters"
    assert refusals[4] == "cost_usd is not a number but a text of 55 characters"
    with pytest.raises(base.BadPayload, match=r"^cost_usd is not a finite non-negative number$"):
        base.usd_micros("-1", "cost_usd")
