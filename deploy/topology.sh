#!/usr/bin/env bash
# A scaled-out hotline on one machine, from Debian's packages and our binary (issue 16), all on loopback:
#   PostgreSQL; Redis primary + 2 replicas + 3 Sentinels (redis-sentinel); hotline ×3 — two with web,sip,dialer
#   and one with web,workers; Kamailio (dispatcher probing the SIP nodes with OPTIONS) in front of the SIP nodes;
#   HAProxy (websockets included) in front of the web roles.
#
#   deploy/topology.sh start DIR [BASE_PORT]   start everything; DIR/topology.env lists the addresses
#   deploy/topology.sh stop DIR                stop everything (SIGTERM, then SIGKILL)
#   deploy/topology.sh kill DIR NAME           SIGKILL one process (hotline1, redis0, ...), for failure drills
#
# Ports: BASE (default 27000) PostgreSQL, +1..+3 Redis, +4..+6 Sentinels, +10..+12 hotline HTTP, +20..+22 metrics,
# +30/+31 hotline SIP (UDP and TCP), +40 Kamailio (UDP and TCP), +41 HAProxy. Everything stops by itself after
# TOPOLOGY_TTL seconds (default 900), so a crashed test leaves nothing running. HOTLINE_BIN names the binary (default:
# built into DIR). Needs root only for PostgreSQL's initdb/postgres, which then run as the postgres user.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,16p' "$0"; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

pidof_name() { awk -v n="$1" '$1 == n {print $2}' "$dir/pids" 2>/dev/null | tail -1; }

stop_all() {
  [ -f "$dir/pids" ] || return 0
  # hotline first (it drains), then the proxies, then the stores.
  for pat in hotline kamailio haproxy sentinel redis postgres watchdog; do
    awk -v p="$pat" 'index($1, p) == 1 {print $2}' "$dir/pids" | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for _ in $(seq 1 100); do
    alive=0
    while read -r _ pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$dir/pids"
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  while read -r _ pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
}

case "$cmd" in
stop) stop_all; exit 0 ;;
kill)
  pid=$(pidof_name "${3:?which process}")
  [ -n "$pid" ] || { echo "topology: no process ${3}" >&2; exit 1; }
  kill -KILL "$pid"; exit 0 ;;
start) ;;
*) echo "topology: unknown command $cmd (start, stop, kill)" >&2; exit 2 ;;
esac

