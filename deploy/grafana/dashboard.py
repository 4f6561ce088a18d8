#!/usr/bin/env python3
"""Generates deploy/grafana/tributary.json, the Grafana dashboard of tributary (standard library only).

    python3 deploy/grafana/dashboard.py > deploy/grafana/tributary.json

The JSON is committed so it can be imported as it is (Dashboards > New > Import, or a
provisioning folder / grafana-operator); scripts/check-deploy fails when it is not what this
script generates, and checks that every expression parses with promtool.

Variables: `datasource` (any Prometheus), `job` (values of tributary_ready's job label; the Helm
chart's ServiceMonitors name them tributary-registry and tributary-messaging) and `instance`.
Metric names are those of the observability contract (deploy/check/metrics.txt).
"""

from __future__ import annotations

import json
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"
SERVER_ERROR_CODES = "2|4|8|13|14|15"
STREAMING_RPCS = "Watch|Consume|ProduceStream"


class Layout:
    """Places panels left to right in a 24-column grid, starting a new line when one is full."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = 0
        self.y = 0
        self.line_height = 0

    def next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self.newline()
        self.panels.append(
            {
                "type": "row",
                "id": self.next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def add(self, panel: dict, w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["id"] = self.next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.line_height = max(self.line_height, h)


def target(expr: str, legend: str, ref: str) -> dict:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def targets(queries: list[tuple[str, str]]) -> list[dict]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, queries: list[tuple[str, str]], unit: str, **options) -> dict:
    custom = {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": False}
    if options.get("stack"):
        custom["stacking"] = {"mode": "normal", "group": "A"}
    defaults = {"unit": unit, "custom": custom}
    if "max" in options:
        defaults["max"] = options["max"]
    if "min" in options:
        defaults["min"] = options["min"]
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets(queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title: str, description: str, queries: list[tuple[str, str]], unit: str, thresholds=None) -> dict:
    steps = thresholds or [{"color": "green", "value": None}]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [dict(t, instant=True, range=False) for t in targets(queries)],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def up_down(title: str, description: str, queries: list[tuple[str, str]]) -> dict:
    """A state timeline of 1/0 series shown as UP/DOWN (SERVING/NOT_SERVING)."""
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets(queries),
        "fieldConfig": {
            "defaults": {
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "DOWN", "color": "red", "index": 0},
                            "1": {"text": "UP", "color": "green", "index": 1},
                        },
                    }
                ],
                "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]},
                "custom": {"fillOpacity": 80, "lineWidth": 0},
            },
            "overrides": [],
        },
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.9, "legend": {"showLegend": False}},
    }


def rate_ratio(metric: str, by: str, part: str) -> str:
    """The share of `metric`'s rate that matches the extra matchers `part`, per `by`; 0 (not "No
    data") for the groups where nothing matches yet, e.g. no errors at all."""
    total = f"sum by ({by}) (rate({metric}{{{SEL}}}[{RATE}]))"
    return f"(sum by ({by}) (rate({metric}{{{SEL}, {part}}}[{RATE}])) or {total} * 0) / {total}"


def quantile(q: float, metric: str, by: str, matchers: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{matchers}}}[{RATE}])))"


