#!/usr/bin/env bash
# Measures, in one run, the boot-block guest migrated by Ferry and by QEMU itself (tcp, then
# multifd), and the scanning dirty log's cost at 256 MiB and 1 GiB: scripts/qemu-compare.sh [RAM_MIB]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/jdk.sh"
"$root/ferry" --help >/dev/null   # builds the jar when the sources changed
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow \
  -cp "$root/bench/target/ferry.jar" "$root/scripts/QemuCompare.java" "$@"
