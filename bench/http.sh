#!/usr/bin/env bash
# HTTP benchmark: h2load against `pageshare serve` (sharing by file, and a second daemon sharing by chunk)
# and against nginx and h2o serving the same files from a kernel mount of the same EROFS image, one after
# the other on this machine. Needs root (mount), nginx, h2o, h2load (nghttp2-client); `make bench` installs
# them (h2o is skipped when missing). Not a test: it prints figures and ratios.
#
#   bench/http.sh [REQUESTS]      # requests per scenario (default 200000; (b) uses a tenth)
#   SCENARIOS=ac bench/http.sh    # only the scenarios named (letters; default abcd)
#   ROUNDS=3 bench/http.sh        # each scenario that many times, the servers alternating; the median
#                                 # round (by requests/s) of each server is reported
#
# Scenarios (the same URIs and headers for both servers; h2c prior knowledge unless said):
#   a) 4 KiB range GETs of hot files, 32 connections x 16 streams
#   b) 1 MiB range GETs, 32 connections x 16 streams
#   c) 4 KiB range GETs, 100 connections x 100 streams
#   d) 1 MiB range GETs over HTTP/1.1, 32 connections (PageShare copies 4 KiB pages into 64 KiB buffers,
#      PageWrites; nginx sendfile)
#   e) whole small files (2,000 bytes), 32 connections x 16 streams
#   f) 4 KiB range GETs over HTTP/1.1 keep-alive, 32 connections
# Reported per server: requests/s, MB/s, p50/p99 request latency (from h2load's per-request log), server
# CPU per request (utime + stime of its processes over the run / requests; and utime alone, the server's
# own code beside the kernel's) and peak RSS (VmHWM; nginx and h2o: master + workers).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-200000}
SCENARIOS=${SCENARIOS:-abcdef}
ROUNDS=${ROUNDS:-1}
[ "$(id -u)" = 0 ] || { echo "bench/http.sh: needs root to mount the image for nginx" >&2; exit 1; }
for tool in nginx h2load mkfs.erofs; do
    command -v "$tool" >/dev/null || { echo "bench/http.sh: $tool missing (make bench installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/pageshare-http-XXXXXX)
chmod 755 "$work"  # nginx workers run as www-data
pageshare_pid=""
chunk_pid=""
cleanup() {
    if [ -n "$pageshare_pid" ]; then kill "$pageshare_pid" 2>/dev/null || true; fi
    if [ -n "$chunk_pid" ]; then kill "$chunk_pid" 2>/dev/null || true; fi
    if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    if [ -f "$work/h2o.pid" ]; then kill "$(cat "$work/h2o.pid")" 2>/dev/null || true; fi
    sleep 0.5
    if mountpoint -q "$work/mnt"; then umount "$work/mnt" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building (release) and making the image"
swift build -c release --product pageshare >/dev/null
binary=.build/release/pageshare
mkdir -p "$work/src/hot" "$work/src/big" "$work/src/small" "$work/mnt"
for i in $(seq 0 63); do head -c 65536 /dev/urandom > "$work/src/hot/f$i.bin"; done
for i in $(seq 0 63); do head -c 2000 /dev/urandom > "$work/src/small/s$i.bin"; done
for i in 0 1 2 3; do head -c $((8 << 20)) /dev/urandom > "$work/src/big/b$i.bin"; done
mkfs.erofs "$work/bench.img" "$work/src" >/dev/null
mount -t erofs -o ro,loop "$work/bench.img" "$work/mnt"

for i in $(seq 0 63); do echo "/v1/images/bench/files/hot/f$i.bin"; done > "$work/ps-hot.txt"
for i in 0 1 2 3; do echo "/v1/images/bench/files/big/b$i.bin"; done > "$work/ps-big.txt"
for i in $(seq 0 63); do echo "/v1/images/bench/files/small/s$i.bin"; done > "$work/ps-small.txt"
for kind in hot big small; do sed 's|^/v1/images/bench/files||' "$work/ps-$kind.txt" > "$work/nx-$kind.txt"; done

cat > "$work/nginx.conf" <<CONF
worker_processes $(nproc);
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    http2_max_concurrent_streams 128;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:18091 http2;
        listen 127.0.0.1:18092;
        root $work/mnt;
        default_type application/octet-stream;
    }
}
CONF

cat > "$work/h2o.conf" <<CONF
user: www-data
pid-file: $work/h2o.pid
error-log: $work/h2o-error.log
num-threads: $(nproc)
http2-max-concurrent-requests-per-connection: 128
file.send-gzip: OFF
listen:
  host: 127.0.0.1
  port: 18094
hosts:
  default:
    paths:
      /:
        file.dir: $work/mnt
CONF

peak_rss_kib() { # sum of VmHWM over the given pids
    local total=0 pid value
    for pid in "$@"; do
        value=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + value))
    done
    echo "$total"
}

