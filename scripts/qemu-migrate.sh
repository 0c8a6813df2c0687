#!/usr/bin/env bash
# Migrates a running QEMU guest to a second QEMU with Ferry, on this machine: Ferry carries the
# RAM, QEMU its devices. The guest is the project's boot block (qemu/src/main/resources/dev/ferry/
# qemu/bootblock.asm), under TCG; it writes a 'B' to serial per pass over its memory, so a guest
# that still runs after the migration shows as a growing serial file on the destination.
#
#   scripts/qemu-migrate.sh [RAM_MIB] [ferry source options...]     e.g. scripts/qemu-migrate.sh 256 --channels 2
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ram_mib="${1:-256}"
shift || true

need=()
command -v nasm >/dev/null || need+=(nasm)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "qemu-migrate: needs ${need[*]} (Debian: sudo apt-get install nasm qemu-system-x86)" >&2
    exit 2
  fi
fi

work="$(mktemp -d)"
src_ram="/dev/shm/ferry-src-$$"
dst_ram="/dev/shm/ferry-dst-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$src_ram" "$dst_ram"
}
trap cleanup EXIT

nasm -f bin -o "$work/bootblock.img" "$root/qemu/src/main/resources/dev/ferry/qemu/bootblock.asm"
truncate -s 1M "$work/bootblock.img"   # SeaBIOS boots no smaller disk
cp "$work/bootblock.img" "$work/dst.img"

qemu() { # NAME RAMFILE [extra...]
  local name="$1" ramfile="$2"; shift 2
  qemu-system-x86_64 -accel tcg -machine q35,memory-backend=ram -m "${ram_mib}M" \
    -object "memory-backend-file,id=ram,size=${ram_mib}M,mem-path=$ramfile,share=on" \
    -display none -nodefaults -serial "file:$work/$name.serial" \
    -drive "file=$work/$name.img,format=raw,if=ide" -qmp "unix:$work/$name.qmp,server=on,wait=off" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
}
mv "$work/bootblock.img" "$work/src.img"
qemu src "$src_ram"
qemu dst "$dst_ram" -incoming defer

# every wait is bounded: up to 30 s in steps of 0.1 s
await() { # DESCRIPTION COMMAND...
  local what="$1"; shift
  for _ in $(seq 300); do "$@" && return 0; sleep 0.1; done
  echo "qemu-migrate: gave up waiting for $what" >&2; exit 1
}
serial_at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
await "the QMP sockets" test -S "$work/src.qmp" -a -S "$work/dst.qmp"
await "the guest to run" serial_at_least "$work/src.serial" 20
echo "qemu-migrate: source guest runs ($(stat -c %s "$work/src.serial") serial characters); migrating ${ram_mib} MiB"

"$root/ferry" dest --qemu-qmp "$work/dst.qmp" --qemu-ram "$dst_ram" --listen 127.0.0.1:0 >"$work/dest.out" 2>&1 &
pids+=($!)
await "ferry dest to listen" grep -q "^listening on" "$work/dest.out"
address="$(sed -n 's/^listening on //p' "$work/dest.out")"

status=0
# the test guest rewrites every page on every pass, so pre-copy never converges: force the hand-over
# unless the caller chose a policy
policy=(--convergence force)
for arg in "$@"; do [ "$arg" = "--convergence" ] && policy=(); done
"$root/ferry" source --qemu-qmp "$work/src.qmp" --qemu-ram "$src_ram" --connect "$address" "${policy[@]}" "$@" || status=$?
wait "${pids[-1]}" || status=$?
sed 's/^/dest: /' "$work/dest.out"
if [ "$status" != 0 ]; then
  echo "qemu-migrate: migration failed; the source guest runs on ($(stat -c %s "$work/src.serial") serial characters)" >&2
  exit 1
fi
after="$(stat -c %s "$work/dst.serial")"
await "the guest to run on the destination" serial_at_least "$work/dst.serial" $((after + 20))
echo "qemu-migrate: the guest runs on the destination QEMU ($(stat -c %s "$work/dst.serial") serial characters there)"
