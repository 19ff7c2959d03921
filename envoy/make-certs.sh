#!/bin/sh
# Certificates for envoy/docker-compose.yaml, into envoy/tls/: a CA, the controller's certificate
# (names controller and localhost: xDS for Envoy, the API for the CLI on the host) and Envoy's client
# certificate for the controller's mutual-TLS xDS port. For trying the stack out; in production mount
# certificates from your own CA. Needs the openssl CLI. Existing files are kept (delete to renew).
set -eu
dir="$(dirname "$0")/tls"
mkdir -p "$dir"
cd "$dir"
[ -f ca.crt ] && { echo "envoy/tls/ca.crt exists: keeping the certificates there"; exit 0; }
key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $key -keyout ca.key -out ca.crt -subj "/CN=shadowmesh compose CA" -days 365
for spec in "controller controller DNS:controller,DNS:localhost,IP:127.0.0.1" "envoy orders-sidecar-1 DNS:orders-sidecar-1"; do
  set -- $spec
  printf 'subjectAltName=%s\n' "$3" > "$1.ext"
  openssl req $key -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 365 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
done
chmod 644 ./*.crt ./*.key
echo "certificates in $(pwd)"
