#!/usr/bin/env bash
# Real coverage-guided fuzzing (Jazzer) of one target, or of every target one after another, each
# for a bounded time, under nice -n 19; prints each target's executions, coverage and findings.
#
#   scripts/fuzz.sh [TARGET|all] [DURATION]     DURATION as Jazzer takes it: 30s, 10m, 1h (default 10m)
#   scripts/fuzz.sh --record-seeds              records the seed corpora again from real migrations and traces
#
# Targets: frames (the frame decoder and every frame's reader), destination (a real destination fed
# whole streams), decode (every page encoding's decoder), xbzrle, trace (the trace reader).
# A finding is written by Jazzer into the target's regression directory
# (MODULE/src/test/resources/PACKAGE/CLASSInputs/METHOD/crash-*), which ./check replays from then on;
# the inputs that found new coverage stay in MODULE/.cifuzz-corpus/ (not committed). Logs: runs/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/jdk.sh

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# target -> module, test class, method
declare -A MODULE=([frames]=protocol [destination]=engine [decode]=compression [xbzrle]=compression [trace]=bench)
declare -A CLASS=([frames]=dev.ferry.protocol.WireFuzzTest [destination]=dev.ferry.engine.DestinationFuzzTest
  [decode]=dev.ferry.compression.PageDecoderFuzzTest [xbzrle]=dev.ferry.compression.PageDecoderFuzzTest
  [trace]=dev.ferry.bench.trace.TraceReaderFuzzTest)
declare -A METHOD=([frames]=frames [destination]=stream [decode]=decode [xbzrle]=xbzrle [trace]=read)
ORDER=(frames destination decode xbzrle trace)

if [ "${1:-}" = "--record-seeds" ]; then
  nice -n 10 ./mvnw -B -q -ntp -pl compression,engine,bench -am test -Dtest='SeedPayloads,SeedStreams,TraceSeeds' \
    -Dsurefire.failIfNoSpecifiedTests=false -Dferry.seeds="$PWD"
  find . -path '*FuzzTestInputs*' -type f -newer scripts/fuzz.sh | sort
  exit 0
fi

target=${1:-all}
duration=${2:-10m}
case "$target" in all) targets=("${ORDER[@]}") ;; -h|--help) usage ;; *)
  [ -n "${MODULE[$target]:-}" ] || { echo "fuzz.sh: unknown target '$target' (one of: ${ORDER[*]}, all)" >&2; exit 2; }
  targets=("$target") ;;
esac

mkdir -p runs/fuzz

status=0
for t in "${targets[@]}"; do
  module=${MODULE[$t]} class=${CLASS[$t]} method=${METHOD[$t]}
  inputs="$module/src/test/resources/$(echo "${class%.*}" | tr . /)/${class##*.}Inputs/$method"
  mkdir -p "$inputs"
  log="runs/fuzz/$t.log"
  echo "== $t: $class#$method for $duration (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
  before=$(find "$inputs" -type f | sort)
  set +e
  JAZZER_FUZZ=1 JAZZER_MAX_DURATION="$duration" nice -n 19 ./mvnw -B -ntp -pl "$module" -am test \
    -Dtest="${class##*.}#$method" -Dsurefire.failIfNoSpecifiedTests=false > "$log" 2>&1
  rc=$?
  set -e
  # Jazzer writes a finding into the module's directory when it cannot place it with the inputs
  for f in "$module"/crash-* "$module"/timeout-* "$module"/oom-* "$module"/slow-unit-*; do
    [ -e "$f" ] && mv "$f" "$inputs/"
  done
  last=$(grep -aE '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 | tr '\t' ' ' || true)
  runs=$(grep -aEo '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  echo "   last:     ${last:-none}"
  echo "   finished: ${runs:-(no 'Done' line: it stopped on a finding or failed to start, see $log)}"
  echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  new=$(comm -13 <(echo "$before") <(find "$inputs" -type f | sort))
  if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    status=1
    echo "   FINDING(S), now regression inputs in $inputs:"
    grep -aE 'FuzzTestFindingException|^== Java Exception|Caused by' "$log" | head -5 | sed 's/^/     /' || true
    echo "$new" | sed 's/^/     /'
  else
    echo "   findings: none"
  fi
done
exit $status
