#!/usr/bin/env bash
# Fuzz the HTTP API from its own OpenAPI document with schemathesis (config: schemathesis.toml).
# Uses the service on 127.0.0.1:8000 if one answers (`make run`), else starts `serve run configs/serve.yaml`
# with a scratch job store for the duration of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
url=http://127.0.0.1:8000
started=""
if ! curl -sf "$url/readyz" >/dev/null 2>&1; then
  store=$(mktemp -d); log=$(mktemp)
  set -m  # job control: the background job keeps SIGINT, which serve run handles by shutting Ray down
  SERVE_APP_STORE_URL="$store" .venv/bin/serve run configs/serve.yaml >"$log" 2>&1 &
  started=$!
  set +m
  trap 'kill -INT $started 2>/dev/null; wait $started 2>/dev/null || true; rm -rf "$store"' EXIT
  for _ in $(seq 1 150); do curl -sf "$url/readyz" >/dev/null 2>&1 && break; sleep 2; done
  curl -sf "$url/readyz" >/dev/null || { echo "service did not become ready; see $log" >&2; exit 1; }
fi
.venv/bin/schemathesis run "$url/openapi.json" "$@"
