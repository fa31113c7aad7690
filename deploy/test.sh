#!/usr/bin/env bash
# The README's test command, and what CI runs: installs what is missing (servers and SIP test peers), then vets
# and scans (gosec, govulncheck: deploy/security-scan.sh) and runs every test against real PostgreSQL, Redis and SIP peers that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
deploy/install-deps.sh test
deploy/check-large-files.sh
go vet ./...
deploy/security-scan.sh
# -p 2: two packages at a time on the 2-core machines; each starts its own servers.
# The race detector runs on every package but the two slow SIP call-flow packages: with -race, telephony/intake
# took 199 s and telephony/dialer 231 s (70 s and 52 s without) on a shared 2-core machine, which would push the
# suite past its budget; they run without it (and were clean under -race when measured, issue 15).
slow='hotline/telephony/intake$|hotline/telephony/dialer$'
go test -race -count=1 -p 2 -timeout 14m $(go list ./... | grep -Ev "$slow")
go test -count=1 -p 2 -timeout 14m $(go list ./... | grep -E "$slow")
