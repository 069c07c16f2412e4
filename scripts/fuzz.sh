#!/usr/bin/env bash
# Builds the EROFS libFuzzer target with -sanitize=fuzzer,address and runs it for $1 seconds (default 600)
# on a corpus of small images made by Debian's mkfs.erofs. Findings land in Fuzz/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
PAGESHARE_FUZZ=1 swift build --scratch-path .build-fuzz --product EROFSFuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
fuzzer=$(PAGESHARE_FUZZ=1 swift build --scratch-path .build-fuzz --show-bin-path)/EROFSFuzzer

corpus=Fuzz/corpus
mkdir -p "$corpus" Fuzz/out
if [ -z "$(ls -A "$corpus")" ]; then
    tree=$(mktemp -d)
    trap 'rm -rf "$tree"' EXIT
    mkdir -p "$tree/src/d/e"
    printf 'tail data\n' >"$tree/src/a"
    head -c 9000 /dev/urandom >"$tree/src/blocks"
    for i in $(seq 1 40); do printf '%s' "$i" >"$tree/src/d/file-$i"; done
    ln -s ../../a "$tree/src/d/e/up"
    ln -s a "$tree/src/link"
    setfattr -n user.one -v 1 "$tree/src/a" 2>/dev/null || true
    n=0
    seq 1 3000 >"$tree/src/numbers"
    for options in "" "-Eforce-inode-extended" "-Enoinline_data" "--chunksize=4096" \
        "--chunksize=8192 -Eforce-chunk-indexes" "-Eforce-inode-compact" "-x -1" \
        "-zlz4" "-zlz4hc -C16384" "-zlz4 -Eztailpacking" "-zlz4 -Elegacy-compress"; do
        # shellcheck disable=SC2086
        mkfs.erofs --quiet $options "$corpus/seed-$n.img" "$tree/src" >/dev/null
        n=$((n + 1))
    done
    # Byte-built images for features mkfs.erofs 1.5 cannot make (metabox, long prefixes, 512 B blocks...).
    PAGESHARE_FUZZ_SEEDS=$(realpath "$corpus") swift test --filter writeSyntheticFuzzSeeds >/dev/null
fi
echo "fuzzing for ${seconds}s with $(find "$corpus" -type f | wc -l) seed/corpus files"
"$fuzzer" -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=Fuzz/out/ "$corpus" 2>&1 | tee Fuzz/out/last-run.log | grep -E "^#|ERROR|SUMMARY|Done" | tail -n 25