cpu_ticks() { # "utime+stime utime", in clock ticks, summed over the given pids
    local total=0 user=0 pid both utime
    for pid in "$@"; do
        read -r both utime < <(awk '{print $14 + $15, $14}' "/proc/$pid/stat" 2>/dev/null || echo 0 0)
        total=$((total + ${both:-0}))
        user=$((user + ${utime:-0}))
    done
    echo "$total $user"
}

# run_h2load "PIDS" URL_BASE URIS RANGE CONNECTIONS STREAMS REQUESTS [H2LOAD-FLAGS...]
#   -> prints "req/s MB/s p50_ms p99_ms cpu_us_per_request user_cpu_us_per_request ok=N"
run_h2load() {
    local pids=$1 base=$2 uris=$3 range=$4 connections=$5 streams=$6 requests=$7
    shift 7
    local before before_user
    # shellcheck disable=SC2086
    read -r before before_user < <(cpu_ticks $pids)
    sed "s|^|$base|" "$uris" > "$work/uris.txt"
    local log="$work/h2load.log"
    rm -f "$log"
    local out
    local headers=()
    if [ -n "$range" ]; then headers=(-H "Range: $range"); fi
    out=$(h2load -n "$requests" -c "$connections" -m "$streams" -t "$(nproc)" "${headers[@]}" \
        --log-file="$log" -i "$work/uris.txt" "$@" 2>&1)
    local rps mbs ok
    rps=$(echo "$out" | awk '/^finished in/ {print $4}' | tr -d ',')
    mbs=$(echo "$out" | awk '/^finished in/ {print $6}')
    ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
    local p50 p99
    read -r p50 p99 < <(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {
        printf "%.3f %.3f\n", a[int(NR*0.50)]/1000, a[int(NR*0.99)]/1000 }')
    local after after_user cpu user
    # shellcheck disable=SC2086
    read -r after after_user < <(cpu_ticks $pids)
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    user=$(awk -v t=$((after_user - before_user)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "$rps $mbs $p50 $p99 $cpu $user ok=$ok"
}

declare -A results
# The servers measured: name, h2c base URL, HTTP/1.1 base URL, which URI list (ps: PageShare's paths,
# nx: the mount's), and how to find their processes.
servers=(pageshare chunk nginx)
declare -A h2_base=([pageshare]=http://127.0.0.1:18090 [chunk]=http://127.0.0.1:18093
    [nginx]=http://127.0.0.1:18091 [h2o]=http://127.0.0.1:18094)
declare -A h1_base=([pageshare]=http://127.0.0.1:18090 [chunk]=http://127.0.0.1:18093
    [nginx]=http://127.0.0.1:18092 [h2o]=http://127.0.0.1:18094)
declare -A uri_kind=([pageshare]=ps [chunk]=ps [nginx]=nx [h2o]=nx)
server_pids() {
    case $1 in
        pageshare) echo "$pageshare_pid" ;;
        chunk) echo "$chunk_pid" ;;
        nginx) pgrep -f "nginx: (master|worker)" | tr '\n' ' ' ;;
        h2o) pgrep -x h2o | tr '\n' ' ' ;;
    esac
}

scenario() { # NAME RANGE CONNECTIONS STREAMS REQUESTS URIS-KIND [h1]
    local name=$1 range=$2 connections=$3 streams=$4 requests=$5 kind=$6 protocol=${7:-h2}
    case "$SCENARIOS" in *"${name:0:1}"*) ;; *) return 0 ;; esac
    local flags=() server
    if [ "$protocol" = h1 ]; then flags=(--h1); fi
    base_of() { if [ "$protocol" = h1 ]; then echo "${h1_base[$1]}"; else echo "${h2_base[$1]}"; fi; }
    declare -A runs=()
    # warm every server (the first pass fills the caches), then measure, the servers alternating
    for server in "${servers[@]}"; do
        run_h2load "$(server_pids "$server")" "$(base_of "$server")" "$work/${uri_kind[$server]}-$kind.txt" \
            "$range" 8 8 2000 "${flags[@]}" >/dev/null
    done
    for _ in $(seq "$ROUNDS"); do
        for server in "${servers[@]}"; do
            runs[$server]+=$(run_h2load "$(server_pids "$server")" "$(base_of "$server")" \
                "$work/${uri_kind[$server]}-$kind.txt" "$range" "$connections" "$streams" "$requests" \
                "${flags[@]}")$'\n'
        done
    done
    local rounds=""
    for server in "${servers[@]}"; do
        results["$name/$server"]=$(median_run "${runs[$server]}")
        rounds+="$server $(echo "${runs[$server]}" | awk 'NF {printf "%.0f ", $1}')| "
    done
    if [ "$ROUNDS" -gt 1 ]; then results["$name/rounds"]=${rounds% | }; fi
}

