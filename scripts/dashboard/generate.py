#!/usr/bin/env python3
"""Writes Sluice's Grafana dashboard, charts/sluice/files/dashboard.json, from the panels
below: the JSON is generated, never edited by hand.

    scripts/dashboard/generate.py           # write it
    scripts/dashboard/generate.py --check   # fail if the file is not what this writes

Every query is evaluated against a real Prometheus scraping a real run by the integration
test tests/it/dashboard.rs, which reads the file this writes.

Variables the queries use: `$namespace` (tenant namespaces), `$job` (the scrape jobs of
Sluice's pods), `$__rate_interval` (Grafana's).
"""

import json
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[2] / "charts/sluice/files/dashboard.json"

RATE = "$__rate_interval"
TENANT = 'namespace=~"$namespace"'


def rate(metric, selector="", by=None):
    inner = f"rate({metric}{{{selector}}}[{RATE}])"
    return f"sum by ({', '.join(by)}) ({inner})" if by else f"sum({inner})"


def quantile(q, histogram, selector="", by=()):
    labels = ", ".join(("le", *by))
    return (
        f"histogram_quantile({q}, sum by ({labels}) "
        f"(rate({histogram}_bucket{{{selector}}}[{RATE}])))"
    )


# Each row: its title, then its panels as (title, description, unit, [(query, legend)]).
ROWS = [
    (
        "Ingest: webhooks",
        [
            (
                "Webhooks by outcome",
                "Requests per second by what ingest answered: accepted (202), filtered, "
                "duplicate, unauthorized (401), not_found (404), too_large (413), "
                "rate_limited (429), misconfigured (500), unavailable (503)…",
                "reqps",
                [(rate("sluice_ingest_requests_total", TENANT, ["outcome"]), "{{outcome}}")],
            ),
            (
                "Webhooks by listener",
                "Requests per second for each EventListener (the ten busiest).",
                "reqps",
                [
                    (
                        "topk(10, "
                        + rate("sluice_ingest_requests_total", TENANT, ["namespace", "listener"])
                        + ")",
                        "{{namespace}}/{{listener}}",
                    )
                ],
            ),
            (
                "Refused and failed webhooks by listener",
                "Every answer but 202, per listener and outcome: what senders see as a red mark.",
                "reqps",
                [
                    (
                        rate(
                            "sluice_ingest_requests_total",
                            TENANT + ',outcome!~"accepted|filtered|duplicate"',
                            ["namespace", "listener", "outcome"],
                        )
                        + " > 0",
                        "{{namespace}}/{{listener}} {{outcome}}",
                    )
                ],
            ),
            (
                "Server errors (5xx) ratio",
                "Share of webhooks answered 500 or 503: a listener that cannot verify "
                "anyone, or JetStream not storing events.",
                "percentunit",
                [
                    (
                        rate(
                            "sluice_ingest_requests_total",
                            TENANT + ',outcome=~"misconfigured|unavailable"',
                        )
                        + " / "
                        + rate("sluice_ingest_requests_total", TENANT),
                        "5xx",
                    )
                ],
            ),
            (
                "Publish → durable ack",
                "Time from publishing an event to JetStream's ack, which the 202 waits for.",
                "s",
                [
                    (quantile(0.5, "sluice_ingest_publish_ack_seconds"), "p50"),
                    (quantile(0.99, "sluice_ingest_publish_ack_seconds"), "p99"),
                ],
            ),
            (
                "Requests refused by a limit, open connections",
                "Load shedding (--max-concurrent-requests) and slow bodies, and the "
                "connections ingest holds.",
                "short",
                [
                    (rate("sluice_ingest_limited_requests_total", "", ["limit"]), "{{limit}}/s"),
                    ("sum(sluice_ingest_open_connections)", "open connections"),
                ],
            ),
        ],
    ),
    (
        "Dispatch: webhooks to runs",
        [
            (
                "Webhook → run created",
                "From ingest receiving a webhook to the last object of a trigger being created.",
                "s",
                [
                    (quantile(0.5, "sluice_webhook_to_created_seconds"), "p50"),
                    (quantile(0.99, "sluice_webhook_to_created_seconds"), "p99"),
                ],
            ),
            (
                "Triggers by outcome",
                "created, filtered (an interceptor stopped it), duplicate (the ledger knew "
                "it), transient (retried), permanent (dead-lettered), error…",
                "ops",
                [(rate("sluice_dispatch_triggers_total", TENANT, ["outcome"]), "{{outcome}}")],
            ),
            (
                "Creates by result",
                "Objects created through the Kubernetes API per second, and the requests "
                "that failed.",
                "ops",
                [(rate("sluice_dispatch_create_seconds_count", "", ["result"]), "{{result}}")],
            ),
            (
                "Create latency",
                "One create request to the Kubernetes API.",
                "s",
                [(quantile(0.99, "sluice_dispatch_create_seconds", by=("result",)), "p99 {{result}}")],
            ),
            (
                "Dead letters",
                "Failures stored in the dead-letter stream (`sluice dlq list`), per listener "
                "and kind, over each interval.",
                "short",
                [
                    (
                        f"sum by (namespace, listener, kind) (increase(sluice_dispatch_dead_letters_total{{{TENANT}}}[{RATE}])) > 0",
                        "{{namespace}}/{{listener}} {{kind}}",
                    )
                ],
            ),
            (
                "Event deliveries by outcome",
                "done, retry (handed back to JetStream), gave_up, malformed, unknown_listener.",
                "ops",
                [(rate("sluice_dispatch_events_total", TENANT, ["outcome"]), "{{outcome}}")],
            ),
        ],
    ),
    (
        "Tenants",
        [
            (
                "Backlog by tenant",
                "Events stored and not yet delivered to a dispatcher: each tenant diverted to a "
                "consumer of its own (the ten largest), and the common consumer's (every other "
                "tenant).",
                "short",
                [
                    (
                        f"topk(10, sum by (namespace) (sluice_dispatch_backlog_events{{{TENANT}}}))",
                        "{{namespace}}",
                    ),
                    ("max(sluice_dispatch_common_backlog_events)", "common consumer"),
                ],
            ),
            (
                "Throttled events by tenant",
                "Events that waited for their tenant's rate limit, per second.",
                "ops",
                [(rate("sluice_dispatch_throttled_events_total", TENANT, ["namespace"]), "{{namespace}}")],
            ),
            (
                "Rate-limit wait by tenant",
                "How long each tenant's next event still waits for its budget.",
                "s",
                [
                    (
                        f"max by (namespace) (sluice_dispatch_throttle_delay_seconds{{{TENANT}}})",
                        "{{namespace}}",
                    )
                ],
            ),
            (
                "Webhooks refused at admission (429)",
                "Webhooks over their namespace's admission limit, per tenant.",
                "reqps",
                [
                    (
                        rate(
                            "sluice_ingest_requests_total",
                            TENANT + ',outcome="rate_limited"',
                            ["namespace"],
                        ),
                        "{{namespace}}",
                    )
                ],
            ),
        ],
    ),
    (
        "JetStream (NATS exporter)",
        [
            (
                "Events stream",
                "Messages and bytes held by Sluice's streams.",
                "short",
                [
                    (
                        'sum by (stream_name) (nats_stream_total_messages{stream_name=~"SLUICE_.*"})',
                        "{{stream_name}} messages",
                    )
                ],
            ),
            (
                "Stream storage",
                "Bytes stored per stream, against the server's JetStream storage limit.",
                "bytes",
                [
                    (
                        'sum by (stream_name) (nats_stream_total_bytes{stream_name=~"SLUICE_.*"})',
                        "{{stream_name}}",
                    ),
                    ("max(nats_server_max_storage)", "JetStream max storage"),
                ],
            ),
            (
                "Consumers: pending and unacknowledged",
                "Per tenant consumer of the events stream: messages not yet delivered, and "
                "delivered but not yet acknowledged.",
                "short",
                [
                    (
                        'sum by (consumer_name) (nats_consumer_num_pending{stream_name="SLUICE_EVENTS"})',
                        "{{consumer_name}} pending",
                    ),
                    (
                        'sum by (consumer_name) (nats_consumer_num_ack_pending{stream_name="SLUICE_EVENTS"})',
                        "{{consumer_name}} unacknowledged",
                    ),
                ],
            ),
            (
                "Redeliveries",
                "Messages JetStream delivered again (a dispatcher retried or died with them).",
                "short",
                [
                    (
                        'sum by (consumer_name) (nats_consumer_num_redelivered{stream_name="SLUICE_EVENTS"})',
                        "{{consumer_name}}",
                    )
                ],
            ),
        ],
    ),
    (
        "Pods",
        [
            (
                "CPU",
                "CPU seconds per second of each Sluice process.",
                "short",
                [
                    (
                        f'sum by (job, pod) (rate(process_cpu_seconds_total{{job=~"$job"}}[{RATE}]))',
                        "{{pod}}",
                    )
                ],
            ),
            (
                "Memory",
                "Resident memory of each Sluice process.",
                "bytes",
                [
                    (
                        'sum by (job, pod) (process_resident_memory_bytes{job=~"$job"})',
                        "{{pod}}",
                    )
                ],
            ),
            (
                "Status writer",
                "Dispatcher replicas holding the `sluice-status` Lease: 1 when EventListener "
                "status is being written.",
                "short",
                [("sum(sluice_status_writer)", "replicas writing status")],
            ),
        ],
    ),
]


