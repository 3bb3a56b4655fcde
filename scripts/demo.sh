#!/usr/bin/env bash
# make run: shows stackbox working on any machine, without root. It starts
# netd on the built-in simulated network (no --link), runs a few tools
# through it as a user would, and stops netd again (by its PID).
set -u
bin=${1:-bin/stackbox}
dir=$(mktemp -d /tmp/stackbox-demo.XXXXXX)
export STACKBOX_SOCKET=$dir/netd.sock
"$bin" --help
echo
echo "== stackbox netd   (no --link: the built-in simulated network)"
"$bin" netd >"$dir/netd.log" 2>&1 &
netd=$!
trap 'kill "$netd" 2>/dev/null; wait "$netd" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do [ -S "$STACKBOX_SOCKET" ] && break; sleep 0.1; done
cat "$dir/netd.log"
run() {
	echo
	echo "\$ $*"
	timeout 20 "$bin" "$@"
}
run ifconfig eth0
run route -n
run ping -c 3 -i 0.2 www.sim
run ping -c 1 -t 2 www.sim
run host web.sim
run traceroute www.sim
run wget -O - http://www.sim/
printf 'GET /hello HTTP/1.0\r\nHost: www.sim\r\n\r\n' >"$dir/req"
run nc -N www.sim 80 <"$dir/req"
run netstat -s -t
exit 0