base=${3:-27000}
ttl=${TOPOLOGY_TTL:-900}
pg=$base; redis0=$((base + 1)); sent0=$((base + 4))
http1=$((base + 10)); http2=$((base + 11)); http3=$((base + 12))
sip1=$((base + 30)); sip2=$((base + 31)); kam=$((base + 40)); lb=$((base + 41))
[ -f "$dir/pids" ] && stop_all
: > "$dir/pids"
started() { echo "$1 $2" >> "$dir/pids"; }
fail() { echo "topology: $*" >&2; for f in "$dir"/*.log; do echo "== $f" >&2; tail -5 "$f" >&2; done; stop_all; exit 1; }
wait_tcp() { # host port what
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
  fail "$3 did not listen on $1:$2"
}

# The watchdog: whatever happens to the caller, everything stops after the TTL.
( sleep "$ttl"; "$0" stop "$dir" ) >/dev/null 2>&1 &
started watchdog $!

# PostgreSQL, as the postgres user (it refuses root).
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# setpriv execs (no process in between), so the pid recorded below is postgres itself and stop reaches it.
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
mkdir -p "$dir/pg"
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
as_pg "$pgbin/initdb" -D "$dir/pg/data" -U hotline --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 || fail "initdb"
as_pg "$pgbin/postgres" -D "$dir/pg/data" -p "$pg" -k "$dir/pg" -c listen_addresses=127.0.0.1 -c fsync=off \
  -c max_connections=200 -c shared_buffers=64MB >"$dir/postgres.log" 2>&1 &
started postgres-launcher $!
wait_tcp 127.0.0.1 "$pg" PostgreSQL
started postgres "$(head -1 "$dir/pg/data/postmaster.pid")" # the postmaster itself, whatever ran it
for _ in $(seq 1 100); do "$pgbin/psql" -h 127.0.0.1 -p "$pg" -U hotline -d postgres -qAtc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
"$pgbin/psql" -h 127.0.0.1 -p "$pg" -U hotline -d postgres -qc 'CREATE DATABASE hotline' >/dev/null
dburl="postgres://hotline@127.0.0.1:$pg/hotline?sslmode=disable"

# Redis: a primary and two replicas, then three Sentinels watching it as "hotline" (quorum 2).
for i in 0 1 2; do
  port=$((redis0 + i))
  args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --dbfilename "redis$i.rdb")
  [ "$i" != 0 ] && args+=(--replicaof 127.0.0.1 "$redis0")
  redis-server "${args[@]}" >"$dir/redis$i.log" 2>&1 &
  started "redis$i" $!
  wait_tcp 127.0.0.1 "$port" "redis$i"
done
sentinels=""
for i in 0 1 2; do
  port=$((sent0 + i))
  cat >"$dir/sentinel$i.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
sentinel monitor hotline 127.0.0.1 $redis0 2
sentinel down-after-milliseconds hotline 1000
sentinel failover-timeout hotline 5000
sentinel parallel-syncs hotline 1
CONF
  redis-sentinel "$dir/sentinel$i.conf" >"$dir/sentinel$i.log" 2>&1 &
  started "sentinel$i" $!
  wait_tcp 127.0.0.1 "$port" "sentinel$i"
  sentinels="$sentinels${sentinels:+,}127.0.0.1:$port"
done

# hotline: the binary, the schema, a PII key.
bin=${HOTLINE_BIN:-}
if [ -z "$bin" ]; then
  bin="$dir/hotline"
  (cd "$root" && go build -o "$bin" ./cmd/hotline) || fail "go build"
fi
head -c 32 /dev/urandom | base64 >"$dir/pii.key"
chmod 600 "$dir/pii.key"
common=(HOTLINE_DATABASE_URL="$dburl" HOTLINE_REDIS_SENTINELS="$sentinels" HOTLINE_REDIS_MASTER_NAME=hotline
  HOTLINE_PII_KEY_FILE="$dir/pii.key" HOTLINE_DB_MAX_CONNS=10 HOTLINE_DIALER_CALLBACK=false HOTLINE_LOG_LEVEL=info
  HOTLINE_SIP_DRAIN_TIMEOUT=10s HOTLINE_SHUTDOWN_TIMEOUT=10s HOTLINE_REDIS_WAIT_REPLICAS=1)
env -u HOTLINE_BIN "${common[@]}" "$bin" migrate up >"$dir/migrate.log" 2>&1 || fail "hotline migrate"
node() { # n roles http sip-listen
  mkdir -p "$dir/hotline$1"
  env -u HOTLINE_BIN "${common[@]}" HOTLINE_ROLES="$2" HOTLINE_HTTP_ADDR="127.0.0.1:$3" HOTLINE_METRICS_ADDR="127.0.0.1:$((base + 19 + $1))" \
    HOTLINE_SIP_LISTEN="$4" HOTLINE_DATA_DIR="$dir/hotline$1" "$bin" serve >"$dir/hotline$1.log" 2>&1 &
  started "hotline$1" $!
}
node 1 web,sip,dialer "$http1" "udp:127.0.0.1:$sip1,tcp:127.0.0.1:$sip1"
node 2 web,sip,dialer "$http2" "udp:127.0.0.1:$sip2,tcp:127.0.0.1:$sip2"
node 3 web,workers "$http3" ""
for h in "$http1" "$http2" "$http3"; do
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$h/readyz" >/dev/null 2>&1 && continue 2
    sleep 0.1
  done
  fail "hotline on :$h not ready"
done

# Kamailio: the dispatcher spreads new calls over the SIP nodes and probes them with OPTIONS every second.
sed -e "s/^listen=udp:.*/listen=udp:127.0.0.1:$kam/" -e "s/^listen=tcp:.*/listen=tcp:127.0.0.1:$kam/" \
  -e "s|/etc/kamailio/dispatcher.list|$dir/dispatcher.list|" -e 's/"ds_ping_interval", 5/"ds_ping_interval", 1/' \
  -e 's/^children=4/children=2/' "$root/deploy/kamailio/kamailio.cfg" >"$dir/kamailio.cfg"
# Two probes missed and a node is out; one answered and it is back.
cat >>"$dir/kamailio.cfg" <<'CONF'
modparam("dispatcher", "ds_probing_threshold", 2)
modparam("dispatcher", "ds_inactive_threshold", 1)
CONF
printf '1 sip:127.0.0.1:%s;transport=udp 0 0 weight=50\n1 sip:127.0.0.1:%s;transport=udp 0 0 weight=50\n' "$sip1" "$sip2" >"$dir/dispatcher.list"
kamailio -f "$dir/kamailio.cfg" -DD -E -m 64 -M 8 -P "$dir/kamailio.pid" -Y "$dir" >"$dir/kamailio.log" 2>&1 &
started kamailio $!
wait_tcp 127.0.0.1 "$kam" Kamailio

# HAProxy: round robin over the web roles, out of rotation when /readyz says so; websockets stay open.
cat >"$dir/haproxy.cfg" <<CONF
global
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  option redispatch
  retries 2
frontend web
  bind 127.0.0.1:$lb
  # Click-to-call is placed by the process that takes the request: only SIP nodes can.
  acl click path_beg /api/v1/click-to-call
  use_backend sip_web if click
  default_backend hotline
backend hotline
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 2 rise 1
  server h1 127.0.0.1:$http1 check
  server h2 127.0.0.1:$http2 check
  server h3 127.0.0.1:$http3 check
backend sip_web
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 2 rise 1
  server h1 127.0.0.1:$http1 check
  server h2 127.0.0.1:$http2 check
CONF
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
started haproxy $!
wait_tcp 127.0.0.1 "$lb" HAProxy

cat >"$dir/topology.env" <<ENV
DATABASE_URL=$dburl
REDIS_SENTINELS=$sentinels
REDIS_PORTS=$redis0,$((redis0 + 1)),$((redis0 + 2))
HTTP=127.0.0.1:$http1,127.0.0.1:$http2,127.0.0.1:$http3
METRICS=127.0.0.1:$((base + 20)),127.0.0.1:$((base + 21)),127.0.0.1:$((base + 22))
SIP=127.0.0.1:$sip1,127.0.0.1:$sip2
KAMAILIO=127.0.0.1:$kam
HAPROXY=127.0.0.1:$lb
PII_KEY_FILE=$dir/pii.key
ENV
echo "topology up in $dir (stops by itself in ${ttl}s):"
cat "$dir/topology.env"
