#!/usr/bin/env bash
# Makes a test certificate authority and certificates for trying Ferry's mutual TLS, in DIR:
#   ca.pem                         the CA both sides trust (--tls-ca)
#   source.pem, source-key.pem     the source's certificate, SAN DNS:ferry-source
#   dest.pem, dest-key.pem         the destination's, SANs DNS:ferry-dest, DNS:localhost, IP:127.0.0.1
#                                  (a source checks the host it connects to by default)
#   rogue.pem, rogue-key.pem       signed by the same CA, SAN DNS:ferry-rogue: a name nobody allows
#   other-ca.pem                   a second CA, and stranger.pem, stranger-key.pem that it signed
#                                  (SANs ferry-source, ferry-dest, localhost, 127.0.0.1: trusted by nobody)
# Keys are EC P-256 in PKCS#8 PEM, certificates valid 30 days. For tests and trials only: a real
# deployment's certificates come from its own CA. Needs openssl. Usage: scripts/tls-ca.sh DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: needs openssl" >&2; exit 77; }
dir="$1"
mkdir -p "$dir"
cd "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# ca NAME FILE-PREFIX
ca() {
  key "$2-key.pem"
  openssl req -x509 -new -key "$2-key.pem" -subj "/CN=$1" -days 30 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$2.pem"
}

# leaf FILE-PREFIX CN SANS CA-PREFIX
leaf() {
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$work/$1.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
    "$3" >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$4.pem" -CAkey "$4-key.pem" -CAcreateserial -CAserial "$work/$4.srl" \
    -days 30 -sha256 -extfile "$work/$1.ext" -out "$1.pem" 2>/dev/null
}

ca "Ferry test CA" ca
ca "Ferry other CA" other-ca
leaf source ferry-source "DNS:ferry-source" ca
leaf dest ferry-dest "DNS:ferry-dest,DNS:localhost,IP:127.0.0.1" ca
leaf rogue ferry-rogue "DNS:ferry-rogue" ca
leaf stranger ferry-source "DNS:ferry-source,DNS:ferry-dest,DNS:localhost,IP:127.0.0.1" other-ca
chmod 600 ./*-key.pem
echo "tls-ca: wrote $(pwd): ca.pem, source.pem/source-key.pem (ferry-source), dest.pem/dest-key.pem (ferry-dest, 127.0.0.1)," \
  "rogue.pem (ferry-rogue), other-ca.pem, stranger.pem"
