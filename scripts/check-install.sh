#!/usr/bin/env bash
# `make install` into a temporary DESTDIR with PREFIX=/usr, from the debug build `make test` made, then
# checks what a fresh machine would get: every file in place, the installed binary's --version, `man`
# rendering the main page and a subcommand's, the completion scripts parsing, the unit naming the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
destdir=$(mktemp -d /tmp/pageshare-install-XXXXXX)
trap 'rm -rf "$destdir"' EXIT
make --no-print-directory install DESTDIR="$destdir" PREFIX=/usr CONFIGURATION=debug >/dev/null
root="$destdir/usr"
for file in bin/pageshare share/man/man1/pageshare.1 share/man/man1/pageshare-serve.1 \
    share/man/man1/pageshare-admin-attach.1 share/bash-completion/completions/pageshare \
    share/zsh/vendor-completions/_pageshare share/fish/vendor_completions.d/pageshare.fish \
    lib/systemd/system/pageshare.service lib/systemd/system/pageshare.socket \
    share/doc/pageshare/examples/pageshare.yaml share/doc/pageshare/examples/tokens.yaml; do
    [ -s "$root/$file" ] || { echo "check-install: $file missing or empty" >&2; exit 1; }
done
version=$("$root/bin/pageshare" --version)
[[ $version =~ ^pageshare\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{12}(-dirty)?|unknown)\)$ ]] \
    || { echo "check-install: --version says '$version'" >&2; exit 1; }
page=$(MANWIDTH=100 man -l "$root/share/man/man1/pageshare.1" 2>/dev/null)
grep -q "serve" <<<"$page" || { echo "check-install: man pageshare does not list serve" >&2; exit 1; }
serve=$(MANWIDTH=100 man -l "$root/share/man/man1/pageshare-serve.1" 2>/dev/null)
grep -q -- "--send-timeout" <<<"$serve" || { echo "check-install: man pageshare-serve lacks its options" >&2; exit 1; }
bash -n "$root/share/bash-completion/completions/pageshare"
if command -v zsh >/dev/null; then zsh -n "$root/share/zsh/vendor-completions/_pageshare"; fi
if command -v fish >/dev/null; then fish --no-execute "$root/share/fish/vendor_completions.d/pageshare.fish"; fi
grep -q '^ExecStart=/usr/bin/pageshare serve' "$root/lib/systemd/system/pageshare.service" \
    || { echo "check-install: the unit does not start /usr/bin/pageshare" >&2; exit 1; }
echo "check-install: ok ($version; $(find "$root/share/man/man1" -name '*.1' | wc -l) man pages)"
