#!/usr/bin/env bash
# Validates the Kubernetes manifests offline: every resource against the bundled OpenAPI schemas
# of kubernetes-validate (PyPI) in strict mode, then the project's own rules (service links off,
# probes on /livez and /readyz, the query role without the writer's URL, kustomization complete).
# Installs kubernetes-validate into .venv-k8s at the repo root when it is missing. Run from
# anywhere:
#   bash deploy/k8s/check.sh
# K8S_VERSION picks the Kubernetes version to validate against (default below).
set -euo pipefail

cd "$(dirname "$0")/../.."

K8S_VERSION="${K8S_VERSION:-1.37.0}"
VENV=.venv-k8s
DIR=deploy/k8s

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    echo "kubernetes-validate not found: installing it into $VENV"
    if ! python3 -m venv "$VENV"; then
        echo "error: python3 -m venv failed (on Debian: apt-get install -y python3-venv)" >&2
        exit 1
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi

echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

# Every manifest but kustomization.yaml, which is kustomize's file, not a Kubernetes resource.
manifests=()
for f in "$DIR"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    manifests+=("$f")
done
if [ "${#manifests[@]}" -eq 0 ]; then
    echo "error: no manifests found in $DIR" >&2
    exit 1
fi

echo "== kubernetes-validate --strict --kubernetes-version $K8S_VERSION"
status=0
for f in "${manifests[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "$f" || status=1
done
if [ "$status" -ne 0 ]; then
    echo "kubernetes-validate: FAIL" >&2
    exit 1
fi

echo "== project rules"
"$VENV/bin/python" - "$DIR" "${manifests[@]}" <<'PY'
import os
import sys

import yaml

directory, files = sys.argv[1], sys.argv[2:]
errors = []
workloads = 0


def pod_spec(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return (spec.get("template") or {}).get("spec") or {}
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return (job.get("template") or {}).get("spec") or {}
    return None


def probe_path(container, probe):
    return ((container.get(probe) or {}).get("httpGet") or {}).get("path")


for path in files:
    with open(path, encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        workloads += 1
        kind = doc["kind"]
        name = f"{path}: {kind}/{doc.get('metadata', {}).get('name', '?')}"
        if spec.get("enableServiceLinks") is not False:
            errors.append(
                f"{name}: pod spec must set enableServiceLinks: false "
                "(service links inject e.g. QUERY_API_PORT=tcp://... and break the configuration)"
            )
        if kind != "Deployment":
            continue
        for c in spec.get("containers") or []:
            cname = f"{name} container {c.get('name', '?')}"
            if probe_path(c, "livenessProbe") != "/livez":
                errors.append(f"{cname}: livenessProbe must be httpGet on /livez")
            if probe_path(c, "readinessProbe") != "/readyz":
                errors.append(f"{cname}: readinessProbe must be httpGet on /readyz")
            args = c.get("args") or []
            if "query" in args:
                env = {e.get("name") for e in c.get("env") or []}
                if "DATABASE_URL" in env or c.get("envFrom"):
                    errors.append(
                        f"{cname}: the query role gets only DATABASE_READ_URL and API_KEY "
                        "(no DATABASE_URL, no envFrom)"
                    )

if workloads == 0:
    errors.append(f"no Deployment or Job found in {directory}: nothing was checked")

# kustomization.yaml lists every manifest, and only files that exist.
with open(os.path.join(directory, "kustomization.yaml"), encoding="utf-8") as fh:
    listed = set((yaml.safe_load(fh) or {}).get("resources") or [])
present = {os.path.basename(f) for f in files}
for missing in sorted(present - listed):
    errors.append(f"kustomization.yaml does not list {missing}")
for extra in sorted(listed - present):
    errors.append(f"kustomization.yaml lists {extra}, which is not in {directory}")

if errors:
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    sys.exit(1)
print(f"OK {workloads} workloads: service links off, probes on /livez and /readyz; kustomization complete")
PY
echo "k8s checks: PASS"
