#!/usr/bin/env bash
# Benchmarks of the SIP intake on loopback; stops by itself. Needs sipp (Debian sip-tester), curl, python3.
#
#   telephony/bench/bench.sh cps  "500 1000 1500" [seconds per step, default 10]
#       SIPp's built-in uac (INVITE, 200, ACK, 1 s, BYE; no RTP) at each rate against `hotline up` with no agent
#       signed in and a 1 s greeting (trunk check, CDR rows, answer, prompt = 50 RTP packets, hang-up), then the
#       same SIPp client against `sipp -sn uas` (which sends no media). Prints successful/failed calls,
#       retransmissions (and their share of the messages SIPp sent), the INVITEs hotline refused with 503 at the door
#       (hotline_sip_refused_total), hotline's CPU (% of one core) and the datagrams the kernel dropped at hotline's
#       SIP socket (its receive buffer full: each one is retransmitted by SIPp) per step. The per-source INVITE limit is lifted
#       for the run (all calls come from one address), the call limit set to 4000.
#       Each step also prints the datagrams the kernel dropped at SIPp's own SIP socket: SIPp's default buffer is
#       64 KB (about 10 ms of answers at 2,000 calls/s), and every answer dropped there comes back as a retransmission
#       that hotline did not cause. SIPP_BUFF (default 4194304, what hotline's own socket gets; empty = SIPp's default)
#       is given to SIPp as -buff_size, as a carrier's SBC on its own machine would size it.
#       BURN=N runs N CPU burners (`yes >/dev/null`) beside hotline during each step; UAS=0 skips the
#       `sipp -sn uas` comparison. PROFILE=DIR takes a CPU profile of hotline over each step into
#       DIR/cpu.RATE.pprof (`go tool pprof -top DIR/cpu.2000.pprof`).
#   telephony/bench/bench.sh media 1500 [rate 150] [hold 20s]
#       cmd/loadsip places N simultaneous calls that wait in the queue (an agent is signed in but paused), so
#       hotline plays the greeting and then hold music to every caller; loadsip measures the gaps in the RTP it
#       receives with kernel timestamps, and prints a timeline (answers, BYEs, gaps, silences of all calls) in
#       seconds since its start. TRACE=1 also takes an execution trace of hotline from TRACE_AT (default 12) s
#       after that start for TRACE_SECONDS (default 6) into TRACE_OUT (default /tmp/hotline-media.trace); read it
#       with `go tool trace -pprof=sched FILE`. BENCH_GODEBUG is given to hotline as GODEBUG (e.g. gctrace=1; the
#       GC lines go to the log kept with BENCH_LOG). BURN=N runs N CPU burners (`yes >/dev/null`) beside hotline for
#       the whole run (killed at its end).
set -euo pipefail
mode=${1:-cps}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/hotline-bench-XXXXXX)
chmod 755 "$work"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
sip=$(port); http=$(port); pg=$(port); rds=$(port); uas=$(port); met=$(port)
(cd "$root" && go build -o "$work/hotline" ./cmd/hotline && go build -o "$work/loadsip" ./cmd/loadsip)
mkdir -p "$work/prompts"
cp "$root/telephony/media/prompts/short.wav" "$work/prompts/greeting.wav"
cp "$root/telephony/media/prompts/short.wav" "$work/prompts/queue.wav"

GODEBUG="${BENCH_GODEBUG:-}" GOGC="${BENCH_GOGC:-}" GOMAXPROCS="${BENCH_GOMAXPROCS:-}" HOTLINE_METRICS_ADDR="127.0.0.1:$met" HOTLINE_METRICS_PROFILES="$([ -n "${TRACE:-}${PROFILE:-}" ] && echo true || echo false)" \
HOTLINE_PROMPTS_DIR="$work/prompts" HOTLINE_LOG_LEVEL=warn HOTLINE_QUEUE_LIMIT=10m HOTLINE_SIP_MAX_CALLS=4000 HOTLINE_SIP_RATE_PER_SOURCE=100000 \
HOTLINE_SIP_LISTEN="udp:127.0.0.1:$sip" HOTLINE_SIP_TRUNKS="name=bench,net=127.0.0.1/32,numbers=12345" \
  ${BENCH_NICE:+nice -n "$BENCH_NICE"} "$work/hotline" up --data-dir "$work/data" --http-addr "127.0.0.1:$http" --pg-port "$pg" --redis-port "$rds" >"$work/hotline.log" 2>&1 &
