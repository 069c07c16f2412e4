#!/usr/bin/env bash
# Checks the deployment files: systemd-analyze verify on the unit (ExecStart pointed at the built binary),
# kubernetes-validate on the manifests, yamllint on every YAML file, the dashboard as JSON, shellcheck on
# the scripts. Usage: deploy/check.sh PAGESHARE_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: deploy/check.sh PAGESHARE_BINARY}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sed "s|/usr/local/bin/pageshare|$binary|" deploy/systemd/pageshare.service > "$work/pageshare.service"
cp deploy/systemd/pageshare.socket "$work/pageshare.socket"
systemd-analyze verify "$work/pageshare.service" "$work/pageshare.socket"
echo "systemd-analyze verify: ok"

python3 -c 'import sys; from kubernetes_validate.__main__ import main; sys.exit(main())' \
    --strict deploy/kubernetes/pageshare.yaml deploy/kubernetes/client-example.yaml
# The ServiceMonitor is a Prometheus Operator resource: its schema is not in kubernetes-validate.
echo "kubernetes-validate: ok"

yamllint --strict -c .yamllint deploy .yamllint openapi.yaml
echo "yamllint: ok"

# The example configuration and the one in the ConfigMap are read by the daemon's own parser.
"$binary" serve --config deploy/config/pageshare.yaml --print-config > /dev/null
"$binary" serve --config deploy/config/container.yaml --print-config > /dev/null
python3 -c 'import sys, yaml
for document in yaml.safe_load_all(open(sys.argv[1])):
    if document and document.get("kind") == "ConfigMap":
        open(sys.argv[2], "w").write(document["data"]["pageshare.yaml"])' \
    deploy/kubernetes/pageshare.yaml "$work/configmap.yaml"
"$binary" serve --config "$work/configmap.yaml" --print-config > /dev/null
echo "pageshare serve --print-config on the example configurations: ok"

python3 -m json.tool deploy/grafana/pageshare-dashboard.json > /dev/null
echo "dashboard JSON: ok"

shellcheck scripts/*.sh bench/*.sh deploy/check.sh .ci/run Tests/Scripts/*.sh
echo "shellcheck: ok"
