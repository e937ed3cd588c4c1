#!/usr/bin/env bash
# Prints the Secrets of the push channel's mutual TLS (a CA, the controller's server
# certificate, the proxies' client certificate) for the plain manifests in deploy/, which
# leave them to you:
#
#   ./deploy/make-certs.sh | kubectl apply -f -
#
# Usage: make-certs.sh [NAMESPACE] [NAME] [CLUSTER_DOMAIN] — defaults tollgate-system, tollgate,
# cluster.local (NAME is the chart's fullname: Secrets NAME-controller-tls and NAME-proxy-tls).
# Needs openssl (1.1.1 or later) and kubectl. The CA key is not kept: run it again, and restart
# the controller and proxies, to replace them all (certificates last DAYS, default 3650 days).
set -euo pipefail

namespace=${1:-tollgate-system}
name=${2:-tollgate}
domain=${3:-cluster.local}
days=${DAYS:-3650}
service="$name-controller"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=$name-ca" -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

sign() { # sign NAME CN EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

sign server "$service" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.$domain"
sign client tollgate-proxy "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

secret() { # secret NAME FILES-PREFIX
  kubectl create secret generic "$1" --namespace "$namespace" --type kubernetes.io/tls \
    --from-file=tls.crt="$2.crt" --from-file=tls.key="$2.key" --from-file=ca.crt=ca.crt \
    --dry-run=client -o yaml
}

secret "$name-controller-tls" server
echo ---
secret "$name-proxy-tls" client
