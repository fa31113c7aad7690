#!/usr/bin/env bash
# Calls per second through Kamailio to two hotline SIP nodes against the same rate sent to one node directly
# (the ratio is what the proxy costs), on deploy/topology.sh. Loopback only; stops by itself.
#   deploy/bench/topology.sh [RATES] [SECONDS]     e.g. deploy/bench/topology.sh "100 200 400" 10
# Each step: sipp -sn uac, calls held 1 s, no agent (callers hear the greeting in the queue). Prints ok / failed /
# retransmissions per target. Needs sipp (sip-tester), kamailio, haproxy, redis-sentinel, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=${1:-"100 200 400"}
secs=${2:-10}
work=$(mktemp -d)
chmod 755 "$work" # PostgreSQL runs as the postgres user and must reach its directory
trap 'deploy/topology.sh stop "$work/topo" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
go build -o "$work/hotline" ./cmd/hotline
# Through Kamailio every INVITE comes from one address: lift the per-source limit.
HOTLINE_BIN="$work/hotline" TOPOLOGY_TTL=$((120 + 30 * secs * 3)) HOTLINE_SIP_RATE_PER_SOURCE=100000 HOTLINE_QUEUE_LIMIT=30s \
  deploy/topology.sh start "$work/topo" "${BENCH_BASE_PORT:-28000}" >/dev/null
. <(sed 's/^/export T_/' "$work/topo/topology.env")
step() { # target rate → "ok failed retrans"
  local out="$work/sipp.$2.${1##*:}.out" p
  p=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ( cd "$work" && sipp -sn uac "$1" -s 12345 -i 127.0.0.1 -p "$p" -r "$2" -m $(($2 * secs)) -d 1000 \
      -nostdin -timeout $((secs + 60))s -max_socket 60000 >"$out" 2>&1 || true )
  local ok failed retrans
  ok=$(grep -E '^ +Successful call' "$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  failed=$(grep -E '^ +Failed call' "$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  retrans=$(grep -E '^ +(INVITE|BYE) ----------> ' "$out" | tail -2 | awk '{s+=$4} END {print s+0}')
  echo "$ok $failed $retrans"
}
node1=${T_SIP%%,*}
# Warm-up, not counted: connection pools, Kamailio's first probes, the kernel's socket buffers.
step "$T_KAMAILIO" 20 >/dev/null
step "$node1" 20 >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rate/s | via Kamailio → 2 nodes: ok failed retrans | one node direct: ok failed retrans"
for r in $rates; do
  read -r kok kfail kre < <(step "$T_KAMAILIO" "$r")
  sleep 3
  read -r dok dfail dre < <(step "$node1" "$r")
  sleep 3
  echo "$r | $kok $kfail $kre | $dok $dfail $dre"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
