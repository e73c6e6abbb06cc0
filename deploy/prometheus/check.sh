#!/usr/bin/env bash
# Validates the Prometheus config and alert rules, and runs the alert rules' unit tests.
# Installs promtool (Debian's `prometheus` package) when it is missing. Run from anywhere:
#   bash deploy/prometheus/check.sh
set -euo pipefail

cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found: installing Debian's prometheus package"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=(sudo)
    fi
    # The package's postinst would start a prometheus service: keep it from doing so with a
    # policy-rc.d that denies every start, unless the machine already has one.
    POLICY=/usr/sbin/policy-rc.d
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY"
        trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus
fi

promtool --version | head -n 1

echo "== promtool check config deploy/prometheus/prometheus.yml"
promtool check config deploy/prometheus/prometheus.yml
echo "== promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml
echo "== promtool test rules deploy/prometheus/alerts_test.yml"
promtool test rules deploy/prometheus/alerts_test.yml
echo "prometheus checks: PASS"