def build() -> dict:
    layout = Layout()
    rpc_count = "rpc_server_call_duration_seconds_count"
    http_count = "http_server_request_duration_seconds_count"

    layout.row("Health")
    layout.add(
        stat(
            "Instances SERVING",
            "Instances whose gRPC health reports SERVING (tributary_ready) out of the scraped ones (up).",
            [
                (f"sum by (job) (tributary_ready{{{SEL}}})", "{{job}} serving"),
                (f"sum by (job) (up{{{SEL}}})", "{{job}} up"),
            ],
            "none",
        ),
        w=8,
        h=6,
    )
    layout.add(
        up_down(
            "Readiness per instance",
            "SERVING (UP) or NOT_SERVING (DOWN) per instance: readiness needs every dependency.",
            [(f"tributary_ready{{{SEL}}}", "{{job}} {{instance}}")],
        ),
        w=8,
        h=6,
    )
    layout.add(
        up_down(
            "Dependencies",
            "Whether each instance reaches its dependencies: postgres (registry); kafka and registry (messaging).",
            [(f"tributary_dependency_up{{{SEL}}}", "{{job}} {{instance}} {{dependency}}")],
        ),
        w=8,
        h=6,
    )
    layout.add(
        timeseries(
            "Resident memory",
            "process_resident_memory_bytes per instance.",
            [(f"process_resident_memory_bytes{{{SEL}}}", "{{job}} {{instance}}")],
            "bytes",
        ),
        w=12,
        h=6,
    )
    layout.add(
        timeseries(
            "Connections per listener",
            "tributary_connections_open per instance and listener (grpc, http), the listener's cap "
            "(tributary_connections_limit, fitted below the open-file limit) and the connections refused at the cap "
            "per second (tributary_connections_refused_total). Open near the cap, or refusals: raise --max-connections "
            "and the open-file limit, or add replicas.",
            [
                (f"tributary_connections_open{{{SEL}}}", "open {{job}} {{instance}} {{listener}}"),
                (f"tributary_connections_limit{{{SEL}}}", "cap {{job}} {{instance}} {{listener}}"),
                (
                    f"rate(tributary_connections_refused_total{{{SEL}}}[{RATE}])",
                    "refused/s {{job}} {{instance}} {{listener}}",
                ),
            ],
            "short",
        ),
        w=12,
        h=6,
    )

    layout.row("gRPC: rate, errors, duration per RPC")
    layout.add(
        timeseries(
            "Calls per second",
            "gRPC calls finished per second, per service and method (all status codes).",
            [(f"sum by (rpc_service, rpc_method) (rate({rpc_count}{{{SEL}}}[{RATE}]))", "{{rpc_service}}/{{rpc_method}}")],
            "reqps",
        ),
        w=12,
        h=8,
    )
    layout.add(
        timeseries(
            "Server error ratio",
            f"Share of calls ending with a server-side gRPC code ({SERVER_ERROR_CODES}: UNKNOWN, DEADLINE_EXCEEDED, "
            "RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DATA_LOSS), per method. Alert: > 5% for 10m.",
            [
                (
                    rate_ratio(rpc_count, "rpc_service, rpc_method", f'rpc_grpc_status_code=~"{SERVER_ERROR_CODES}"'),
                    "{{rpc_service}}/{{rpc_method}}",
                )
            ],
            "percentunit",
            min=0,
        ),
        w=12,
        h=8,
    )
    layout.add(
        timeseries(
            "Non-OK calls by code",
            "Calls per second that did not end OK, by method and gRPC status code (client errors such as "
            "3 INVALID_ARGUMENT and 5 NOT_FOUND included).",
            [
                (
                    f'sum by (rpc_method, rpc_grpc_status_code) (rate({rpc_count}{{{SEL}, rpc_grpc_status_code!="0"}}[{RATE}]))',
                    "{{rpc_method}} code {{rpc_grpc_status_code}}",
                )
            ],
            "reqps",
            stack=True,
        ),
        w=8,
        h=8,
    )
    unary = f'{SEL}, rpc_method!~"{STREAMING_RPCS}"'
    layout.add(
        timeseries(
            "p50 duration (unary)",
            f"Median call duration per method, from the histogram. Streaming RPCs ({STREAMING_RPCS}) last as "
            "long as the client keeps them open and are left out.",
            [(quantile(0.5, "rpc_server_call_duration_seconds", "rpc_service, rpc_method", unary), "{{rpc_method}}")],
            "s",
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "p99 duration (unary)",
            "99th percentile call duration per method. Alert: > 500ms for 10m.",
            [(quantile(0.99, "rpc_server_call_duration_seconds", "rpc_service, rpc_method", unary), "{{rpc_method}}")],
            "s",
        ),
        w=8,
        h=8,
    )

    layout.row("HTTP APIs: Schema Registry (registry), Kafka REST Proxy (messaging)")
    layout.add(
        timeseries(
            "Requests per second",
            "Requests of the Confluent-compatible HTTP APIs (the registry's Schema Registry API, the messaging service's REST Proxy API) per route template and status code.",
            [
                (
                    f"sum by (http_request_method, http_route, http_response_status_code) (rate({http_count}{{{SEL}}}[{RATE}]))",
                    "{{http_request_method}} {{http_route}} {{http_response_status_code}}",
                )
            ],
            "reqps",
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "5xx ratio",
            "Share of HTTP requests answered 5xx, per route. Alert: > 5% for 10m.",
            [
                (rate_ratio(http_count, "http_route", 'http_response_status_code=~"5.."'), "{{http_route}}")
            ],
            "percentunit",
            min=0,
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "p50 / p99 duration",
            "Median and 99th percentile request duration per route.",
            [
                (quantile(0.5, "http_server_request_duration_seconds", "http_route", SEL), "p50 {{http_route}}"),
                (quantile(0.99, "http_server_request_duration_seconds", "http_route", SEL), "p99 {{http_route}}"),
            ],
            "s",
        ),
        w=8,
        h=8,
    )

    layout.row("Authorization")
    layout.add(
        timeseries(
            "Authorization denials",
            "Requests refused by the authorization policy per second (HTTP 403 / gRPC PERMISSION_DENIED), by "
            "service and action (tributary_authz_denials_total). Lists are filtered rather than refused, so "
            "denials are rare in steady state; the audit log (JSON lines on the `audit` target) names the "
            "principal and the resource. Alert: > 0.5/s per service for 5m.",
            [
                (
                    f"sum by (service, action) (rate(tributary_authz_denials_total{{{SEL}}}[{RATE}]))",
                    "{{service}} {{action}}",
                )
            ],
            "reqps",
            stack=True,
            min=0,
        ),
        w=16,
        h=8,
    )
    layout.add(
        timeseries(
            "Authorization policy",
            "Rules of the policy in force (tributary_authz_policy_rules, per instance: they differ while a "
            "change propagates) and changes of the policy file that did not load in the last 10 minutes "
            "(tributary_authz_policy_reload_failures_total; the previous policy stays in force). "
            "Alert: any failure.",
            [
                (f"max by (service, instance) (tributary_authz_policy_rules{{{SEL}}})", "{{service}} {{instance}} rules"),
                (
                    f"sum by (service) (increase(tributary_authz_policy_reload_failures_total{{{SEL}}}[10m]))",
                    "{{service}} failed reloads (10m)",
                ),
            ],
            "none",
            min=0,
        ),
        w=8,
        h=8,
    )

    layout.row("Registry: cache, schemas, Postgres")
    layout.add(
        timeseries(
            "Cache hit ratio",
            "Hits / lookups of each registry cache (schema_by_id, subject_version, lookup, ...).",
            [
                (rate_ratio("registry_cache_requests_total", "cache", 'result="hit"'), "{{cache}}")
            ],
            "percentunit",
            min=0,
            max=1,
        ),
        w=12,
        h=8,
    )
    layout.add(
        stat(
            "Schemas and subjects",
            "Distinct schema ids and live subjects (every replica reports the same database: max).",
            [
                (f"max(registry_schemas{{{SEL}}})", "schemas"),
                (f"max(registry_subjects{{{SEL}}})", "subjects"),
            ],
            "none",
            thresholds=[{"color": "blue", "value": None}],
        ),
        w=4,
        h=8,
    )
    layout.add(
        timeseries(
            "Postgres pool",
            "Connections in use and idle per instance, and the pool's size (REGISTRY_DB_MAX_CONNECTIONS). "
            "Used at the max means requests queue for a connection (then UNAVAILABLE after the acquire timeout).",
            [
                (f"sum by (instance, state) (db_client_connections_usage{{{SEL}}})", "{{instance}} {{state}}"),
                (f"max by (instance) (db_client_connection_max{{{SEL}}})", "{{instance}} max"),
            ],
            "none",
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "Postgres pool use",
            "Connections in use / pool size, per instance.",
            [
                (
                    f'sum by (instance) (db_client_connections_usage{{{SEL}, state="used"}})'
                    f" / max by (instance) (db_client_connection_max{{{SEL}}})",
                    "{{instance}}",
                )
            ],
            "percentunit",
            min=0,
            max=1,
        ),
        w=24,
        h=8,
    )
    layout.row("Messaging: Kafka")
    for direction, verb in (("sent", "Produced"), ("consumed", "Consumed")):
        layout.add(
            timeseries(
                f"{verb} records per topic",
                f"Records per second {'acknowledged by Kafka' if direction == 'sent' else 'delivered to Consume streams'}, per topic.",
                [
                    (
                        f"sum by (messaging_destination_name) (rate(messaging_client_{direction}_messages_total{{{SEL}}}[{RATE}]))",
                        "{{messaging_destination_name}}",
                    )
                ],
                "cps",
            ),
            w=12,
            h=8,
        )
        layout.add(
            timeseries(
                f"{verb} bytes per topic",
                "Key + value bytes per second, per topic.",
                [
                    (
                        f"sum by (messaging_destination_name) (rate(messaging_client_{direction}_bytes_total{{{SEL}}}[{RATE}]))",
                        "{{messaging_destination_name}}",
                    )
                ],
                "Bps",
            ),
            w=12,
            h=8,
        )
    layout.add(
        timeseries(
            "Producer queue",
            "Records waiting in librdkafka's queue or in flight to Kafka, per instance.",
            [(f"sum by (instance) (messaging_producer_queue_messages{{{SEL}}})", "{{instance}}")],
            "none",
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "REST consumer instances",
            "Consumer instances of the REST Proxy API open per messaging instance (they share MESSAGING_MAX_CONSUME_STREAMS with Consume streams, and expire after MESSAGING_CONSUMER_INSTANCE_TIMEOUT_MS unused).",
            [(f"sum by (instance) (messaging_rest_consumer_instances{{{SEL}}})", "{{instance}}")],
            "none",
        ),
        w=8,
        h=8,
    )
    lag = f"messaging_consumer_lag_messages{{{SEL}}}"
    partition = "messaging_consumer_group_name, messaging_destination_name, messaging_destination_partition_id"
    layout.add(
        timeseries(
            "Consumer lag per partition",
            "High watermark minus the position of live Consume streams, per group, topic and partition.",
            [(f"max by ({partition}) ({lag})", "{{messaging_consumer_group_name}} {{messaging_destination_name}}/{{messaging_destination_partition_id}}")],
            "none",
        ),
        w=8,
        h=8,
    )
    layout.add(
        timeseries(
            "Consumer lag per group and topic",
            "Sum over partitions. Alerts: > 10000 for 10m; > 1000 and growing for 15m.",
            [
                (
                    f"sum by (messaging_consumer_group_name, messaging_destination_name) (max by ({partition}) ({lag}))",
                    "{{messaging_consumer_group_name}} {{messaging_destination_name}}",
                )
            ],
            "none",
        ),
        w=8,
        h=8,
    )

    return {
        "title": "tributary",
        "uid": "tributary-overview",
        "description": "tributary registry and messaging: health, gRPC and HTTP RED, authorization denials and policy, registry cache and Postgres pool, Kafka rates and lag.",
        "tags": ["tributary", "grpc", "kafka", "schema-registry"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                },
                {
                    "type": "query",
                    "name": "job",
                    "label": "job",
                    "datasource": DS,
                    "query": {"query": "label_values(tributary_ready{}, job)", "refId": "job"},
                    "definition": "label_values(tributary_ready{}, job)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "current": {},
                    "sort": 1,
                    "hide": 0,
                    "regex": "",
                },
                {
                    "type": "query",
                    "name": "instance",
                    "label": "instance",
                    "datasource": DS,
                    "query": {"query": 'label_values(tributary_ready{job=~"$job"}, instance)', "refId": "instance"},
                    "definition": 'label_values(tributary_ready{job=~"$job"}, instance)',
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".+",
                    "current": {},
                    "sort": 1,
                    "hide": 0,
                    "regex": "",
                },
            ]
        },
        "panels": layout.panels,
    }


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
