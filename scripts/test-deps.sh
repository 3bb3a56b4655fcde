#!/usr/bin/env bash
# Installs the Debian packages the tests use (real peers and decoders) when
# they are missing and we can: as root with apt-get. Without them the tests
# that need them skip with a message saying what is missing, so this script
# warns but never fails the build.
set -u

# What the tests use: a file or command that shows it is there → the
# Debian packages that provide it. tshark decodes what we build; iproute2
# builds the kernel lab; QEMU with the iPXE ROMs is the guest on the other
# end of the qemu link endpoints. ping, arping, traceroute and radvd are
# the kernel-side tools of the network layer's interop tests; dnsmasq
# (the binary only, no system service) is pkg/resolver's real nameserver.
# netcat-openbsd and socat are the kernel-side peers of cmd/nc's tests.
# bind9-host and bind9-dnsutils are the real host and nslookup that
# cmd/host's and cmd/nslookup's interop tests compare with.
# busybox-static (not busybox, which lacks the applet) has the telnetd
# that cmd/telnet's interop test talks to. GNU wget is the oracle cmd/wget's
# interop test compares its log with.
need=(
	"tshark:tshark"
	"ip:iproute2"
	"qemu-system-x86_64:qemu-system-x86"
	"/usr/lib/ipxe/qemu/efi-e1000.rom:ipxe-qemu"
	"ping:iputils-ping"
	"arping:arping"
	"traceroute:traceroute"
	"radvd:radvd"
	"dnsmasq:dnsmasq-base"
	"nc.openbsd:netcat-openbsd"
	"socat:socat"
	"/usr/share/doc/busybox-static/copyright:busybox-static"
	"wget:wget"
	"host:bind9-host"
	"nslookup:bind9-dnsutils"
)

missing=()
for entry in "${need[@]}"; do
	what=${entry%%:*} pkgs=${entry#*:}
	case $what in
	/*) [ -e "$what" ] && continue ;;
	*) command -v "$what" >/dev/null 2>&1 && continue ;;
	esac
	missing+=($pkgs)
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing ${missing[*]} (not root or no apt-get): the tests that need them will skip" >&2
	exit 0
fi

echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent on a fresh machine; update once, bounded.
if ! timeout 300 apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/stackbox-test-deps.log 2>&1; then
	timeout 300 apt-get update >>/tmp/stackbox-test-deps.log 2>&1
	if ! timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/stackbox-test-deps.log 2>&1; then
		echo "test-deps: could not install ${missing[*]} (see /tmp/stackbox-test-deps.log): the tests that need them will skip" >&2
	fi
fi
exit 0