def panel(id_, title, description, unit, targets, x, y):
    return {
        "id": id_,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": {"fillOpacity": 10, "showPoints": "never"}},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + i),
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def variable(name, label, query):
    """A template variable of label values, every value selected by default."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard():
    panels = []
    y = 0
    next_id = 1
    for row_title, row_panels in ROWS:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        for i, (title, description, unit, targets) in enumerate(row_panels):
            x = (i % 3) * 8
            if i and i % 3 == 0:
                y += 8
            panels.append(panel(next_id, title, description, unit, targets, x, y))
            next_id += 1
        y += 8
    return {
        "uid": "sluice-overview",
        "title": "Sluice",
        "description": "Webhooks in, runs out: ingest, dispatch, tenants, JetStream and pods.",
        "tags": ["sluice", "tekton", "nats"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                variable(
                    "namespace",
                    "Tenant namespace",
                    "label_values(sluice_dispatch_backlog_events, namespace)",
                ),
                variable(
                    "job",
                    "Sluice scrape job",
                    'label_values(process_start_time_seconds{job=~".*sluice.*"}, job)',
                ),
            ]
        },
        "panels": panels,
        "version": 1,
    }


def main():
    text = json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"
    if sys.argv[1:] == ["--check"]:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            sys.exit(f"{OUTPUT} is not what {__file__} writes: run it and commit the result")
        return
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)


if __name__ == "__main__":
    main()
