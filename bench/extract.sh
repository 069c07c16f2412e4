#!/usr/bin/env bash
# Benchmark: `pageshare extract` against `fsck.erofs --extract` (Debian erofs-utils) on one uncompressed
# image of real files, in one run, and (as root) against `cat`-ing every file from the kernel mount with
# cold caches. Reports medians and ratios. Not a test: numbers depend on the machine.
#
#   bench/extract.sh [SOURCE_DIR] [RUNS] [MKFS_OPTIONS...]   (default: /usr/share, 3 runs, uncompressed)
#   bench/extract.sh SOURCE_DIR RUNS synthetic:zstd           (lzma, deflate, zstd: algorithms mkfs.erofs 1.5
#                                                              cannot write; built by the test support's
#                                                              byte-level builder, one pcluster per 4 KiB)
#
# The image lives on disk (bench/out/, or BENCH_IMAGE_DIR) so that drop_caches makes it cold; both
# extractors write to a tmpfs so that the destination disk does not dominate. The image is read warm (in
# the page cache) for the fsck.erofs comparison and cold for the kernel comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=${1:-/usr/share}
runs=${2:-3}
shift $(($# > 2 ? 2 : $#))
mkfs_options=("$@")
work=${BENCH_DIR:-/dev/shm/pageshare-bench}
image_dir=${BENCH_IMAGE_DIR:-bench/out}
rm -rf "$work" && mkdir -p "$work" "$image_dir"
trap 'umount "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT

swift build -c release --product pageshare >/dev/null
pageshare=$(swift build -c release --show-bin-path)/pageshare
tag=$(printf '%s' "$source_dir ${mkfs_options[*]:-}" | tr -c 'a-zA-Z0-9' '_')
image=$image_dir/bench-$tag.img
if [ ! -f "$image" ]; then
    case "${mkfs_options[0]:-}" in
    synthetic:*)
        PAGESHARE_BENCH_IMAGE=$(realpath -m "$image") PAGESHARE_BENCH_SOURCE=$source_dir \
            PAGESHARE_BENCH_ALGORITHM=${mkfs_options[0]#synthetic:} \
            swift test --filter writeSyntheticBenchmarkImage >/dev/null 2>&1
        ;;
    *) mkfs.erofs --quiet "${mkfs_options[@]}" "$image" "$source_dir" >/dev/null ;;
    esac
fi
files=$("$pageshare" inspect "$image" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"].get("regular", 0))')
bytes=$("$pageshare" inspect "$image" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalFileBytes"])')
echo "image: $image ($(du -h "$image" | cut -f1)), $files files, $((bytes / 1048576)) MiB of file data," \
    "from $source_dir, mkfs options: ${mkfs_options[*]:-none}"
cat "$image" >/dev/null  # warm

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
time_it() {  # prints seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

declare -a ours theirs
fsck_reads=yes
if ! fsck.erofs --extract="$work/probe" "$image" >/dev/null 2>&1; then
    fsck_reads=no
    echo "$(fsck.erofs -V 2>&1 | head -1) cannot read this image: fsck comparison skipped"
fi
rm -rf "$work/probe"
for run in $(seq 1 "$runs"); do
    rm -rf "$work/out-ours" "$work/out-fsck"
    ours+=("$(time_it "$pageshare" extract "$image" "$work/out-ours")")
    [ "$fsck_reads" = yes ] || continue
    theirs+=("$(time_it fsck.erofs --extract="$work/out-fsck" "$image")")
    if [ "$run" = 1 ] && ! diff -r --no-dereference "$work/out-ours" "$work/out-fsck" >/dev/null; then
        echo "WARNING: the two extractions differ"
    fi
done
ours_median=$(printf '%s\n' "${ours[@]}" | median)
printf 'pageshare extract   median %.3f s  (runs: %s)\n' "$ours_median" "${ours[*]}"
if [ "$fsck_reads" = yes ]; then
    fsck_median=$(printf '%s\n' "${theirs[@]}" | median)
    printf 'fsck.erofs --extract median %.3f s  (runs: %s)\n' "$fsck_median" "${theirs[*]}"
    printf 'ratio pageshare/fsck.erofs: %.2f (below 1 = PageShare faster)\n' \
        "$(awk -v a="$ours_median" -v b="$fsck_median" 'BEGIN { print a / b }')"
fi

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
    mkdir -p "$work/mnt"
    mount -t erofs -o ro,loop "$image" "$work/mnt"
    declare -a kernel cold
    for _ in $(seq 1 "$runs"); do
        sync; echo 3 >/proc/sys/vm/drop_caches
        kernel+=("$(time_it sh -c "find '$work/mnt' -type f -print0 | xargs -0 cat >/dev/null")")
        sync; echo 3 >/proc/sys/vm/drop_caches
        rm -rf "$work/out-cold"
        cold+=("$(time_it "$pageshare" extract "$image" "$work/out-cold")")
    done
    umount "$work/mnt"
    kernel_median=$(printf '%s\n' "${kernel[@]}" | median)
    cold_median=$(printf '%s\n' "${cold[@]}" | median)
    printf 'kernel mount, cat every file (cold) median %.3f s\n' "$kernel_median"
    printf 'pageshare extract (cold)             median %.3f s\n' "$cold_median"
    printf 'ratio pageshare/kernel (cold): %.2f\n' "$(awk -v a="$cold_median" -v b="$kernel_median" 'BEGIN { print a / b }')"
else
    echo "kernel comparison skipped: needs root to mount and drop caches"
fi