hl=$!
hlstart=$(date +%s.%N)
cleanup() {
  kill -TERM "$hl" 2>/dev/null || true; wait "$hl" 2>/dev/null || true
  if [ -n "${BENCH_LOG:-}" ]; then cp "$work/hotline.log" "$BENCH_LOG"; cp "$work"/sipp.*.out "$(dirname "$BENCH_LOG")/" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "http://127.0.0.1:$http/readyz" >/dev/null || { cat "$work/hotline.log"; exit 1; }
if [ -n "${BENCH_RENICE:-}" ]; then # every thread of hotline (not its PostgreSQL and Redis); new threads inherit it
  for t in /proc/"$hl"/task/*; do renice -n "$BENCH_RENICE" -p "${t##*/}" >/dev/null; done
fi
sleep 1

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks (1/100 s)
portdrops() { awk -v p=":$(printf '%04X' "$1")" '$2 ~ p"$" {print $NF+0; f=1} END {if (!f) print 0}' /proc/net/udp; } # datagrams the kernel dropped at the UDP socket on that port
sipdrops() { portdrops "$sip"; } # datagrams the kernel dropped: hotline's SIP socket buffer was full
waited() { # datagrams read from hotline's SIP socket: "all over-250ms over-500ms" (hotline_sip_udp_wait_seconds)
  curl -fs "http://127.0.0.1:$met/metrics" | awk '/^hotline_sip_udp_wait_seconds_bucket\{le="0.25"\}/ {a=$2} /^hotline_sip_udp_wait_seconds_bucket\{le="0.5"\}/ {b=$2} /^hotline_sip_udp_wait_seconds_count/ {n=$2} END {printf "%d %d %d\n", n, n-a, n-b}'
}
refused503() { curl -fs "http://127.0.0.1:$met/metrics" | awk '/^hotline_sip_refused_total\{status="503"\}/ {print $2+0; f=1} END {if (!f) print 0}'; }

sippbuff=${SIPP_BUFF-4194304}
sipp_step() { # target rate seconds → "ok failed retrans INVITE-retrans BYE-retrans"
  local target=$1 rate=$2 secs=$3
  local out="$work/sipp.$rate.${target##*:}.out" sp
  sp=$(port)
  ( while sleep 0.2; do portdrops "$sp"; done >"$out.drops" ) & local sampler=$!
  ( cd "$work" && sipp -sn uac "$target" -s 12345 -i 127.0.0.1 -p "$sp" -r "$rate" -m $((rate * secs)) -d 1000 \
      ${sippbuff:+-buff_size "$sippbuff"} -nostdin -timeout $((secs + 60))s -max_socket 60000 >"$out" 2>&1 || true )
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  local ok failed retrans
  ok=$(grep -E '^ +Successful call' "$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  failed=$(grep -E '^ +Failed call' "$out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  local inv bye
  inv=$(grep -E '^ +INVITE ----------> ' "$out" | tail -1 | awk '{print $4+0}')
  bye=$(grep -E '^ +BYE ----------> ' "$out" | tail -1 | awk '{print $4+0}')
  retrans=$(( ${inv:-0} + ${bye:-0} ))
  echo "$ok $failed $retrans ${inv:-0} ${bye:-0} $(sort -n "$out.drops" | tail -1)"
}

case "$mode" in
cps)
  rates=${2:-"500 1000 1500"}
  secs=${3:-10}
  burn=${BURN:-0}
  echo "rate/s | hotline intake: ok failed (503 at the door) retrans (% of messages; INVITE, BYE) cpu% SIP-socket-drops [datagrams read, waits in the socket] | sipp -sn uas: ok failed retrans$([ "$burn" -gt 0 ] && echo " | $burn CPU burner(s) during the hotline steps")"
  if [ "${UAS:-1}" != 0 ]; then
    sipp -sn uas -i 127.0.0.1 -p "$uas" -nostdin >/dev/null 2>&1 &
    uaspid=$!
  fi
  for r in $rates; do
    burners=()
    for _ in $(seq 1 "$burn"); do timeout $((secs + 60)) yes >/dev/null & burners+=($!); done
    c0=$(cpu "$hl"); t0=$(date +%s.%N); n0=$(refused503); d0=$(sipdrops); read -r w0 wa0 wb0 < <(waited)
    if [ -n "${PROFILE:-}" ]; then
      mkdir -p "$PROFILE"
      curl -fs -o "$PROFILE/cpu.$r.pprof" "http://127.0.0.1:$met/debug/pprof/profile?seconds=$secs" & profiler=$!
    fi
    read -r ok failed retrans rinv rbye sippdrops < <(sipp_step "127.0.0.1:$sip" "$r" "$secs")
    c1=$(cpu "$hl"); t1=$(date +%s.%N); n1=$(refused503); d1=$(sipdrops); read -r w1 wa1 wb1 < <(waited)
    for b in "${burners[@]}"; do kill "$b" 2>/dev/null || true; done
    [ -z "${profiler:-}" ] || wait "$profiler" || true
    pct=$(python3 -c "print(round(($c1-$c0)/($t1-$t0),0))")
    # SIPp sends INVITE, ACK and BYE per call (INVITE and ACK for a refused one): the messages it sent, about.
    rpct=$(python3 -c "m=3*${ok:-0}+2*${failed:-0}; print(round(100*${retrans:-0}/m,2) if m else 0)")
    uok=- ufailed=- uretrans=-
    if [ "${UAS:-1}" != 0 ]; then read -r uok ufailed uretrans _ _ < <(sipp_step "127.0.0.1:$uas" "$r" "$secs"); fi
    echo "$r | $ok $failed ($((n1 - n0))) $retrans (${rpct}%; INVITE $rinv, BYE $rbye) ${pct}% $((d1 - d0)) [$((w1 - w0)) read, $((wa1 - wa0)) waited >0.25 s, $((wb1 - wb0)) >0.5 s] drops at SIPp's SIP socket ${sippdrops:-0} | $uok $ufailed $uretrans"
    sleep 5 # let the transactions of the previous step expire (timer J/K)
  done
  [ -z "${uaspid:-}" ] || kill "$uaspid" 2>/dev/null || true
  echo "hotline log: $(grep -c 'cannot start CDR' "$work/hotline.log" || true) \"cannot start CDR\", $(grep -c 'cannot end CDR' "$work/hotline.log" || true) \"cannot end CDR\""
  ;;
