#!/bin/sh
# Install or upgrade kubevirt-usb on OpenShift, as a cluster admin, in one command:
#
#   deploy/openshift/install.sh
#
# It applies this directory with what differs per cluster filled in:
# - the cluster's apps domain (settings.env): the web UI's Route host, the OAuth client's
#   redirect URI and the console link;
# - a random OAuth client secret and cookie secret for oauth-proxy (the Secret
#   kubevirt-usb-web-oauth), made on the first install and kept on every later run.
# Running it again is safe: it changes only what changed.
#
# Environment: OC (the client, default `oc`), APPS_DOMAIN (default: the cluster's
# ingresses.config.openshift.io/cluster .spec.domain).
set -eu

oc=${OC:-oc}
namespace=kubevirt-usb
deploy=$(cd "$(dirname "$0")/.." && pwd)

domain=${APPS_DOMAIN:-$("$oc" get ingresses.config.openshift.io cluster -o jsonpath='{.spec.domain}')}
if [ -z "$domain" ]; then
  echo "install.sh: cannot tell the cluster's apps domain; set APPS_DOMAIN" >&2
  exit 1
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp -R "$deploy/base" "$deploy/openshift" "$work/"
printf 'appsDomain=%s\n' "$domain" > "$work/openshift/settings.env"

"$oc" apply -k "$work/openshift"

if ! "$oc" get secret kubevirt-usb-web-oauth -n "$namespace" >/dev/null 2>&1; then
  head -c 32 /dev/urandom | base64 | tr -d '\n/+=' > "$work/client-secret"
  head -c 24 /dev/urandom | base64 | tr -d '\n' > "$work/cookie-secret"
  "$oc" create secret generic kubevirt-usb-web-oauth -n "$namespace" \
    --from-file=client-secret="$work/client-secret" \
    --from-file=cookie-secret="$work/cookie-secret"
fi
secret=$("$oc" get secret kubevirt-usb-web-oauth -n "$namespace" \
  -o jsonpath='{.data.client-secret}' | base64 -d)
printf '{"secret":"%s"}' "$secret" > "$work/oauthclient-patch.json"
"$oc" patch oauthclient kubevirt-usb-web --type=merge --patch-file="$work/oauthclient-patch.json"

echo "kubevirt-usb is installed: https://kubevirt-usb.$domain"
