#!/usr/bin/env bash
# Benchmark: cold `pageshare extract` of every image in ../shared/fixtures against reading the same tree
# through the kernel's mount (`tar cf - -C MNT . | cat >/dev/null`, which reads every byte; `tar cf
# /dev/null` would skip the data), page cache dropped before each run. Needs root (mount, drop_caches).
# Prints a table of medians and the ratio; not a test: numbers depend on the machine.
#
#   bench/fixtures-extract.sh [RUNS] [FIXTURE_NAME...]   (default: 3 runs, every fixture)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift $(($# > 0 ? 1 : 0))
fixtures=${PAGESHARE_FIXTURES:-../shared/fixtures}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, drop_caches)" >&2; exit 1; }
[ -d "$fixtures" ] || { echo "no fixtures at $fixtures" >&2; exit 1; }
work=${BENCH_DIR:-/dev/shm/pageshare-fixtures-bench}
rm -rf "$work" && mkdir -p "$work/mnt"
loops=()
cleanup() {
    umount "$work/mnt" 2>/dev/null || true
    for loop in "${loops[@]}"; do losetup -d "$loop" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

swift build -c release --product pageshare >/dev/null
pageshare=$(swift build -c release --show-bin-path)/pageshare

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }
# Drops the page cache, then loads the programs again: what is timed is reading the image cold, not
# paging in a 75 MB binary and the Swift runtime (or tar).
cold() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
    "$pageshare" --help >/dev/null
    tar --version >/dev/null
    cat </dev/null >/dev/null
}

names=("$@")
if [ ${#names[@]} = 0 ]; then
    for manifest in "$fixtures"/*.json; do names+=("$(basename "$manifest" .json)"); done
fi
# What a pageshare process costs before it reads anything (exec, the dynamic loader, the Swift runtime):
# the fixtures are small enough for it to matter, so the table also gives the ratio without it.
startups=()
for _ in $(seq 1 9); do
    start=$(now)
    "$pageshare" --help >/dev/null
    startups+=("$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }')")
done
startup=$(printf '%s\n' "${startups[@]}" | median)
echo "pageshare start-up (median of 9 runs of --help): $startup s"
printf '%-26s %12s %12s %7s %16s\n' fixture "pageshare s" "kernel s" ratio "ratio w/o start"
worst=0 worst_net=0
for name in "${names[@]}"; do
    image=$fixtures/$name.img
    device_args=() mount_devices=""
    if [ ! -f "$image" ]; then  # the tar-index pair: index image plus the tar as device 1
        image=$fixtures/$name.erofs
        tar=$fixtures/$name.tar
        device_args=(--device "$tar")
        loop=$(losetup -r -f --show "$tar")
        loops+=("$loop")
        mount_devices=",device=$loop"
    fi
    ours=() theirs=()
    for _ in $(seq 1 "$runs"); do
        rm -rf "$work/out"
        cold
        start=$(now)
        "$pageshare" extract "$image" "${device_args[@]}" "$work/out" >/dev/null
        ours+=("$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }')")
        cold
        mount -t erofs -o "ro,loop$mount_devices" "$image" "$work/mnt"
        start=$(now)
        tar cf - -C "$work/mnt" . 2>/dev/null | cat >/dev/null
        theirs+=("$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }')")
        umount "$work/mnt"
    done
    a=$(printf '%s\n' "${ours[@]}" | median)
    b=$(printf '%s\n' "${theirs[@]}" | median)
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
    net=$(awk -v a="$a" -v b="$b" -v s="$startup" 'BEGIN { printf "%.2f", (a - s) / b }')
    worst=$(awk -v w="$worst" -v r="$ratio" 'BEGIN { print (r > w ? r : w) }')
    worst_net=$(awk -v w="$worst_net" -v r="$net" 'BEGIN { print (r > w ? r : w) }')
    printf '%-26s %12s %12s %7s %16s\n' "$name" "$a" "$b" "$ratio" "$net"
done
echo "worst ratio: $worst; without start-up: $worst_net (target: 1.2)"