media)
  calls=${2:-1500}; rate=${3:-150}; hold=${4:-20s}
  tok=$(curl -fs -X POST "http://127.0.0.1:$http/api/v1/tokens" -d '{"username":"agent1","password":"hotline-demo"}' |
        python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
  curl -fs -X PUT -H "Authorization: Bearer $tok" "http://127.0.0.1:$http/api/v1/agents/me/state" -d '{"state":"paused","reason":"bench"}' >/dev/null
  echo "hotline started $(date -u -d "@$hlstart" +%H:%M:%S.%3N) (GC lines' @ times count from then)"
  if [ -n "${TRACE:-}" ]; then
    ( sleep "${TRACE_AT:-12}"; curl -fs -o "${TRACE_OUT:-/tmp/hotline-media.trace}" \
        "http://127.0.0.1:$met/debug/pprof/trace?seconds=${TRACE_SECONDS:-6}" &&
      echo "trace of ${TRACE_AT:-12}–$(( ${TRACE_AT:-12} + ${TRACE_SECONDS:-6} )) s into ${TRACE_OUT:-/tmp/hotline-media.trace}" ) &
    tracer=$!
  fi
  burners=()
  for _ in $(seq 1 "${BURN:-0}"); do timeout 600 yes >/dev/null & burners+=($!); done
  [ "${BURN:-0}" -gt 0 ] && echo "${BURN} CPU burner(s) running beside hotline"
  c0=$(cpu "$hl"); t0=$(date +%s.%N)
  "$work/loadsip" -target "127.0.0.1:$sip" -calls "$calls" -rate "$rate" -hold "$hold" || true
  c1=$(cpu "$hl"); t1=$(date +%s.%N)
  for b in "${burners[@]}"; do kill "$b" 2>/dev/null || true; done
  [ -z "${tracer:-}" ] || wait "$tracer" || true
  echo "hotline CPU over the run: $(python3 -c "print(round(($c1-$c0)/($t1-$t0),0))")% of one core; RSS $(awk '/VmHWM/{print $2/1024 " MB peak"}' /proc/$hl/status)"
  ;;
*) echo "usage: $0 cps|media ..." >&2; exit 2 ;;
esac
