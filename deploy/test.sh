#!/usr/bin/env bash
# The README's test command, and what CI runs: installs what is missing (servers and SIP test peers), then vets
# and scans (gosec, govulncheck: deploy/security-scan.sh) and runs every test against real PostgreSQL, Redis and SIP peers that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
deploy/install-deps.sh test
go vet ./...
deploy/security-scan.sh
# -p 2: two packages at a time on the 2-core machines; each starts its own servers.
go test -count=1 -p 2 -timeout 14m ./...
