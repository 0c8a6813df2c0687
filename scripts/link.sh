#!/usr/bin/env bash
# Runs one two-process migration over a (optionally shaped) veth link between two network
# namespaces, then copies the same bytes raw over the same link, and compares the two times.
# Loopback on two shared cores makes the CPU the bottleneck; a tbf-shaped veth makes the link it.
#
# usage: scripts/link.sh [options] -- SOURCE_ARGS...
#   --rate R          shape both directions with tbf at R (tc syntax: 400mbit, 1gbit); default: unshaped
#   --burst B         tbf burst (default 256kb)
#   --latency L       tbf latency, the longest a packet may queue (default 50ms)
#   --raw-same        raw copy of exactly the bytes the migration sent (source JSON bytesSent; the default)
#   --raw-bytes N     raw copy of N bytes instead (suffixes k, m, g = KiB, MiB, GiB)
#   --no-raw          skip the raw copy
#   --dest-arg ARG    one more argument for `ferry dest` (repeat as needed, e.g. --dest-arg --memory --dest-arg 1g)
#   --out DIR         keep dest.json, source.json, the outputs and summary there (default: a temp dir, removed)
#   --summary FILE    also write the summary as JSON to FILE
#   --timeout S       bound for each of the migration and the raw copy (default 600)
#   SOURCE_ARGS       passed to `ferry source` (the script adds --connect and --json; do not pass them)
#
# environment:
#   FERRY_CMD         the launcher, split on spaces (default: the repo's ./ferry, built first if stale);
#                     tests pass "java -cp ... dev.ferry.bench.cli.Ferry" since no jar exists during mvn verify
#
# Prints the source's report, then a last line
#   link: rate 400mbit, migration 1234.5 ms for N bytes (X MB/s), raw copy 1200.0 ms (Y MB/s), ratio 1.03
# (MB = 10^6 bytes; ratio = migration time / raw copy time, per byte when --raw-bytes differs from the
# migration's; both are timed from connect until every byte arrived).
#
# exit status: 0 when the migration completed verified on both sides and the raw copy moved every byte;
# the source's status when it failed; 1 when the destination or the raw copy failed; 2 usage error;
# 77 skipped: not root, or network namespaces / veth / tbf are not available here.
#
# Needs root, iproute2 (ip, tc) and perl (the raw copy uses IO::Socket::INET and Time::HiRes, the JSON
# is read with JSON::PP); both are in the project's machine image and installed with apt-get when missing.
# The addresses 10.213.0.1/30 (source) and 10.213.0.2/30 (destination) exist only inside the two
# namespaces this script makes; the veth is created inside them, never in the host's namespace.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
SKIP=77
SRC_IP=10.213.0.1
DST_IP=10.213.0.2

say() { echo "link: $*" >&2; }
die() { say "$*"; exit 1; }
skip() { say "skipped: $*"; exit "$SKIP"; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

rate="" burst=256kb latency=50ms raw=same raw_bytes="" out="" summary="" timeout_s=600
dest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate="${2:?--rate needs a value}"; shift 2 ;;
    --burst) burst="${2:?--burst needs a value}"; shift 2 ;;
    --latency) latency="${2:?--latency needs a value}"; shift 2 ;;
    --raw-same) raw=same; shift ;;
    --raw-bytes) raw=bytes; raw_bytes="${2:?--raw-bytes needs a value}"; shift 2 ;;
    --no-raw) raw=none; shift ;;
    --dest-arg) dest_args+=("${2:?--dest-arg needs a value}"); shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --summary) summary="${2:?--summary needs a file}"; shift 2 ;;
    --timeout) timeout_s="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) say "unknown option $1 (source arguments go after --)"; usage ;;
  esac
done
[ "$rate" = none ] && rate=""
[ $# -gt 0 ] || { say "no source arguments after --"; usage; }
for a in "$@"; do
  case "$a" in --connect|--json) say "do not pass $a: the script sets it (use --out DIR for the JSON)"; exit 2 ;; esac
