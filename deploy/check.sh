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
systemd-analyze verify "$work/pageshare.service"
echo "systemd-analyze verify: ok"

python3 -c 'import sys; from kubernetes_validate.__main__ import main; sys.exit(main())' \
    --strict deploy/kubernetes/pageshare.yaml
# The ServiceMonitor is a Prometheus Operator resource: its schema is not in kubernetes-validate.
echo "kubernetes-validate: ok"

yamllint --strict -c .yamllint deploy .yamllint openapi.yaml
echo "yamllint: ok"

python3 -m json.tool deploy/grafana/pageshare-dashboard.json > /dev/null
echo "dashboard JSON: ok"

shellcheck scripts/*.sh bench/*.sh deploy/check.sh .ci/run
echo "shellcheck: ok"
