#!/usr/bin/env bash
# Installs PageShare like a Debian daemon under DESTDIR + PREFIX: the binary, one man page per command
# (generated from the command definitions by swift-argument-parser's generate-manual plugin), bash, zsh and
# fish completions, the systemd units (pointing at the installed binary) and the example configuration.
#
#   scripts/install.sh BINARY DESTDIR PREFIX [CONFIGURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$1 destdir=$2 prefix=$3 configuration=${4:-release}
root="$destdir$prefix"

install -D -m 0755 "$binary" "$root/bin/pageshare"

swift package generate-manual --multi-page --configuration "$configuration" >/dev/null
manuals=.build/plugins/GenerateManual/outputs/pageshare
install -d "$root/share/man/man1"
for page in "$manuals"/*.1; do
    # pageshare.admin.attach.1 -> pageshare-admin-attach.1 (`man pageshare-admin-attach`, as git does).
    name=$(basename "$page" .1)
    install -m 0644 "$page" "$root/share/man/man1/${name//./-}.1"
done

"$binary" --generate-completion-script bash | install -D -m 0644 /dev/stdin \
    "$root/share/bash-completion/completions/pageshare"
"$binary" --generate-completion-script zsh | install -D -m 0644 /dev/stdin "$root/share/zsh/vendor-completions/_pageshare"
"$binary" --generate-completion-script fish | install -D -m 0644 /dev/stdin \
    "$root/share/fish/vendor_completions.d/pageshare.fish"

# systemd looks in $prefix/lib/systemd/system for /usr and /usr/local alike.
install -d "$root/lib/systemd/system"
sed "s|/usr/local/bin/pageshare|$prefix/bin/pageshare|" deploy/systemd/pageshare.service \
    > "$root/lib/systemd/system/pageshare.service"
install -m 0644 deploy/systemd/pageshare.socket "$root/lib/systemd/system/pageshare.socket"
chmod 0644 "$root/lib/systemd/system/pageshare.service"

examples="$root/share/doc/pageshare/examples"
install -d "$examples"
install -m 0644 deploy/config/pageshare.yaml deploy/config/tokens.yaml deploy/systemd/pageshare.default "$examples/"
echo "installed pageshare $("$binary" --version | cut -d' ' -f2-) under $root"