done
case "$timeout_s" in ''|*[!0-9]*) say "--timeout takes whole seconds"; exit 2 ;; esac
if [ "$raw" = bytes ]; then
  case "$raw_bytes" in
    *[kK]) raw_bytes=$(( ${raw_bytes%?} << 10 )) ;;
    *[mM]) raw_bytes=$(( ${raw_bytes%?} << 20 )) ;;
    *[gG]) raw_bytes=$(( ${raw_bytes%?} << 30 )) ;;
    *[!0-9]*|'') say "--raw-bytes takes a byte count (k, m, g suffixes allowed)"; exit 2 ;;
  esac
fi

# --- what the script needs; anything missing on a machine that cannot provide it means "skipped"
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces (run as root)"
if ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
  say "ip/tc missing: installing iproute2"
  { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq iproute2; } >&2 \
    || skip "iproute2 is missing and apt-get could not install it"
fi
has_perl() { command -v perl >/dev/null && perl -MIO::Socket::INET -MTime::HiRes -MJSON::PP -e1 2>/dev/null; }
if ! has_perl; then
  say "perl (with IO::Socket::INET, Time::HiRes, JSON::PP) missing: installing perl"
  { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq perl; } >&2 || true
  has_perl || skip "perl with IO::Socket::INET, Time::HiRes and JSON::PP is needed for the raw copy and the JSON"
fi

if [ -n "${FERRY_CMD:-}" ]; then
  read -r -a ferry <<< "$FERRY_CMD"
else
  # build now, outside the namespaces, so the bounded wait for "listening on" never covers a build
  "$root/ferry" --help >/dev/null || die "building ferry failed"
  ferry=("$root/ferry")
fi

if [ -n "$out" ]; then mkdir -p "$out"; out="$(cd "$out" && pwd)"; keep_out=1; else out="$(mktemp -d)"; keep_out=0; fi
rm -f "$out"/{dest,source,raw-recv,raw-send}.{out,json} "$out/summary.json"

src_ns="ferry-src-$$"
dst_ns="ferry-dst-$$"
pids=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$src_ns" 2>/dev/null || true
  ip netns del "$dst_ns" 2>/dev/null || true
  [ "$keep_out" = 1 ] || rm -rf "$out"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the link: two namespaces, a veth made inside them, lo up in both, tbf on each egress
ip netns add "$src_ns" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
ip netns add "$dst_ns" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
# (background jobs call ip netns exec directly, not these: a function would run in a subshell, whose
# pid a kill would reach instead of timeout's, which passes the signal on to the JVM)
in_src() { ip netns exec "$src_ns" "$@"; }
in_dst() { ip netns exec "$dst_ns" "$@"; }
in_src ip link add vsrc type veth peer name vdst netns "$dst_ns" 2>/dev/null || skip "cannot create a veth pair here"
in_src ip addr add "$SRC_IP/30" dev vsrc
in_dst ip addr add "$DST_IP/30" dev vdst
in_src ip link set lo up
in_dst ip link set lo up
in_src ip link set vsrc up
in_dst ip link set vdst up
if [ -n "$rate" ]; then
  # both directions, like a symmetric link: pages go one way, acknowledgements and replies the other
  in_src tc qdisc add dev vsrc root tbf rate "$rate" burst "$burst" latency "$latency" \
    || skip "cannot shape the veth with tbf (rate $rate burst $burst latency $latency)"
  in_dst tc qdisc add dev vdst root tbf rate "$rate" burst "$burst" latency "$latency" \
    || skip "cannot shape the veth with tbf (rate $rate burst $burst latency $latency)"
  say "veth $SRC_IP -> $DST_IP shaped: tbf rate $rate burst $burst latency $latency"
else
  say "veth $SRC_IP -> $DST_IP unshaped"
fi

