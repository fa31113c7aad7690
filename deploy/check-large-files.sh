#!/usr/bin/env bash
# Refuses large files in git (issue 16: a 24 MB compiled binary had been committed). Run by deploy/test.sh; also
# usable as a pre-commit hook: ln -s ../../deploy/check-large-files.sh .git/hooks/pre-commit
# Every tracked or staged file over 1 MiB fails, unless allowed below (vendored browser libraries, which
# web/vendor.sh pins by sha256). Compiled executables (ELF) fail at any size.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
allowed=(
  web/console/vendor/element-plus.full.min.js
  web/console/vendor/echarts.min.js
)
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ]; then
    echo "check-large-files: $f is a compiled executable; build outputs do not belong in git (see .gitignore)" >&2
    bad=1
    continue
  fi
  size=$(stat -c %s "$f")
  [ "$size" -le "$limit" ] && continue
  ok=0
  for a in "${allowed[@]}"; do [ "$f" = "$a" ] && ok=1; done
  if [ "$ok" = 0 ]; then
    echo "check-large-files: $f is $size bytes (limit $limit); add it to the allow-list in $0 only if it must be in git" >&2
    bad=1
  fi
done < <(git ls-files -z --cached)
exit $bad
