package netstat

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stackhost"
)

// startStack runs a private stack (lo + eth0 on an emulated network named
// after the test) with 10.62.0.1/24 on eth0.
func startStack(t *testing.T) *stackhost.Host {
	t.Helper()
	h, err := stackhost.Start("emu:netstat-" + t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.AddAddress(context.Background(), "eth0", netip.MustParsePrefix("10.62.0.1/24"), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// noClose keeps the stack alive across runs: the applet closes the Host
// it opened, and the test owns this one.
type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

func rows(out string, sub ...string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		ok := l != ""
		for _, s := range sub {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			got = append(got, l)
		}
	}
	return got
}

// Sockets opened through the socket layer show up in the tables, with
// their states, in both directions of a connection over lo.
func TestStackSockets(t *testing.T) {
	h := startStack(t)
	ctx := context.Background()
	d := &gonet.Dialer{Layer: h.Inet().Layer, Timeout: 5 * time.Second}
	ln, err := d.Listen(ctx, "tcp4", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := d.ListenPacket(ctx, "udp4", "0.0.0.0:5353")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	out, errs, rc := runNS(t, ctx, noClose{h}, "-tuln")
	if rc != 0 || errs != "" {
		t.Fatalf("-tuln: rc %d %q", rc, errs)
	}
	want := []string{
		"Active Internet connections (only servers)",
		"Proto Recv-Q Send-Q Local Address           Foreign Address         State      ",
		"tcp        0      0 0.0.0.0:8080            0.0.0.0:*               LISTEN     ",
		"udp        0      0 0.0.0.0:5353            0.0.0.0:*                          ",
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("-tuln:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	// A "tcp" wildcard listener is dual-stack, as with Go's net on Linux:
	// a tcp6 row on :::8081 ([::] with names).
	ln6, err := d.Listen(ctx, "tcp", ":8081")
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ = runNS(t, ctx, noClose{h}, "-tln")
	ln6.Close()
	if r := rows(out, "tcp6       0      0 :::8081                 :::*                    LISTEN     "); len(r) != 1 {
		t.Errorf("-tln dual-stack:\n%s", out)
	}
	// Not listed without -l/-a: nothing is connected yet.
	out, _, _ = runNS(t, ctx, noClose{h}, "-tun")
	if len(rows(out, "0.0.0.0:")) != 0 {
		t.Errorf("-tun lists servers:\n%s", out)
	}

	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
		accepted <- err
	}()
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	client := c.LocalAddr().String()
	// Both ends of the connection, ESTABLISHED: the client's row and the
	// accepted one (local 127.0.0.1:8080).
	var est []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out, _, _ = runNS(t, ctx, noClose{h}, "-tn")
		est = rows(out, "ESTABLISHED")
		if len(est) == 2 {
			break
		}
	}
	wantEst := map[string]bool{
		fmt.Sprintf("tcp        0      0 %-23s %-23s ESTABLISHED", client, "127.0.0.1:8080"): true,
		fmt.Sprintf("tcp        0      0 %-23s %-23s ESTABLISHED", "127.0.0.1:8080", client): true,
	}
	if len(est) != 2 || !wantEst[est[0]] || !wantEst[est[1]] || est[0] == est[1] {
		t.Errorf("-tn: want both ends of %s <-> 127.0.0.1:8080:\n%s", client, out)
	}
	if strings.Contains(out, "LISTEN") {
		t.Errorf("-tn lists the listener:\n%s", out)
	}
	out, _, _ = runNS(t, ctx, noClose{h}, "-tan")
	if len(rows(out, "LISTEN")) != 1 || len(rows(out, "ESTABLISHED")) != 2 {
		t.Errorf("-tan:\n%s", out)
	}
	// -p: the stack does not know processes, so "-".
	out, _, _ = runNS(t, ctx, noClose{h}, "-tlnp")
	if r := rows(out, "0.0.0.0:8080"); len(r) != 1 || !strings.HasSuffix(r[0], "LISTEN      -                   ") {
		t.Errorf("-tlnp: %q", r)
	}

	// -s: the connection counted one active and one passive open.
	out, _, _ = runNS(t, ctx, noClose{h}, "-st")
	for _, w := range []string{"Tcp:\n", "    1 active connection openings\n", "    1 passive connection openings\n", "    2 connections established\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("-st lacks %q:\n%s", w, out)
		}
	}
	out, _, _ = runNS(t, ctx, noClose{h}, "-s")
	if !strings.HasPrefix(out, "Ip:\n") || !strings.Contains(out, "Tcp:\n") || !strings.Contains(out, "Udp:\n") || strings.Contains(out, "Udp6:") {
		t.Errorf("-s:\n%s", out)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

// -i lists lo and eth0 with the stack's counters: traffic over lo moves
// lo's RX-OK and TX-OK.
func TestStackInterfaces(t *testing.T) {
	h := startStack(t)
	ctx := context.Background()
	d := &gonet.Dialer{Layer: h.Inet().Layer, Timeout: 5 * time.Second}
	pc, err := d.ListenPacket(ctx, "udp", "127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := d.DialContext(ctx, "udp", "127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// lo delivers on a goroutine of its own: wait (bounded) until the
	// three datagrams are counted as received too.
	var lo host.Interface
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		its, err := h.Interfaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range its {
			if it.Name == "lo" {
				lo = it
			}
		}
		if lo.Stats.RxPackets >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if lo.Stats.TxPackets < 3 || lo.Stats.RxPackets < 3 {
		t.Fatalf("lo sent %d packets, received %d, want 3 each", lo.Stats.TxPackets, lo.Stats.RxPackets)
	}
	out, _, rc := runNS(t, ctx, noClose{h}, "-i")
	if rc != 0 || !strings.HasPrefix(out, "Kernel Interface table\n"+IfaceHeader+"\n") {
		t.Fatalf("-i: rc %d\n%s", rc, out)
	}
	loRow := rows(out, "lo ")
	if len(loRow) != 1 || !strings.HasSuffix(loRow[0], " LRU") {
		t.Fatalf("-i lo: %q\n%s", loRow, out)
	}
	f := strings.Fields(loRow[0])
	var rx, tx uint64
	fmt.Sscan(f[2], &rx)
	fmt.Sscan(f[6], &tx)
	if f[1] != fmt.Sprint(lo.MTU) || rx < 3 || tx < 3 {
		t.Errorf("-i lo: mtu %s rx %d tx %d (host mtu %d)", f[1], rx, tx, lo.MTU)
	}
	eth := rows(out, "eth0 ")
	if len(eth) != 1 || !strings.HasPrefix(eth[0], "eth0             1500 ") || !strings.HasSuffix(eth[0], " BMRU") {
		t.Errorf("-i eth0: %q\n%s", eth, out)
	}
	// The UDP socket connected to lo shows as ESTABLISHED without -l.
	out, _, _ = runNS(t, ctx, noClose{h}, "-un")
	if r := rows(out, "127.0.0.1:9000", "ESTABLISHED"); len(r) != 1 {
		t.Errorf("-un:\n%s", out)
	}
	// -rn shows the eth0 network route.
	out, _, _ = runNS(t, ctx, noClose{h}, "-rn")
	if r := rows(out, "10.62.0.0       0.0.0.0         255.255.255.0   U ", "eth0"); len(r) != 1 {
		t.Errorf("-rn:\n%s", out)
	}
}
