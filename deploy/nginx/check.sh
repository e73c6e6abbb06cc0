#!/usr/bin/env bash
# Offline check of deploy/nginx/nginx.conf with Debian's nginx (`nginx -t`): in a private mount
# namespace, the compose service names resolve (a bind-mounted /etc/hosts) and throwaway
# certificates stand where the config expects them, so the real machine is left untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nginx >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nginx >/dev/null
fi
if ! command -v openssl >/dev/null; then
  apt-get install -y -qq openssl >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=agenttracer.test" \
  -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
{ cat /etc/hosts; printf '127.0.0.2 ingest_api\n127.0.0.3 query_api\n'; } >"$work/hosts"
sed "s|/etc/nginx/certs/|$work/|g" deploy/nginx/nginx.conf >"$work/nginx.conf"

unshare --mount sh -c "mount --bind '$work/hosts' /etc/hosts && nginx -t -q -c '$work/nginx.conf' -p '$work'"
echo "nginx -t: deploy/nginx/nginx.conf is valid"
