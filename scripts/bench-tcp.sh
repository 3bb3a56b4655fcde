#!/bin/sh
# TCP benchmarks with a summary table: each of our figures beside the
# Linux kernel's for the same measurement over veth, and the ratio.
#   scripts/bench-tcp.sh [extra go test flags, e.g. -count 3]
# The kernel columns need root (network namespaces, TAP, veth); without
# it the TAP rows are skipped and the kernel columns left empty.
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchmem "$@" ./pkg/tcp | tee "$out"
echo
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	ours = ""; unit = ""; kern = ""; ratio = ""
	for (i = 3; i < NF; i++) {
		u = $(i + 1); v = $i
		if (u == "MB/s" || u == "rr/s" || u == "conn/s" || u == "B/conn") { ours = v; unit = u }
		else if (u ~ /^kernel-/ && u != "kernel-tcpsock-B/conn") kern = v
		else if (u == "ratio") ratio = v
	}
	if (ours == "") next
	if (!hdr) { printf "%-36s %12s %12s %8s  %s\n", "benchmark", "ours", "kernel", "ratio", "unit"; hdr = 1 }
	printf "%-36s %12s %12s %8s  %s\n", name, ours, (kern == "" ? "-" : kern), (ratio == "" ? "-" : ratio), unit
}' "$out"
