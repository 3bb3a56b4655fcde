package stackhost

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// Net's sockets work across the emulated link, carry their options, and
// netstat learns their owner.
func TestNetDialListenAndOwners(t *testing.T) {
	a, b := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	server := &host.Cred{UID: 1000, PID: 4242, Program: "nc"}
	ln, err := b.Listen(ctx, "tcp", "10.61.0.2:7000", &host.SocketOptions{Cred: server})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan struct{}) // the accepted socket stays open until the checks are done
	defer close(hold)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
		c.(interface{ CloseWrite() error }).CloseWrite()
		<-hold
	}()
	c, err := a.Dial(ctx, "tcp", "10.61.0.2:7000", &host.SocketOptions{
		Local:   netip.MustParseAddrPort("10.61.0.1:41000"),
		Options: []host.SockOpt{{Level: syscall.IPPROTO_IP, Name: syscall.IP_TTL, Value: 9}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().String(); got != "10.61.0.1:41000" {
		t.Errorf("local address %s, want 10.61.0.1:41000", got)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	socks, err := b.Sockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listening, accepted bool
	for _, s := range socks {
		if s.Local.Port() != 7000 {
			continue
		}
		if s.PID != 4242 || s.Program != "nc" || s.UID != 1000 {
			t.Errorf("socket %+v: owner not recorded", s)
		}
		listening = listening || s.State == "LISTEN"
		accepted = accepted || s.Remote.IsValid()
	}
	if !listening || !accepted {
		t.Errorf("listener %v, accepted connection %v in %+v", listening, accepted, socks)
	}
	// Unprivileged: no port below 1024, no raw socket.
	user := &host.SocketOptions{Cred: &host.Cred{UID: 1000}}
	if _, err := b.Listen(ctx, "tcp", ":80", user); !errors.Is(err, syscall.EACCES) {
		t.Errorf("unprivileged listen on :80: %v, want EACCES", err)
	}
	if _, err := b.ListenPacket(ctx, "ip4:icmp", "", user); !errors.Is(err, syscall.EPERM) {
		t.Errorf("unprivileged raw socket: %v, want EPERM", err)
	}
	if _, err := b.Dial(ctx, "tcp", "10.61.0.1:1", &host.SocketOptions{Device: "eth7"}); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("dial bound to eth7: %v, want ENODEV", err)
	}
}

// A ping socket echoes across the link, reports the reply's TTL with
// IP_RECVTTL, and an unreachable network comes back as the errno.
func TestNetPingSocket(t *testing.T) {
	a, _ := pair(t)
	ctx := context.Background()
	pc, err := a.ListenPacket(ctx, "ping4", "", &host.SocketOptions{
		Cred:    &host.Cred{UID: 1000},
		Options: []host.SockOpt{{Level: syscall.IPPROTO_IP, Name: syscall.IP_RECVTTL, Value: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'h', 'i'}
	if _, err := pc.SendMsg(echo, nil, netip.MustParseAddrPort("10.61.0.2:0")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	oob := make([]byte, 64)
	n, oobn, _, from, err := pc.RecvMsg(b, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	if from.Addr() != netip.MustParseAddr("10.61.0.2") || n != len(echo) || b[0] != 0 || string(b[8:n]) != "hi" {
		t.Errorf("reply %x from %v", b[:n], from)
	}
	if oobn == 0 {
		t.Error("no IP_TTL control message")
	}
	if _, err := pc.SendMsg(echo, nil, netip.MustParseAddrPort("192.0.2.1:0")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("send to an unrouted network: %v, want ENETUNREACH", err)
	}
	if v, err := pc.GetSockOptInt(syscall.IPPROTO_IP, syscall.IP_RECVTTL); err != nil || v != 1 {
		t.Errorf("IP_RECVTTL %d, %v", v, err)
	}
}
