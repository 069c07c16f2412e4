#!/usr/bin/env bash
# The OpenAPI contract against the real daemon: openapi-spec-validator on openapi.yaml, then schemathesis
# (every check, bounded examples, fixed seed) against `pageshare serve` with the two demo images attached,
# a tokens file and a state directory. Usage: scripts/api-conformance.sh PAGESHARE_BINARY [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: scripts/api-conformance.sh PAGESHARE_BINARY [MAX_EXAMPLES]}")
examples=${2:-50}
work=$(mktemp -d)
daemon=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

openapi-spec-validator openapi.yaml

scripts/make-demo-images.sh "$work/images" >/dev/null
token=$("$binary" token new | sed -n 's/^token: *//p')
printf 'tokens:\n  - {name: conformance, sha256: %s, role: admin}\n' \
    "$(printf '%s' "$token" | "$binary" token hash)" >"$work/tokens.yaml"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The fuzzer sends bad tokens on purpose: the failed-auth limit is lifted so that it keeps reaching the API.
"$binary" serve --listen "127.0.0.1:$port" --tokens-file "$work/tokens.yaml" --auth-failure-limit 1000000 \
    --state-dir "$work/state" --cache-size 64MiB --log-level error \
    --image "app-v1=$work/images/app-v1.img@demo" --image "app-v2=$work/images/app-v2.img@demo" \
    >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done

status=0
schemathesis --config-file scripts/schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $token" --checks all --max-examples "$examples" --seed 1 --no-color || status=$?
if ! kill -0 "$daemon" 2>/dev/null; then
    echo "the daemon died during the run:" >&2
    cat "$work/daemon.log" >&2
    exit 1
fi
exit "$status"