median_run() { # the run lines ("req/s MB/s p50 p99 cpu user ok=N") -> the median line by requests/s
    echo "$1" | awk 'NF' | sort -n -k1,1 | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'
}

echo "== starting pageshare, nginx and h2o"
# Each server in a session of its own, as nginx's and h2o's daemons put themselves: with the kernel's
# autogroup scheduling (on here) a session is a scheduling group, and a server in h2load's group would
# share its CPU with the client on different terms from the peers (it changed req/s by up to 2x here).
# The first shares by file: named, since the daemon's default is chunk (it was both daemons' sharing here
# before this said so).
setsid "$binary" serve --listen 127.0.0.1:18090 --image "bench=$work/bench.img" --fingerprint none \
    --sharing file --cache-size 256MiB --max-streams 128 --log-level warning > "$work/pageshare.log" 2>&1 &
pageshare_pid=$!
setsid "$binary" serve --listen 127.0.0.1:18093 --image "bench=$work/bench.img" --fingerprint none --sharing chunk \
    --cache-size 256MiB --max-streams 128 --log-level warning > "$work/pageshare-chunk.log" 2>&1 &
chunk_pid=$!
nginx -c "$work/nginx.conf"
if command -v h2o >/dev/null; then
    h2o -c "$work/h2o.conf" -m daemon >/dev/null 2>&1 && servers+=(h2o) || echo "h2o did not start: skipped" >&2
else
    echo "h2o missing (make bench installs it): skipped" >&2
fi
sleep 1

names=(
    "a) 4 KiB ranges, -c 32 -m 16" "b) 1 MiB ranges, -c 32 -m 16" "c) 4 KiB ranges, -c 100 -m 100"
    "d) 1 MiB ranges, HTTP/1.1, -c 32" "e) 2 KB whole files, -c 32 -m 16" "f) 4 KiB ranges, HTTP/1.1, -c 32"
)
scenario "${names[0]}" "bytes=0-4095" 32 16 "$REQUESTS" hot
scenario "${names[1]}" "bytes=1048576-2097151" 32 16 $((REQUESTS / 10)) big
scenario "${names[2]}" "bytes=4096-8191" 100 100 "$REQUESTS" hot
scenario "${names[3]}" "bytes=1048576-2097151" 32 1 $((REQUESTS / 10)) big h1
scenario "${names[4]}" "" 32 16 "$REQUESTS" small
scenario "${names[5]}" "bytes=0-4095" 32 1 "$REQUESTS" hot h1

declare -A rss
for server in "${servers[@]}"; do
    # shellcheck disable=SC2046
    rss[$server]=$(peak_rss_kib $(server_pids "$server"))
done

printf "\n%-34s %-10s %12s %10s %9s %9s %8s %8s\n" scenario server "req/s" "MB/s" "p50 ms" "p99 ms" "CPU µs" \
    "user µs"
for name in "${names[@]}"; do
    [ -n "${results[$name/pageshare]:-}" ] || continue
    for server in "${servers[@]}"; do
        read -r rps mbs p50 p99 cpu user ok <<<"${results[$name/$server]}"
        printf "%-34s %-10s %12s %10s %9s %9s %8s %8s  %s\n" "$name" "$server" "$rps" "$mbs" "$p50" "$p99" "$cpu" \
            "$user" "$ok"
    done
    if [ -n "${results[$name/rounds]:-}" ]; then printf "%-34s rounds (req/s): %s\n" "" "${results[$name/rounds]}"; fi
    read -r prps _ _ _ pcpu _ <<<"${results[$name/pageshare]}"
    read -r crps _ _ _ ccpu _ <<<"${results[$name/chunk]}"
    read -r nrps _ _ _ ncpu _ <<<"${results[$name/nginx]}"
    awk -v p="$prps" -v c="$crps" -v n="$nrps" -v pc="$pcpu" -v cc="$ccpu" -v nc="$ncpu" 'BEGIN {
        printf "%-34s pageshare/nginx req/s %.2fx, CPU/req %.2fx; chunk/file req/s %.2fx, CPU/req %.2fx\n",
            "", p / n, pc / nc, c / p, cc / pc
        printf "%-34s chunk/nginx req/s %.2fx, CPU/req %.2fx (the default sharing)\n", "", c / n, cc / nc }'
    if [ -n "${results[$name/h2o]:-}" ]; then
        read -r hrps _ _ _ hcpu _ <<<"${results[$name/h2o]}"
        awk -v p="$prps" -v h="$hrps" -v pc="$pcpu" -v hc="$hcpu" 'BEGIN {
            printf "%-34s pageshare/h2o req/s %.2fx, CPU/req %.2fx\n", "", p / h, pc / hc }'
    fi
done
printf "peak RSS (MiB):"
for server in "${servers[@]}"; do printf " %s %d" "$server" $((rss[$server] / 1024)); done
echo " (nginx and h2o: master + workers)"
