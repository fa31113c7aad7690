#!/usr/bin/env bash
# Installs the system packages hotline needs, only those missing, so a second run installs nothing.
#   deploy/install-deps.sh run    what `hotline up` needs: PostgreSQL server, Redis, and sox with MP3 support
#                                 (campaign prompt uploads are converted to 8 kHz mono by it)
#   deploy/install-deps.sh test   plus the SIP test peer SIPp (sip-tester), Chromium and a CJK font for the console's
#                                 browser tests, and the security scanners gosec and govulncheck (from the Go module
#                                 proxy, into GOBIN); prompts are embedded, so espeak-ng/sox are needed only to remake
#                                 them (telephony/media/prompts/make_prompts.sh)
set -euo pipefail
what=${1:-run}

if [ "$what" = test ]; then
  gobin="$(go env GOBIN)"; gobin="${gobin:-$(go env GOPATH)/bin}"
  # Pinned, so a new release cannot turn the test command red on its own.
  [ -x "$gobin/gosec" ] || go install github.com/securego/gosec/v2/cmd/gosec@v2.30.0
  [ -x "$gobin/govulncheck" ] || go install golang.org/x/vuln/cmd/govulncheck@v1.9.0
fi

need=()
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_pg || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Campaign prompt uploads (WAV or MP3) are converted to 8 kHz mono 16-bit WAV by sox; MP3 needs its format library.
command -v sox >/dev/null 2>&1 || need+=(sox)
[ -n "$(ls /usr/lib/*/sox/libsox_fmt_mp3.so 2>/dev/null)" ] || need+=(libsox-fmt-mp3)
if [ "$what" = test ]; then
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  # The console's browser tests: headless Chromium, and a Chinese font so screenshots show text.
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || fc-list 2>/dev/null | grep -qi "noto sans cjk" || need+=(fonts-wqy-microhei)
  # The multi-process topology (deploy/topology.sh, cmd/hotline/topology_test.go): Kamailio with its dispatcher,
  # HAProxy, Redis Sentinel, curl for its readiness checks.
  command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
  command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
  command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  # The test command runs under the race detector, which needs cgo, so a C compiler and libc's headers.
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  [ -e /usr/include/stdio.h ] || need+=(libc6-dev)
fi
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "missing packages: ${need[*]}; run as root: apt-get install ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
