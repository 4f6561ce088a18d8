#!/usr/bin/env bash
# deploy/check/live-dashboard.sh — the dashboard against real services, by hand (not in CI).
#
# Starts the registry and messaging binaries of target/debug (build them first:
# `cargo build -p tributary-registry --bin registry -p tributary-messaging --bin messaging`) on
# spare ports against the running stack's Postgres (a throwaway database) and Kafka, a Debian
# Prometheus scraping them as jobs tributary-registry / tributary-messaging with
# deploy/prometheus/alerts.yaml loaded, makes some traffic (HTTP API, produce, a Consume stream
# that does not acknowledge), then runs every expression of deploy/grafana/tributary.json
# ($job = tributary-.*, $instance = .+) and prints how many series each returns. Exit 1 when
# one returns nothing. Cleans up (processes, database, topic) on exit.
#
#   eval "$(scripts/stack env)"; deploy/check/live-dashboard.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN=${TRIBUTARY_BIN:-$ROOT/target/debug}
PY="$ROOT/.stack/deploy-venv/bin/python" # made by scripts/check-deploy
: "${TRIBUTARY_PG_ADMIN_URL:?export the stack's endpoints first: eval \"\$(scripts/stack env)\"}"
: "${KAFKA_BOOTSTRAP_SERVERS:?export the stack's endpoints first}"
command -v grpcurl >/dev/null || { echo "needs grpcurl (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest)" >&2; exit 1; }

WORK=$(mktemp -d)
RUN=deploycheck$$
DB_URL="${TRIBUTARY_PG_ADMIN_URL%/*}/$RUN"
PIDS=()
cleanup() {
  local pid
  # the topic goes through our messaging, so before it stops
  grpcurl -plaintext -d "{\"topic\":\"$RUN\"}" 127.0.0.1:51152 \
    tributary.messaging.v1.MessagingService/DeleteTopic >/dev/null 2>&1 || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$TRIBUTARY_PG_ADMIN_URL" -qc "drop database if exists $RUN" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$TRIBUTARY_PG_ADMIN_URL" -qc "create database $RUN"
# loopback only, so plaintext and no authentication, said explicitly (the services default to both on);
# a policy all the same (every caller is the principal `anonymous`), so that the authorization
# panels have series: everything allowed but writes to subjects named denied-*, which the
# traffic below tries
cat >"$WORK/policy.yaml" <<'EOF_POLICY'
roles:
  everything:
    rules:
      - allow: ["*"]
        on: ["*"]
      - deny: [write]
        on: ["subject:denied-*"]
bindings:
  - role: everything
    to: ["*"]
EOF_POLICY
export TLS=off AUTH=none AUTHZ_POLICY_FILE="$WORK/policy.yaml"
DATABASE_URL=$DB_URL REGISTRY_GRPC_ADDR=127.0.0.1:51151 REGISTRY_HTTP_ADDR=127.0.0.1:18181 \
  REGISTRY_METRICS_ADDR=127.0.0.1:19464 "$BIN/registry" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
sleep 3
MESSAGING_GRPC_ADDR=127.0.0.1:51152 REGISTRY_URL=http://127.0.0.1:51151 \
  MESSAGING_METRICS_ADDR=127.0.0.1:19465 MESSAGING_REST_ADDR=127.0.0.1:0 "$BIN/messaging" >"$WORK/messaging.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/prometheus.yml" <<EOF
global: {scrape_interval: 2s, evaluation_interval: 2s}
rule_files: ["$ROOT/deploy/prometheus/alerts.yaml"]
scrape_configs:
  - {job_name: tributary-registry, static_configs: [{targets: ["127.0.0.1:19464"]}]}
  - {job_name: tributary-messaging, static_configs: [{targets: ["127.0.0.1:19465"]}]}
EOF
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address=127.0.0.1:19091 >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
sleep 5
for port in 19464 19465; do curl -sf "127.0.0.1:$port/metrics" | promtool check metrics; done

# traffic: schemas over the HTTP API (and 404s and 403s), a topic, 20 records, one Consume stream
for i in 1 2 3; do
  schema="{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"U\\\",\\\"fields\\\":[{\\\"name\\\":\\\"f$i\\\",\\\"type\\\":\\\"string\\\",\\\"default\\\":\\\"\\\"}]}"
  curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data "{\"schema\":\"$schema\"}" \
    "127.0.0.1:18181/subjects/$RUN-value/versions" >/dev/null
done
for i in $(seq 1 50); do
  curl -s -o /dev/null 127.0.0.1:18181/schemas/ids/1
  curl -s -o /dev/null "127.0.0.1:18181/subjects/missing-$i/versions"
done
# refused by the policy (403, audited, counted as denials)
for i in $(seq 1 10); do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    --data '{"schema":"\"string\""}' "127.0.0.1:18181/subjects/denied-$RUN-$i/versions"
done
grpc() { grpcurl -plaintext -d "$2" 127.0.0.1:51152 "tributary.messaging.v1.MessagingService/$1"; }
grpc CreateTopic "{\"topic\":\"$RUN\",\"partitions\":2,\"replication_factor\":1}" >/dev/null
for i in $(seq 1 20); do
  grpc Produce "{\"records\":[{\"topic\":\"$RUN\",\"key\":{\"text\":\"k$i\"},\"value\":{\"avro\":{\"json\":\"{\\\"f3\\\":\\\"v$i\\\"}\",\"subjectVersion\":{\"subject\":\"$RUN-value\",\"version\":-1}}}}]}" >/dev/null
done
grpc DescribeTopic "{\"topic\":\"missing-$RUN\"}" >/dev/null 2>&1 || true
(
  echo "{\"subscription\":{\"group_id\":\"$RUN\",\"topics\":[\"$RUN\"],\"value_format\":\"PAYLOAD_FORMAT_AVRO_PLAIN\",\"key_format\":\"PAYLOAD_FORMAT_RAW\"}}"
  sleep 40
) | grpcurl -plaintext -d @ 127.0.0.1:51152 tributary.messaging.v1.MessagingService/Consume >/dev/null 2>&1 &
PIDS+=($!)
sleep 30

"$PY" - "$ROOT" <<'EOF'
import json, subprocess, sys
sys.path.insert(0, f"{sys.argv[1]}/deploy/check")
import check

dashboard = json.load(open(f"{sys.argv[1]}/deploy/grafana/tributary.json"))
empty = 0
for where, expr in check.dashboard_expressions(dashboard):
    query = expr.replace("$__rate_interval", "1m").replace('"$job"', '"tributary-.*"').replace('"$instance"', '".+"')
    out = subprocess.run(["promtool", "query", "instant", "-o", "json", "http://127.0.0.1:19091", query],
                         capture_output=True, text=True)
    series = json.loads(out.stdout) if out.returncode == 0 else []
    empty += not series
    print(f"{'ok   ' if series else 'EMPTY'} {len(series):3d} series  {where}")
print(f"{empty} of the dashboard's expressions return nothing")
sys.exit(1 if empty else 0)
EOF
