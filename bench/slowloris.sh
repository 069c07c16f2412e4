#!/usr/bin/env bash
# Benchmark: a slowloris attack against `pageshare serve` while a normal client keeps reading a file.
# ATTACKERS connections (default 320, against --max-connections 300) each send a request head one byte
# every DRIBBLE seconds (default 5: every byte would reset an idle timeout); meanwhile a normal client
# GETs a file every 0.25 s for SECONDS (default 40). Reports the normal client's success rate and latency
# percentiles and the daemon's RSS over time. Loopback only; bounded in count and time.
#
#   bench/slowloris.sh [SECONDS] [ATTACKERS] [DRIBBLE]   (HEADER_TIMEOUT=10 by default; empty: not passed,
#   for a build without --header-timeout; PAGESHARE_BINARY: another build to measure)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-40}
attackers=${2:-320}
dribble=${3:-5}
header_timeout=${HEADER_TIMEOUT-10}
work=$(mktemp -d /tmp/pageshare-slowloris-XXXXXX)
trap 'kill "${daemon:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

swift build -c release --product pageshare >/dev/null
pageshare=${PAGESHARE_BINARY:-$(swift build -c release --show-bin-path)/pageshare}
mkdir -p "$work/tree"
head -c 65536 /dev/urandom >"$work/tree/file"
mkfs.erofs --quiet "$work/image.img" "$work/tree" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$pageshare" serve --listen "127.0.0.1:$port" --image "img=$work/image.img" --cache-size 64MiB \
    --max-connections 300 ${header_timeout:+--header-timeout "$header_timeout"} --log-level warning \
    >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done

python3 - "$port" "$seconds" "$attackers" "$dribble" "$daemon" <<'PY'
import socket, sys, threading, time, urllib.request

port, seconds, attackers, dribble, pid = (int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
                                          float(sys.argv[4]), int(sys.argv[5]))
stop = time.monotonic() + seconds
head = b"GET /v1/images/img/files/file HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 4000

def attacker():
    # Reconnects when cut, as a real attacker would; never finishes a head.
    while time.monotonic() < stop:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            for byte in head:
                if time.monotonic() >= stop:
                    break
                s.send(bytes([byte]))
                time.sleep(dribble)
        except OSError:
            time.sleep(0.2)

threads = [threading.Thread(target=attacker, daemon=True) for _ in range(attackers)]
for t in threads:
    t.start()
time.sleep(1)

sys.path.insert(0, "bench")
from normal_client import observe, percentile_ms
latencies, failures, samples = observe(
    f"http://127.0.0.1:{port}/v1/images/img/files/file", 65536, pid, stop, 0.25)
total = len(latencies) + failures
pct = lambda p: percentile_ms(latencies, p)
print(f"attack: {attackers} connections dribbling one header byte every {dribble} s for {seconds:.0f} s")
print(f"normal client: {len(latencies)}/{total} requests served ({100 * len(latencies) / max(total, 1):.1f} %), "
      f"latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
print("daemon RSS (MiB, every 5 s): " + " ".join(str(s) for s in samples))
PY
echo "refusals logged: $(grep -c 'connections refused' "$work/daemon.log" || true) lines"
