#!/bin/sh
# HTTP overload benchmark (issue 15): ticket creation at the peak rate, then at 4x the database pool in
# concurrent clients offering 2x that rate, with /readyz probed meanwhile. The load tool is vegeta
# (go install github.com/tsenart/vegeta/v12@latest); everything targets loopback and stops by itself.
#
#   deploy/bench/http.sh [BINARY] [hostile]
#
# BINARY defaults to a fresh build of ./cmd/hotline; "hostile" runs two CPU burners (`yes`) beside it.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-}
mode=${2:-polite}
work=$(mktemp -d /tmp/hotline-httpbench-XXXXXX)
chmod 755 "$work"
if [ -z "$bin" ]; then
  go build -o "$work/hotline" ./cmd/hotline
  bin="$work/hotline"
fi
vegeta=$(command -v vegeta || echo "$(go env GOPATH)/bin/vegeta")
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free); pg=$(free); rds=$(free); sip=$(free)
pool=40
HOTLINE_DATA_DIR="$work/data" HOTLINE_HTTP_ADDR="127.0.0.1:$http" HOTLINE_PG_PORT=$pg HOTLINE_REDIS_PORT=$rds \
  HOTLINE_SIP_LISTEN="udp:127.0.0.1:$sip" HOTLINE_DB_MAX_CONNS=$pool \
  HOTLINE_DEMO_HOUSEHOLDS=10 HOTLINE_HTTP_MAX_WRITES=${MAX_WRITES:-0} "$bin" up >"$work/hotline.log" 2>&1 &
hpid=$!
burners=""
cleanup() {
  for b in $burners; do kill "$b" 2>/dev/null || true; done
  kill "$hpid" 2>/dev/null || true
  wait "$hpid" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
base="http://127.0.0.1:$http"
for i in $(seq 1 300); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
token=$(curl -s -X POST "$base/api/v1/tokens" -d '{"username":"agent1","password":"hotline-demo"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# Callers as a hotline has them: 20,000 different phones, so a create's repeat-caller suggestions are the few a
# real caller has, not every ticket of the run (SAME_CALLER=1: one phone for every request, the worst case).
python3 - "$base" "$token" "${SAME_CALLER:-}" >"$work/create.json" <<'PY'
import base64, json, sys
base, token, same = sys.argv[1], sys.argv[2], sys.argv[3]
for i in range(1 if same else 20000):
    body = {"source": "phone", "caller_name": "陈秀英", "caller_phone": "139%08d" % (73712345 + i * 7919 % 10000000),
            "region_code": "430902", "kind": "consultation", "category": "policy_question", "content": "雨露计划补助什么时候发放?"}
    print(json.dumps({"method": "POST", "url": base + "/api/v1/tickets",
        "body": base64.b64encode(json.dumps(body, ensure_ascii=False).encode()).decode(),
        "header": {"Authorization": ["Bearer " + token], "Content-Type": ["application/json"]}}))
PY
printf '{"method":"GET","url":"%s/readyz"}\n' "$base" >"$work/ready.json"

if [ "$mode" = hostile ]; then
  for n in 1 2; do timeout 150 yes >/dev/null & burners="$burners $!"; done
fi

# The peak is measured with 16 clients (under the default write limit, half the pool: nothing shed), after a
# warm-up of the same kind (connections, plans, caches), and again after the overload: the tables grow through
# the run and autovacuum wakes for them, so the overload is compared with the peaks on either side of it.
peak() {
  "$vegeta" attack -format=json -targets="$work/create.json" -rate=0 -max-workers=16 -duration=10s -timeout=30s >"$work/$1.bin"
  "$vegeta" report -type=json "$work/$1.bin" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(int(r["throughput"]))'
}
echo "== warm-up: 16 clients, 10 s: $(peak warm)/s"
echo "== peak: 16 clients, as fast as answered, 10 s"
p1=$(peak peak)
"$vegeta" report "$work/peak.bin"
offer=$((p1 * 2))
clients=$((pool * 4))
echo "== overload: $clients clients offering $offer/s (2 x peak $p1/s), 10 s; /readyz probed at 20/s"
"$vegeta" attack -format=json -targets="$work/ready.json" -rate=20 -duration=10s -timeout=30s >"$work/ready.bin" &
rp=$!
"$vegeta" attack -format=json -targets="$work/create.json" -rate=$offer -workers=$clients -max-workers=$clients -duration=10s -timeout=30s >"$work/over.bin"
wait $rp
"$vegeta" report "$work/over.bin"
echo "== /readyz during the overload"
"$vegeta" report "$work/ready.bin"
echo "== peak again: 16 clients, 10 s"
p2=$(peak peak2)
"$vegeta" report "$work/peak2.bin"
"$vegeta" report -type=json "$work/over.bin" | python3 -c '
import json,sys
p1, p2 = '"$p1"', '"$p2"'
peak = (p1 + p2) / 2
r=json.load(sys.stdin); codes=r["status_codes"]; dur=r["duration"]/1e9
ok=codes.get("201",0)
print("created/s %.0f under overload: %.0f%% of the peak %.0f/s (before %d/s, after %d/s); 503: %d; max latency %.3f s" % (ok/dur, 100*ok/dur/peak, peak, p1, p2, codes.get("503",0), r["latencies"]["max"]/1e9))'
