"""OTLP/HTTP request bodies -> agent points, with the official ``opentelemetry-proto`` messages.

Encodings as the OTLP specification defines them: binary protobuf (``application/x-protobuf``) or
protobuf JSON (``application/json``, read with ``google.protobuf.json_format``, unknown fields
ignored as the spec asks). Gzip bodies are inflated with a ceiling, so a small compressed body
cannot expand into gigabytes. Anything that cannot be stored as sent raises ``BadPayload`` (the
caller answers 400 and stores nothing); data points of metrics no agent claims are counted as
rejected (the partial-success answer) and never stored.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from bot.sources.otel import AGENTS
from bot.sources.otel.base import AgentMapping, BadPayload, Person, session_of

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
METRICS = "metrics"
LOGS = "logs"
NANOS = 1_000_000_000


class TooLarge(ValueError):
    """The body, or what it inflates to, is over the configured ceiling (413)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_points: int
    max_people: int
    max_age_days: int


@dataclass(frozen=True, slots=True)
class Point:
    agent: str
    series: str
    metric: str
    start_ns: int
    time_ns: int
    actor: str
    measure: str
    model: str
    cumulative: bool
    value: int
    session: str = ""  # the agent session id (``AgentMapping.session_attribute``), lower-case

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.time_ns // NANOS, UTC).date()


