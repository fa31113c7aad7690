#!/usr/bin/env bash
# Static security checks, run by deploy/test.sh: gosec over the whole tree, and govulncheck when its
# vulnerability database is given (GOVULNDB). Both tools come from the Go module proxy
# (deploy/install-deps.sh test installs them into GOBIN).
#
# gosec rules left out, and why (each was reviewed over the tree; new code should still follow them):
#   G104       unchecked errors: the calls it lists are Close/Rollback after a Commit, writes of an HTTP answer or a
#              SIP response to a peer that may be gone, and best-effort cleanup; errors that change behaviour are
#              checked, and `go vet` runs too.
#   G115       integer conversions: WAV header fields and PCM samples sized by our own recorder, member sequence
#              numbers bounded by validation, ports and counts bounded by configuration checks.
#   G304 G703  file paths from variables: every path comes from the operator's configuration (data directory,
#              prompts, recordings, key file) or is resolved inside it (telephony refuses "..": recordingPath);
#              none comes from a request.
#   G301 G302 G306  0755/0644 modes: prompts and recordings are read by the operator's tools (sox, backups) and by
#              the PostgreSQL user in `hotline up`; the personal-data key is written 0600.
#   G401 G501  MD5: SIP digest authentication (RFC 3261 §22, RFC 2617) is what phones and trunks speak.
#   G204       subprocesses: `hotline up` starts initdb, postgres and redis-server from the configured directory;
#              the dialer load tool starts sipp.
#   G404       math/rand: synthetic demo households and load-tool traffic only; tokens, nonces and query codes
#              use crypto/rand.
#   G103       unsafe: the SIP load tool's socket option (SO_REUSEPORT); not part of the product.
#   G706       log injection: slog's handlers quote values; the value is the name of an environment variable.
#   G122       WalkDir: `hotline up` walks its own data directory to hand it to the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(go env GOPATH)/bin"
[ -n "$(go env GOBIN)" ] && bin="$(go env GOBIN)"

"$bin/gosec" -quiet -exclude=G104,G115,G304,G703,G301,G302,G306,G401,G501,G204,G404,G103,G706,G122 -exclude-dir=.hotline ./...

# govulncheck needs its vulnerability database, which the build machines cannot reach (they reach only the
# package registries), so it runs where one is given: GOVULNDB=file:///path/to/a/copy (or the public one).
if [ -n "${GOVULNDB:-}" ]; then
  "$bin/govulncheck" ./...
else
  echo "govulncheck skipped: set GOVULNDB to its vulnerability database (not reachable from the build machines)" >&2
fi
