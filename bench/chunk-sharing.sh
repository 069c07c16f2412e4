#!/usr/bin/env bash
# Sharing below the file, on real version pairs from Debian's archive: for each package, the version in
# bookworm and the one in bookworm-security (a point release and a security rebuild), each extracted
# (dpkg-deb -x) and made into an image (mkfs.erofs). Every file of both versions is read over HTTP from
# one `pageshare serve` (each pair in its own domain; bytes checked against the extracted files), once with
# `--sharing file` and once with `--sharing chunk`; the domains' resident bytes are compared with no
# sharing and with an independent offline count of the unique chunk bytes (bench/chunk_count.py). A third
# run shares by chunk in a cache a third of the unique bytes (SMALL_CACHE, default 16MiB): every byte is
# checked again under eviction, and the log's waste (segment tails, holes) is reported against resident.
#
#   bench/chunk-sharing.sh [PACKAGE...]      (default: libc6 libssl3 systemd libsystemd0 perl-base curl libxml2)
#   MKFS_OPTIONS="-zlz4hc" bench/chunk-sharing.sh       images compressed
set -euo pipefail
cd "$(dirname "$0")/.."
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(libc6 libssl3 systemd libsystemd0 perl-base curl libxml2)
work=${BENCH_DIR:-bench/out/chunk-sharing}
port=${PORT:-18095}
mkdir -p "$work/debs"

swift build -c release --product pageshare >/dev/null
pageshare=$(swift build -c release --show-bin-path)/pageshare

