#!/usr/bin/env bash
# Benchmark: clients that open streams and never read, against `pageshare serve`: CONNECTIONS HTTP/2
# connections (default 300) × STREAMS streams (default 128) with SETTINGS_INITIAL_WINDOW_SIZE=0, kept
# busy with PINGs, plus H1 HTTP/1.1 connections (default 1000) that request a large file and never read;
# meanwhile a normal client GETs a file every 0.5 s. Reports the daemon's RSS over time (peak against the
# cache size + 256 MiB that the Kubernetes limit allows) and the normal client's success and latency.
# Loopback only; bounded in count and time.
#
#   bench/stalled-readers.sh [SECONDS] [CONNECTIONS] [STREAMS] [H1]   (default 40 300 128 1000)
#   PAGESHARE_BINARY: another build to measure; EXTRA_FLAGS: flags it needs instead of the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-40}
connections=${2:-300}
streams=${3:-128}
h1=${4:-1000}
cache=256MiB
work=$(mktemp -d /tmp/pageshare-stalled-XXXXXX)
trap 'kill "${daemon:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

swift build -c release --product pageshare >/dev/null
pageshare=${PAGESHARE_BINARY:-$(swift build -c release --show-bin-path)/pageshare}
mkdir -p "$work/tree"
head -c $((32 << 20)) /dev/urandom >"$work/tree/big"
head -c 65536 /dev/urandom >"$work/tree/small"
mkfs.erofs --quiet "$work/image.img" "$work/tree" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n 65536 2>/dev/null || true
# shellcheck disable=SC2086
"$pageshare" serve --listen "127.0.0.1:$port" --image "img=$work/image.img" --cache-size "$cache" \
    --max-connections 20000 --log-level warning ${EXTRA_FLAGS:-} >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
curl -s -o /dev/null "http://127.0.0.1:$port/v1/images/img/files/big"  # warm the cache

/usr/bin/python3 - "$port" "$seconds" "$connections" "$streams" "$h1" "$daemon" <<'PY'
import socket, sys, threading, time, urllib.request
import h2.config, h2.connection, h2.settings

port, seconds, connections, streams, h1, pid = (int(a) for a in sys.argv[1:7])
stop = time.monotonic() + seconds

def h2_stalled():
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        sock.sendall(conn.data_to_send())
        time.sleep(0.5)  # the server's SETTINGS: its stream limit
        try:
            conn.receive_data(sock.recv(65536))
        except Exception:
            pass
        for _ in range(streams):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":path", "/v1/images/img/files/big"), (":scheme", "http"),
                                    (":authority", "127.0.0.1")], end_stream=True)
        sock.sendall(conn.data_to_send())
        sock.settimeout(0.01)
        while time.monotonic() < stop:  # PINGs keep the connection busy; nothing is ever read
            conn.ping(b"pingping")
            sock.sendall(conn.data_to_send())
            time.sleep(2)
    except Exception as error:
        h2_errors.append(f"{time.monotonic() - stop + seconds:.0f} s: {error!r}")

h2_errors = []

def h1_stalled():
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /v1/images/img/files/big HTTP/1.1\r\nHost: x\r\n\r\n")
        while time.monotonic() < stop:
            time.sleep(1)
    except Exception:
        pass

threads = [threading.Thread(target=h2_stalled, daemon=True) for _ in range(connections)]
threads += [threading.Thread(target=h1_stalled, daemon=True) for _ in range(h1)]
for t in threads:
    t.start()

sys.path.insert(0, "bench")
from normal_client import observe, percentile_ms
metrics = []

def sample_metrics():
    global metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        metrics = [line for line in r.read().decode().splitlines()
                   if line.startswith(("pageshare_http_unsent", "pageshare_http_send_timeouts", "pageshare_http_open"))]

latencies, failures, samples = observe(
    f"http://127.0.0.1:{port}/v1/images/img/files/small", 65536, pid, stop, 0.5, sample_metrics)
pct = lambda p: percentile_ms(latencies, p)
print(f"stalled: {connections} h2 connections x {streams} zero-window streams (PINGs), {h1} HTTP/1.1 readers, {seconds} s")
print(f"daemon RSS MiB every 5 s: {' '.join(map(str, samples))}; peak {max(samples)} (limit: cache 256 + 256 = 512)")
print(f"normal client: {len(latencies)}/{len(latencies) + failures} served, p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms")
print("at the last sample: " + "; ".join(metrics))
if h2_errors:
    print(f"{len(h2_errors)} HTTP/2 clients failed, first: {h2_errors[0]}")
PY
