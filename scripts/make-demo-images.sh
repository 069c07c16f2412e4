#!/usr/bin/env bash
# Builds two demo images, app-v1 and app-v2, that share most files (as two minor versions of a container
# image do), with Debian's mkfs.erofs: v1 plain, v2 with 4 KiB chunks.
set -euo pipefail
out=${1:-demo}
mkdir -p "$out"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT

make_tree() {
    local root=$1 version=$2
    mkdir -p "$root/etc" "$root/lib" "$root/bin" "$root/share/doc"
    printf 'Welcome to the PageShare demo, version %s\n' "$version" >"$root/etc/motd"
    # The same "library" in both versions: the content PageShare caches once.
    head -c 2000000 /dev/zero | tr '\0' 'L' >"$root/lib/libdemo.so"
    seq 1 20000 >"$root/share/doc/numbers.txt"
    printf '#!/bin/sh\necho demo %s\n' "$version" >"$root/bin/demo"
    chmod 755 "$root/bin/demo"
    ln -sf ../lib/libdemo.so "$root/bin/libdemo-link"
    if [ -d /usr/share/common-licenses ]; then cp -r /usr/share/common-licenses "$root/share/licenses"; fi
}

make_tree "$tree/v1" 1.0
make_tree "$tree/v2" 1.1
mkfs.erofs --quiet "$out/app-v1.img" "$tree/v1" >/dev/null
mkfs.erofs --quiet --chunksize=4096 "$out/app-v2.img" "$tree/v2" >/dev/null
echo "demo images: $out/app-v1.img $out/app-v2.img"
