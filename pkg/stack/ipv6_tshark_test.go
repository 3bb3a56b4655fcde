package stack

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/link/sniffer"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestIPv6TsharkDecodes captures what two stacks exchange — echo, a
// fragmented echo both ways, a Router Alert hop-by-hop header from the
// unspecified address, and ICMPv6 errors — and has tshark (an independent
// decoder, checksums verified, fragments reassembled) confirm that no
// frame is malformed or has an error-level expert item.
func TestIPv6TsharkDecodes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	path := filepath.Join(t.TempDir(), "ipv6.pcap")
	nw := newTestNet(t, 65)
	port := nw.NewPort(emu.PortConfig{})
	sn, err := sniffer.NewFile(port, path)
	if err != nil {
		t.Fatal(err)
	}
	no := NICOptions{NoDAD: true, NoAutoconf: true}
	as := New(Options{Seed: 65})
	t.Cleanup(func() { as.Close() })
	an, err := as.AddNIC(sn, no)
	if err != nil {
		t.Fatal(err)
	}
	an.AddAddress(Address{Prefix: netip.MustParsePrefix("2001:db8::1/64")})
	an.SetUp(true)
	a := &testHost{s: as, nic: an}
	b := newTestHostNIC(t, nw, Options{Seed: 66}, no, emu.PortConfig{}, "2001:db8::2/64")
	link6(t, a, b, "2001:db8::2")
	link6(t, b, a, "2001:db8::1")

	replies := icmp6Catcher(t, a.s, wire.ICMPv6EchoReply)
	errs := icmp6Catcher(t, a.s, wire.ICMPv6ParamProblem, wire.ICMPv6DstUnreachable)
	for i, size := range []int{56, 4000} {
		if err := sendEcho6(t, a.s, 0, mustAddr("2001:db8::2"), 1, uint16(i), size, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		wait6(t, replies, "echo reply")
	}
	group := mustAddr("ff02::1")
	r := Route{NIC: a.nic, Dst: group, NextHop: group, MTU: 1500, Kind: RouteMulticast}
	if err := a.s.WritePacket(&r, NewPacketFrom(bytes.Repeat([]byte{0}, 24)), WriteOptions{Proto: wire.IPProtoNoNext, RouterAlert6: true}); err != nil {
		t.Fatal(err)
	}
	// Errors from b: unknown next header, and port unreachable.
	b.s.RegisterTransport(wire.IPProtoUDP, noEndpoint{})
	ru, _ := a.s.FindRoute(0, mustAddr("2001:db8::1"), mustAddr("2001:db8::2"))
	a.s.WritePacket(&ru, NewPacketFrom(testData), WriteOptions{Proto: 254})
	udp := []byte{0x30, 0x39, 0x9c, 0x41, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}
	ph := wire.PseudoHeaderChecksum(wire.IPProtoUDP, ru.Src, ru.Dst, uint32(len(udp)))
	cs := ^wire.Checksum(udp, ph)
	udp[6], udp[7] = byte(cs>>8), byte(cs)
	a.s.WritePacket(&ru, NewPacketFrom(udp), WriteOptions{Proto: wire.IPProtoUDP})
	wait6(t, errs, "parameter problem")
	wait6(t, errs, "port unreachable")
	a.s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, "-n", "-r", path, "-o", "ip.check_checksum:TRUE",
		"-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=|",
		"-e", "frame.number", "-e", "frame.protocols", "-e", "_ws.malformed",
		"-e", "_ws.expert.severity", "-e", "_ws.expert.message", "-e", "icmpv6.type", "-e", "icmpv6.code")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "WIRESHARK_CONFIG_DIR="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 7 {
			t.Fatalf("tshark line %q", line)
		}
		if f[2] != "" {
			t.Errorf("frame %s malformed: %s", f[0], line)
		}
		// Severity 0x00800000 is an error (checksum, bad field).
		for _, sev := range strings.Split(f[3], ",") {
			if sev == "8388608" || sev == "0x00800000" {
				t.Errorf("frame %s: error-level expert item: %s", f[0], line)
			}
		}
		if f[5] != "" {
			types = append(types, f[5]+"/"+f[6])
		}
		t.Logf("%s", line)
	}
	got := strings.Join(types, " ")
	for _, want := range []string{"128/0", "129/0", "4/1", "1/4"} {
		if !strings.Contains(got, want) {
			t.Errorf("tshark saw ICMPv6 %s; no %s", got, want)
		}
	}
}