@dataclass
class Decoded:
    points: list[Point] = field(default_factory=list)
    people: dict[str, Person] = field(default_factory=dict)  # actor -> person
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason not in self.reasons and len(self.reasons) < 5:
            self.reasons.append(reason)


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding, at most ``limit`` bytes once inflated."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BadPayload("unsupported Content-Encoding (use gzip or none)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BadPayload("the body is not valid gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BadPayload("the gzip body is truncated")
    return out


def parse(signal: str, body: bytes, content_type: str) -> Message:
    message = ExportMetricsServiceRequest() if signal == METRICS else ExportLogsServiceRequest()
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        if kind == PROTOBUF:
            message.ParseFromString(body)
        elif kind == JSON:
            json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
        else:
            raise BadPayload(f"unsupported Content-Type (use {PROTOBUF} or {JSON})")
    except (DecodeError, json_format.ParseError, UnicodeDecodeError, RecursionError):
        # The parser's own message may quote the body (a secret pasted in the wrong place).
        raise BadPayload(f"malformed OTLP {signal} body: not valid {kind}") from None
    return message


def response(signal: str, content_type: str, rejected: int, message: str) -> bytes:
    """ExportMetricsServiceResponse / ExportLogsServiceResponse in the request's encoding; the
    partial success is set only when something was rejected, as the spec asks."""
    if signal == METRICS:
        answer: Message = ExportMetricsServiceResponse()
        if rejected:
            answer.partial_success.CopyFrom(
                ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
            )
    else:
        answer = ExportLogsServiceResponse()
        if rejected:
            answer.partial_success.CopyFrom(
                ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
            )
    if content_type.split(";", 1)[0].strip().lower() == JSON:
        return json_format.MessageToJson(answer, indent=None).encode()
    return answer.SerializeToString()


def any_value(value) -> object:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    if kind == "array_value":
        return json.dumps([str(any_value(v)) for v in value.array_value.values])
    if kind == "kvlist_value":
        return json.dumps({kv.key: str(any_value(kv.value)) for kv in value.kvlist_value.values})
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes(pairs: Iterable) -> dict[str, object]:
    return {kv.key: any_value(kv.value) for kv in pairs}


# What ``json.dumps(value, default=str, separators=(",", ":"))`` would build anew for every call.
_canonical = json.JSONEncoder(default=str, separators=(",", ":")).encode


def series_key(
    resource: Mapping[str, object], name: str, point: Mapping[str, object], measure: str, model: str
) -> str:
    """The series a point belongs to: a hash of its resource, metric, attributes and reading."""
    return _series_key(_series_prefix(resource, name), point, measure, model)


def _series_prefix(resource: Mapping[str, object], name: str) -> str:
    # The canonical JSON of the list, up to the point's attributes: a list's JSON is its items'
    # JSON joined by commas, so a request's points share this part (and the key stays the same).
    return f"[{_canonical(sorted(resource.items()))},{_canonical(name)},"


def _series_key(prefix: str, point: Mapping[str, object], measure: str, model: str) -> str:
    canonical = f"{prefix}{_canonical(sorted(point.items()))},{_canonical(measure)},{_canonical(model)}]"
    return hashlib.sha256(canonical.encode()).hexdigest()


class Walker:
    def __init__(self, limits: Limits, now_ns: int) -> None:
        self.limits = limits
        self.now_ns = now_ns
        self.out = Decoded()

    def _check_time(self, time_ns: int, what: str) -> None:
        if time_ns <= 0:
            raise BadPayload(f"{what}: a data point without time_unix_nano")
        if time_ns > self.now_ns + 86_400 * NANOS:
            raise BadPayload(f"{what}: time_unix_nano is more than a day in the future")
        if time_ns < self.now_ns - self.limits.max_age_days * 86_400 * NANOS:
            raise BadPayload(f"{what}: older than {self.limits.max_age_days} days")

    def add(
        self,
        agent: AgentMapping,
        name: str,
        merged: dict[str, object],
        own: dict[str, object],
        readings,
        *,
        start_ns: int,
        time_ns: int,
        cumulative: bool,
        prefix: str,
    ) -> None:
        if not readings:
            return
        self._check_time(time_ns, name)
        person = agent.person(merged)
        if person is None:
            self.out.reject(f"{name}: no user.email or account id to credit")
            return
        if person.actor not in self.out.people:
            if len(self.out.people) >= self.limits.max_people:
                raise BadPayload(f"more than {self.limits.max_people} people in one request")
            self.out.people[person.actor] = person
        session = session_of(agent, merged)
        for reading in readings:
            if len(self.out.points) >= self.limits.max_points:
                raise BadPayload(f"more than {self.limits.max_points} data points in one request")
            self.out.points.append(
                Point(
                    agent=agent.agent,
                    series=_series_key(prefix, own, reading.measure, reading.model),
                    metric=name[:200],
                    start_ns=start_ns,
                    time_ns=time_ns,
                    actor=person.actor[:400],
                    measure=reading.measure,
                    model=reading.model[:200],
                    cumulative=cumulative,
                    value=reading.value,
                    session=session,
                )
            )

    def metrics(self, request: ExportMetricsServiceRequest) -> Decoded:
        for resource_metrics in request.resource_metrics:
            resource = attributes(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    self._metric(resource, metric)
        return self.out

    def _metric(self, resource: dict[str, object], metric) -> None:
        agent = next((a for a in AGENTS.values() if a.claims_metric(metric.name, resource)), None)
        kind = metric.WhichOneof("data")
        points = getattr(metric, kind).data_points if kind else []
        if agent is None:
            for _ in points:
                self.out.reject(f"{metric.name[:80]}: not a metric of a supported agent")
            return
        if kind != "sum" or not metric.sum.is_monotonic:
            for _ in points:
                self.out.reject(f"{metric.name[:80]}: only monotonic sums are read")
            return
        temporality = metric.sum.aggregation_temporality
        if temporality not in (
            AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
            AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
        ):
            raise BadPayload(f"{metric.name[:80]}: aggregation temporality unspecified")
        cumulative = temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
        name = metric.name
        prefix = _series_prefix(resource, name)  # the same for every point of the metric
        for point in points:
            own = attributes(point.attributes)
            value_kind = point.WhichOneof("value")
            if value_kind is None:
                raise BadPayload(f"{name[:80]}: a data point without a value")
            merged = {**resource, **own}
            self.add(
                agent,
                name,
                merged,
                own,
                agent.metric_readings(name, merged, getattr(point, value_kind)),
                start_ns=point.start_time_unix_nano,
                time_ns=point.time_unix_nano,
                cumulative=cumulative,
                prefix=prefix,
            )

    def logs(self, request: ExportLogsServiceRequest) -> Decoded:
        for resource_logs in request.resource_logs:
            resource = attributes(resource_logs.resource.attributes)
            for scope in resource_logs.scope_logs:
                for record in scope.log_records:
                    own = attributes(record.attributes)
                    name = str(own.get("event.name") or record.event_name or "")
                    agent = next((a for a in AGENTS.values() if a.claims_event(name, resource)), None)
                    if agent is None:
                        self.out.reject(f"{name[:80] or 'a log record'}: not an event of a supported agent")
                        continue
                    merged = {**resource, **own}
                    time_ns = record.time_unix_nano or record.observed_time_unix_nano
                    readings = agent.event_readings(name, merged)
                    if not readings:
                        continue
                    # An event is a delta of its own: its window is its instant.
                    self.add(
                        agent,
                        name,
                        merged,
                        own,
                        readings,
                        start_ns=time_ns,
                        time_ns=time_ns,
                        cumulative=False,
                        prefix=_series_prefix(resource, name),
                    )
        return self.out


def decode(
    signal: str, body: bytes, *, content_type: str, encoding: str, limits: Limits, now_ns: int
) -> Decoded:
    """A request body as agent points (see the module docstring for what raises)."""
    if len(body) > limits.max_bytes:
        raise TooLarge(f"the body is larger than {limits.max_bytes} bytes")
    message = parse(signal, inflate(body, encoding, limits.max_bytes), content_type)
    walker = Walker(limits, now_ns)
    return walker.metrics(message) if signal == METRICS else walker.logs(message)
