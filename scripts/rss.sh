#!/usr/bin/env bash
# Peak resident memory (VmHWM from /proc/PID/status) of a `ferry dest` process, on 127.0.0.1:
#   idle      listening, nothing connected
#   pending   N connections (default 1000) opened by another process that never send a byte,
#             held until the destination closes them (the handshake deadline), then 1 more
#   claim     a HELLO claiming SIZE (default 1t, the default max-memory) with no --memory: the
#             destination sizes its guest from the claim and answers WELCOME
# Each case is a fresh `ferry dest`; prints one line per case. Extra arguments go to `ferry dest`.
#   scripts/rss.sh [--connections N] [--claim SIZE] [-- DEST_ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
connections=1000
claim=1t
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections="$2"; shift 2 ;;
    --claim) claim="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "rss.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

hwm() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Starts `ferry dest`; sets pid and port once it says where it listens (bounded wait).
start_dest() {
  "$root/ferry" dest --listen 127.0.0.1:0 --accept-timeout 120000 "$@" >"$work/dest.out" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/dest.out")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "rss.sh: ferry dest did not start:" >&2; cat "$work/dest.out" >&2; exit 1
}

stop_dest() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

start_dest "$@"
sleep 2
printf 'idle      VmHWM %8s MiB  VmRSS %8s MiB\n' "$(hwm "$pid")" "$(rss "$pid")"
stop_dest

start_dest "$@"
python3 - "$port" "$connections" >"$work/pending.out" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, refused = [], 0
for _ in range(n):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        refused += 1
# how many the destination closed at once (past the cap), and when the rest were closed
time.sleep(1)
closed_at_once = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed_at_once += 1
    except BlockingIOError:
        pass
    except OSError:
        closed_at_once += 1
began = time.time()
open_ones = [s for s in socks]
deadline = began + 60
while time.time() < deadline:
    still = 0
    for s in open_ones:
        try:
            if s.recv(1) != b"":
                still += 1
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    if still == 0:
        break
    time.sleep(0.2)
print(f"{len(socks)} opened, {refused} refused at connect, {closed_at_once} closed at once, "
      f"all closed {time.time() - began + 1:.1f} s after opening")
for s in socks:
    s.close()
PY
printf 'pending   VmHWM %8s MiB  VmRSS %8s MiB  (%s)\n' "$(hwm "$pid")" "$(rss "$pid")" "$(cat "$work/pending.out")"
stop_dest

start_dest "$@"
bytes=$(python3 -c "import sys; s=sys.argv[1].lower(); m={'k':1<<10,'m':1<<20,'g':1<<30,'t':1<<40}; print(int(s[:-1])*m[s[-1]] if s[-1] in m else int(s))" "$claim")
python3 - "$port" "$bytes" "$pid" >"$work/claim.out" <<'PY'
import socket, struct, sys, time
port, size, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
body = struct.pack(">QHIQIBH", 0x46455252594D4947, 3, 4096, size, 1, 0, 1) + bytes(16)  # version 3, no migration id
s.sendall(struct.pack(">IB", len(body) + 1, 0x01) + body)
s.settimeout(60)
def frame():
    head = b""
    while len(head) < 4:
        more = s.recv(4 - len(head))
        if not more:
            return None
        head += more
    length = int.from_bytes(head, "big")
    body = b""
    while len(body) < length:
        more = s.recv(length - len(body))
        if not more:
            return None
        body += more
    return body
# the destination's heartbeats may come first: the claim's digest takes a while to set up
body = frame()
while body == b"\x30":
    body = frame()
answer = "closed" if body is None else {0x02: "WELCOME", 0x7F: "ERROR"}.get(body[0], hex(body[0]))
# hold the session open for a moment, as a source about to join its channels would
time.sleep(2)
print(f"claim of {size} bytes answered {answer}")
s.close()
PY
printf 'claim     VmHWM %8s MiB  VmRSS %8s MiB  (%s)\n' "$(hwm "$pid")" "$(rss "$pid")" "$(cat "$work/claim.out")"
stop_dest
