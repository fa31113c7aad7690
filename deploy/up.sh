#!/usr/bin/env bash
# The README's run command: installs what is missing (PostgreSQL server, Redis), builds hotline and runs
# `hotline up` on the embedded default. Extra arguments go to `hotline up` (e.g. --http-addr 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
deploy/install-deps.sh run
go build -o bin/hotline ./cmd/hotline
exec bin/hotline up "$@"
