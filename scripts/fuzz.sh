#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 60s),
# one after another, and fails on the first finding. Usage:
#   scripts/fuzz.sh [FUZZTIME] [PACKAGE-DIR...]
# FUZZFLAGS adds go test flags, e.g. FUZZFLAGS=-parallel=1 on a busy machine.
set -euo pipefail
fuzztime=${1:-60s}
shift || true
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || mapfile -t dirs < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u)
for d in "${dirs[@]}"; do
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$d"/*_test.go | sed 's/^func //' | sort -u); do
		echo "== ./$d $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" ${FUZZFLAGS:-} "./$d"
	done
done