images=()
for package in "${packages[@]}"; do
    # The two versions the archive has: bookworm's and bookworm-security's.
    mapfile -t versions < <(apt-cache madison "$package" | awk -F'|' '
        $3 ~ /bookworm-security\/main|bookworm\/main/ { gsub(/ /, "", $2); print $2 }' | sort -u)
    if [ ${#versions[@]} -lt 2 ]; then
        echo "skipped $package: the archive has ${#versions[@]} version(s)" >&2
        continue
    fi
    domain=$(printf '%s' "$package" | tr -c 'a-z0-9\n' '-')
    for side in old new; do
        version=${versions[0]}
        [ "$side" = new ] && version=${versions[1]}
        tree="$work/tree/$package/$side"
        if [ ! -d "$tree" ]; then
            (cd "$work/debs" && apt-get download -q "$package=$version" >/dev/null 2>&1)
            deb=$(find "$work/debs" -name "${package}_*${version#*:}_*.deb" | head -1)
            mkdir -p "$tree" && dpkg-deb -x "$deb" "$tree"
        fi
        image="$work/$package-$side.img"
        # shellcheck disable=SC2086 # the options are words
        [ -f "$image" ] || mkfs.erofs --quiet ${MKFS_OPTIONS:-} "$image" "$tree" >/dev/null
        images+=("--image" "$domain-$side=$image@$domain")
    done
    echo "$package: ${versions[0]} / ${versions[1]}" >&2
done

for run in file chunk chunk-small; do
    sharing=${run%-small}
    size=4GiB
    [ "$run" = chunk-small ] && size=${SMALL_CACHE:-16MiB}
    "$pageshare" serve --listen "127.0.0.1:$port" --cache-size "$size" --fingerprint digest --sharing "$sharing" \
        --log-level warning "${images[@]}" &
    daemon=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    python3 - "$port" "$work" "$sharing" "${packages[@]}" <<'PY' >"$work/daemon-$run.json"
import hashlib, http.client, json, os, sys, urllib.parse
port, work, sharing, packages = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
connection = http.client.HTTPConnection("127.0.0.1", port)
result = {}
for package in packages:
    domain = "".join(c if c.isalnum() and c.islower() or c.isdigit() else "-" for c in package)
    if not os.path.isdir(f"{work}/tree/{package}/new"):
        continue
    files = wrong = 0
    for side in ("old", "new"):
        tree = f"{work}/tree/{package}/{side}"
        for directory, _, names in os.walk(tree):
            for name in names:
                path = os.path.join(directory, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                relative = urllib.parse.quote(os.path.relpath(path, tree))
                connection.request("GET", f"/v1/images/{domain}-{side}/files/{relative}")
                response = connection.getresponse()
                body = response.read()
                files += 1
                if response.status != 200 or body != open(path, "rb").read():
                    wrong += 1
    result[package] = {"files": files, "wrong": wrong, "domain": domain}
# Every domain's figures once all were read (a later pair's reads may evict an earlier pair's chunks).
for package, entry in result.items():
    connection.request("GET", f"/v1/admin/domains/{entry['domain']}")
    entry.update(json.loads(connection.getresponse().read()))
connection.request("GET", "/v1/admin/cache")
result["cache"] = json.loads(connection.getresponse().read())
print(json.dumps(result))
PY
    kill "$daemon"
    wait "$daemon" || true
done

for package in "${packages[@]}"; do
    [ -d "$work/tree/$package/new" ] || continue
    [ -f "$work/count-$package.json" ] ||
        bench/chunk_count.py "$work/tree/$package/old" "$work/tree/$package/new" >"$work/count-$package.json"
done

python3 - "$work" "${packages[@]}" <<'PY'
import json, os, sys
work, packages = sys.argv[1], sys.argv[2:]
by_file = json.load(open(f"{work}/daemon-file.json"))
by_chunk = json.load(open(f"{work}/daemon-chunk.json"))
print(f"\n{'pair':<12} {'files':>6} {'no sharing':>11} {'whole file':>17} {'chunk (daemon)':>20} "
      f"{'offline':>10} {'daemon/offline':>15}  wrong")
totals = [0, 0, 0, 0]
for package in packages:
    if package not in by_chunk:
        continue
    count = json.load(open(f"{work}/count-{package}.json"))
    plain = count["fileBytes"]
    whole = by_file[package]["residentBytes"]
    whole_plain = whole + by_file[package]["savedBytes"]  # page-rounded bytes without sharing
    chunk = by_chunk[package]["residentBytes"]
    offline = count["chunkUniqueBytes"]
    totals = [totals[0] + plain, totals[1] + whole, totals[2] + whole_plain, totals[3] + chunk]
    wrong = by_file[package]["wrong"] + by_chunk[package]["wrong"]
    print(f"{package:<12} {by_chunk[package]['files']:>6} {plain / 2**20:>9.1f}Mi "
          f"{whole / 2**20:>7.1f}Mi {100 * (1 - whole / whole_plain):>5.1f} % "
          f"{chunk / 2**20:>9.1f}Mi {100 * (1 - chunk / plain):>6.1f} % "
          f"{offline / 2**20:>8.1f}Mi {chunk / offline:>15.4f}  {wrong}")
plain, whole, whole_plain, chunk = totals
print(f"{'all':<12} {'':>6} {plain / 2**20:>9.1f}Mi {whole / 2**20:>7.1f}Mi {100 * (1 - whole / whole_plain):>5.1f} % "
      f"{chunk / 2**20:>9.1f}Mi {100 * (1 - chunk / plain):>6.1f} %")
cache = by_chunk["cache"]
print(f"\nchunk mode: {cache['residentChunks']} chunks resident, chunk maps {cache['chunkMapBytes']} bytes "
      f"({100 * cache['chunkMapBytes'] / max(1, plain):.2f} % of the content), all metadata {cache['metadataBytes']} "
      f"bytes ({100 * cache['metadataBytes'] / max(1, cache['residentBytes']):.2f} % of resident), "
      f"log waste {100 * cache['chunkWasteBytes'] / max(1, cache['residentBytes']):.2f} % of resident")
small = json.load(open(f"{work}/daemon-chunk-small.json"))
cache = small["cache"]
evictions = sum(small[p]["evictions"] for p in packages if p in small)
wrong = sum(small[p]["wrong"] for p in packages if p in small)
print(f"chunk mode in {cache['budgetBytes'] >> 20} MiB: {evictions} evictions, {wrong} files wrong, resident "
      f"{cache['residentBytes'] >> 20} MiB, log waste {100 * cache['chunkWasteBytes'] / max(1, cache['residentBytes']):.2f} %"
      f" of resident")
PY