# Waits (bounded) until FILE has a line "listening on HOST:PORT" and sets listen_port to PORT; fails
# when PID exits first or nothing comes within SECONDS. (Not in a $(...) subshell, so that a TERM
# runs the cleanup at once rather than after the subshell.)
await_listening() {
  local file=$1 pid=$2 seconds=$3 what=$4 i line
  for ((i = 0; i < seconds * 10; i++)); do
    line=$(grep -m1 '^listening on ' "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then listen_port="${line##*:}"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { say "$what exited before listening; its output:"; cat "$file" >&2; return 1; }
    sleep 0.1
  done
  say "$what printed no 'listening on' line within $seconds s; its output:"; cat "$file" >&2; return 1
}

# Waits (bounded) for PID to exit and sets exit_rc to its status; kills it after SECONDS.
# (Not in a $(...) subshell: only this shell can wait for its own children.)
await_exit() {
  local pid=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then say "pid $pid still running after $seconds s: killing it"; kill "$pid" 2>/dev/null || true; fi
  exit_rc=0
  wait "$pid" || exit_rc=$?
}

json_field() { # FILE FIELD: a top-level field of a JSON report, empty when absent
  perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or exit; my $j = eval { decode_json(<$f>) } or exit;
    my $v = $j->{$ARGV[1]}; print defined $v ? (JSON::PP::is_bool($v) ? ($v ? "true" : "false") : $v) : ""' "$1" "$2"
}

# --- the migration
# --insecure: the veth pair exists only inside the two namespaces this script made, so plaintext is meant
ip netns exec "$dst_ns" timeout -k 10 "$timeout_s" "${ferry[@]}" dest --listen "$DST_IP:0" --insecure --accept-timeout 120000 \
  --json "$out/dest.json" "${dest_args[@]}" >"$out/dest.out" 2>&1 &
dest_pid=$!
pids+=("$dest_pid")
await_listening "$out/dest.out" "$dest_pid" 60 "ferry dest" || exit 1
port=$listen_port

# in the background and waited for: bash runs a trap only once a foreground child has ended, and a
# TERM (a test's timeout) must tear the namespaces down at once
ip netns exec "$src_ns" timeout -k 10 "$timeout_s" "${ferry[@]}" source --connect "$DST_IP:$port" --json "$out/source.json" "$@" \
  >"$out/source.out" 2>&1 &
source_pid=$!
pids+=("$source_pid")
source_rc=0
wait "$source_pid" || source_rc=$?
cat "$out/source.out"
# the destination ends right after the source's last frame; 60 s is far more than it needs
await_exit "$dest_pid" 60
# what the shaper did to the migration's packets (sent, dropped, overlimits): drops explain a slow round
[ -n "$rate" ] && in_src tc -s qdisc show dev vsrc >"$out/qdisc.txt" 2>&1 || true
dest_rc=$exit_rc
[ "$dest_rc" = 0 ] || { say "ferry dest exited $dest_rc; its output:"; cat "$out/dest.out" >&2; }
[ "$source_rc" = 0 ] || say "ferry source exited $source_rc"

mig_ms=$(json_field "$out/source.json" totalTimeMs)
mig_bytes=$(json_field "$out/source.json" bytesSent)
dest_outcome=$(json_field "$out/dest.json" outcome)
dest_verified=$(json_field "$out/dest.json" verified)

# --- the raw copy over the same link: the same bytes, one plain TCP stream, timed by the sender
# from before connect until the receiver's answer that every byte arrived
raw_ms="" raw_rc=0
case "$raw" in
  same) raw_n="$mig_bytes" ;;
  bytes) raw_n="$raw_bytes" ;;
  *) raw_n="" ;;
esac
copy='use strict; use IO::Socket::INET; use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
my ($mode, $host, $port, $n) = @ARGV; $| = 1; my $chunk = 1 << 20;
if ($mode eq "recv") {
  my $l = IO::Socket::INET->new(LocalAddr => $host, LocalPort => 0, Listen => 1, ReuseAddr => 1)
    or die "raw copy: cannot listen on $host: $!\n";
  print "listening on $host:", $l->sockport, "\n";
  my $c = $l->accept or die "raw copy: accept: $!\n";
  my ($got, $buf) = (0, "");
  while (1) { my $r = sysread($c, $buf, $chunk); die "raw copy: read: $!\n" unless defined $r; last if !$r; $got += $r; }
  syswrite($c, "$got\n"); close $c; print "received $got bytes\n";
} else {
  my $zeros = "\0" x $chunk;
  my $t0 = clock_gettime(CLOCK_MONOTONIC);
  my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port) or die "raw copy: connect: $!\n";
  for (my $left = $n; $left > 0; ) {
    my $w = syswrite($s, $zeros, $left < $chunk ? $left : $chunk); die "raw copy: write: $!\n" unless defined $w; $left -= $w;
  }
  shutdown($s, 1);
  my $ack = <$s>; my $t1 = clock_gettime(CLOCK_MONOTONIC);
  chomp($ack //= "nothing");
  die "raw copy: the receiver got $ack of $n bytes\n" unless $ack eq $n;
  printf "raw %d bytes %.3f ms\n", $n, ($t1 - $t0) * 1e3;
}'
if [ "$raw" = none ]; then
  :
