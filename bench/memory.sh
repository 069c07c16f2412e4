#!/usr/bin/env bash
# Memory benchmark for the shared page cache: three versions of one tree (the second and third change
# ~10% and ~15% of the files), each made into an image with Debian's mkfs.erofs; every file of every image
# is read through one SharedPageCache in digest mode (`pageshare share-report`), and, as root, through three
# kernel mounts (this kernel has no page cache sharing). Reports the cache's resident bytes against the
# unique content (target <= 1.02) and the kernel's page-cache growth for the same reads.
#
#   bench/memory.sh [SOURCE_DIR] [MKFS_OPTIONS...]      (default: /usr/share/doc, uncompressed)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=${1:-/usr/share/doc}
shift $(($# > 0 ? 1 : 0))
work=${BENCH_DIR:-bench/out/memory}
rm -rf "$work" && mkdir -p "$work"
loops=()
cleanup() {
    local mount_point loop
    for mount_point in "$work"/mnt-*; do umount "$mount_point" 2>/dev/null || true; done
    for loop in "${loops[@]}"; do losetup -d "$loop" 2>/dev/null || true; done
}
trap cleanup EXIT

swift build -c release --product pageshare >/dev/null
pageshare=$(swift build -c release --show-bin-path)/pageshare

# v1: a copy; v2 and v3: every 10th / every 7th file gets a changed tail, plus a few new files.
cp -a "$source_dir" "$work/v1"
for version in 2 3; do
    cp -a "$work/v1" "$work/v$version"
    step=$((version == 2 ? 10 : 7))
    find "$work/v$version" -type f | sort | awk -v step="$step" 'NR % step == 0' | while read -r file; do
        printf 'changed in version %s\n' "$version" >>"$file"
    done
    seq 1 50000 >"$work/v$version/new-in-$version.txt"
done
for version in 1 2 3; do
    mkfs.erofs --quiet "$@" "$work/v$version.img" "$work/v$version" >/dev/null
done
images=("$work/v1.img" "$work/v2.img" "$work/v3.img")
echo "images: ${images[*]} ($(du -ch "${images[@]}" | tail -1 | cut -f1)), from $source_dir, mkfs options: ${*:-none}"

"$pageshare" share-report --json "${images[@]}" >"$work/report.json"
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"pageshare: {r['files']} files, {r['logicalBytes'] >> 20} MiB read, resident {r['residentBytes'] >> 20} MiB, "
      f"unique content {r['uniqueContentBytes'] >> 20} MiB, resident/unique {r['residentOverUnique']:.3f}, "
      f"saved {r['savedBytes'] >> 20} MiB")
PY

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
    # Loop devices with direct I/O, so the images' own pages are not cached twice (backing file + erofs).
    for version in 1 2 3; do
        mkdir -p "$work/mnt-$version"
        loop=$(losetup -f --show -r --direct-io=on "$work/v$version.img")
        loops+=("$loop")
        mount -t erofs -o ro "$loop" "$work/mnt-$version"
    done
    cached() { awk '/^Cached:/ { print $2 * 1024 }' /proc/meminfo; }
    sync
    echo 3 >/proc/sys/vm/drop_caches
    before=$(cached)
    for version in 1 2 3; do find "$work/mnt-$version" -type f -print0 | xargs -0 cat >/dev/null; done
    after=$(cached)
    python3 - "$work/report.json" "$before" "$after" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); before, after = int(sys.argv[2]), int(sys.argv[3])
growth = after - before
print(f"kernel: page cache grew {growth >> 20} MiB for the same reads through 3 mounts (direct-I/O loops)")
print(f"ratio pageshare resident / kernel growth: {r['residentBytes'] / growth:.2f}")
PY
else
    echo "kernel comparison skipped: needs root to mount and drop caches"
fi
