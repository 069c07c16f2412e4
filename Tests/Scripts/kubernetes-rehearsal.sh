#!/bin/sh
# Rehearses deploy/kubernetes/pageshare.yaml on this machine, as root: the node's hostPath directories as the
# kubelet makes them (root, 0755), the init container's own command as root with only the capabilities it
# adds, then the daemon with the pod's uid and gid, no capabilities, the ConfigMap's configuration and a
# read-only root filesystem (a private mount namespace where / is remounted read-only and only the
# hostPath directories stay writable). Prints what a client got and what the daemon wrote.
#
#   kubernetes-rehearsal.sh PAGESHARE_BINARY IMAGE WORKDIR PORT
set -eu
binary=$1 image=$2 work=$3 port=$4
manifest=$(dirname "$0")/../../deploy/kubernetes/pageshare.yaml

# The manifest's settings, read with PyYAML: uid, gid, the container's security context, the init
# container's command and capabilities, and the configuration.
/usr/bin/python3 - "$manifest" "$work" "$port" <<'PY'
import sys, yaml
manifest, work, port = sys.argv[1:4]
documents = [d for d in yaml.safe_load_all(open(manifest)) if d]
daemonset = next(d for d in documents if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]["pageshare.yaml"]
pod, container = daemonset["securityContext"], daemonset["containers"][0]
init = daemonset["initContainers"][0]
security = container["securityContext"]
assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
assert not security.get("capabilities", {}).get("add")
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
def local(path):
    return work + "/node" + path
config = config.replace(mounts["tokens"] + "/tokens.yaml", work + "/tokens.yaml")
for name in ("images", "socket", "state"):
    config = config.replace(mounts[name] + "/", local(mounts[name]) + "/")
    config = config.replace(mounts[name] + "\n", local(mounts[name]) + "\n")
config = config.replace('["0.0.0.0:8480"]', f'["127.0.0.1:{port}"]')
open(work + "/pageshare.yaml", "w").write(config)
command = init["command"][-1]
for value in (mounts["socket"], mounts["state"]):
    command = command.replace(value, local(value))
caps = ",".join("+" + c.lower() for c in init["securityContext"]["capabilities"]["add"])
with open(work + "/settings.sh", "w") as out:
    out.write(f"uid={pod['runAsUser']}\ngid={pod['runAsGroup']}\n")
    out.write(f"socket_dir='{local(mounts['socket'])}'\nstate_dir='{local(mounts['state'])}'\n")
    out.write(f"images_dir='{local(mounts['images'])}'\ninit_caps='{caps}'\n")
    out.write("init_command='" + command.replace("'", "'\\''") + "'\n")
PY
# Written by the python above: uid, gid, socket_dir, state_dir, images_dir, init_caps, init_command.
uid='' gid='' socket_dir='' state_dir='' images_dir='' init_caps='' init_command=''
# shellcheck disable=SC1091
. "$work/settings.sh"

# The node: the images directory with the ConfigMap's image, and the hostPath directories the kubelet makes.
mkdir -p "$images_dir" "$socket_dir" "$state_dir"
chmod 0755 "$work" "$work/node" "$images_dir" "$socket_dir" "$state_dir"
cp "$image" "$images_dir/base.erofs"
chmod 0644 "$images_dir/base.erofs" "$work/pageshare.yaml"
token=rehearsal-token
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
printf 'tokens:\n  - {name: operator, sha256: %s, role: admin}\n' "$hash" > "$work/tokens.yaml"
chown "$uid:$gid" "$work/tokens.yaml"
chmod 0400 "$work/tokens.yaml"
cp "$binary" "$work/pageshare"
chmod 0755 "$work/pageshare"

# The init container: root, every capability but the ones it adds dropped.
setpriv --bounding-set "-all,$init_caps" --inh-caps -all -- /bin/sh -c "$init_command"
echo "init: $(stat -c '%u:%g %a' "$socket_dir") $(stat -c '%u:%g %a' "$state_dir")"

# The daemon: a read-only root but for the hostPath directories, the pod's uid and gid, no capabilities.
log="$work/daemon.log"
unshare --mount --propagation private /bin/sh -c "
    mount --bind '$socket_dir' '$socket_dir' && mount --bind '$state_dir' '$state_dir' &&
    mount -o remount,bind,ro / &&
    exec setpriv --reuid $uid --regid $gid --clear-groups --bounding-set -all --inh-caps -all -- \
        '$work/pageshare' serve --config '$work/pageshare.yaml'" > "$log" 2>&1 &
daemon=$!
socket="$socket_dir/pageshare.sock"
body=""
for _ in $(seq 200); do
    body=$(curl -s -m 5 --unix-socket "$socket" -H "Authorization: Bearer $token" \
        http://localhost/v1/images/base/files/file) && [ -n "$body" ] && break
    sleep 0.05
done
echo "unix: $body"
echo "tcp: $(curl -s -m 5 -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/images/base/files/file")"
echo "attach: $(curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$socket" \
    -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    --data-binary "{\"id\": \"more\", \"path\": \"$images_dir/base.erofs\"}" http://localhost/v1/admin/images)"
echo "state: $(stat -c '%u:%g' "$state_dir/state.json" 2>/dev/null || echo missing)"
echo "root: $(nsenter -t "$daemon" -m touch /pageshare-rehearsal-probe 2>&1 && echo writable || echo read-only)"
rm -f /pageshare-rehearsal-probe
kill -TERM "$daemon"
for _ in $(seq 100); do grep -q 'msg=stopped' "$log" && break; sleep 0.05; done
echo "log:"
cat "$log"