elif [ "$source_rc" != 0 ]; then
  say "no raw copy: the migration failed"
elif [ -z "$raw_n" ] || [ "$raw_n" -le 0 ]; then
  say "no raw copy: no byte count (the source wrote no bytesSent)"; raw_rc=1
else
  ip netns exec "$dst_ns" timeout -k 10 "$timeout_s" perl -e "$copy" recv "$DST_IP" >"$out/raw-recv.out" 2>&1 &
  recv_pid=$!
  pids+=("$recv_pid")
  if await_listening "$out/raw-recv.out" "$recv_pid" 30 "raw copy receiver"; then
    raw_port=$listen_port
    ip netns exec "$src_ns" timeout -k 10 "$timeout_s" perl -e "$copy" send "$DST_IP" "$raw_port" "$raw_n" >"$out/raw-send.out" 2>&1 &
    send_pid=$!
    pids+=("$send_pid")
    wait "$send_pid" || raw_rc=$?
    await_exit "$recv_pid" 30
    if [ "$raw_rc" = 0 ] && [ "$exit_rc" = 0 ]; then
      raw_ms=$(sed -n 's/^raw [0-9]* bytes \([0-9.]*\) ms$/\1/p' "$out/raw-send.out")
    else
      raw_rc=1; say "raw copy failed:"; cat "$out/raw-send.out" "$out/raw-recv.out" >&2
    fi
  else
    raw_rc=1
  fi
fi

# --- the summary
line=$(awk -v rate="${rate:-unshaped}" -v mms="$mig_ms" -v mb="$mig_bytes" -v rms="$raw_ms" -v rb="${raw_n:-}" 'BEGIN {
  s = "link: rate " rate
  if (mms != "" && mb != "" && mms > 0) s = s sprintf(", migration %.1f ms for %d bytes (%.1f MB/s)", mms, mb, mb / 1e3 / mms)
  else s = s ", migration: no report"
  if (rms != "" && rms > 0) {
    s = s sprintf(", raw copy %.1f ms", rms)
    if (rb != mb) s = s sprintf(" for %d bytes", rb)
    s = s sprintf(" (%.1f MB/s)", rb / 1e3 / rms)
    if (mms != "" && mms > 0 && mb > 0) s = s sprintf(", ratio %.2f", (mms / mb) / (rms / rb))
  } else s = s ", raw copy: none"
  print s }')
echo "$line"
if [ -n "$summary" ] || [ "$keep_out" = 1 ]; then
  json=$(perl -MJSON::PP -e 'my %h = @ARGV; for (keys %h) { $h{$_} = undef if $h{$_} eq "";
      $h{$_} += 0 if defined $h{$_} && $h{$_} =~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ && $_ ne "rate" }
    $h{destVerified} = $h{destVerified} && $h{destVerified} eq "true" ? JSON::PP::true : JSON::PP::false;
    print JSON::PP->new->canonical->encode(\%h), "\n"' \
    rate "${rate:-unshaped}" burst "${rate:+$burst}" latency "${rate:+$latency}" \
    migrationMs "$mig_ms" migrationBytes "$mig_bytes" rawMs "$raw_ms" rawBytes "${raw_ms:+$raw_n}" \
    ratio "$(awk -v a="$mig_ms" -v ab="$mig_bytes" -v b="$raw_ms" -v bb="${raw_n:-}" \
      'BEGIN { if (a != "" && ab > 0 && b != "" && b > 0) printf "%.4f", (a / ab) / (b / bb) }')" \
    sourceExit "$source_rc" destExit "$dest_rc" destOutcome "$dest_outcome" destVerified "$dest_verified")
  if [ "$keep_out" = 1 ]; then echo "$json" >"$out/summary.json"; fi
  if [ -n "$summary" ]; then echo "$json" >"$summary"; fi
fi

[ "$source_rc" = 0 ] || exit "$source_rc"
[ "$dest_rc" = 0 ] || exit 1
[ "$raw_rc" = 0 ] || exit 1
exit 0
