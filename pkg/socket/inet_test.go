package socket

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

func TestInetServesEveryProtocol(t *testing.T) {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	in := NewInet(s)
	user := transport.Cred{UID: 1000, GID: 1000}
	root := transport.Cred{Privileged: true}
	for _, c := range []struct {
		family, typ, proto int
		cred               transport.Cred
		want               error
		netstat            string
	}{
		{syscall.AF_INET, syscall.SOCK_DGRAM, 0, user, nil, "udp"},
		{syscall.AF_INET6, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP, user, nil, "udp6"},
		{syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMP, user, nil, "icmp"},
		{syscall.AF_INET6, syscall.SOCK_DGRAM, syscall.IPPROTO_ICMPV6, user, nil, "icmp6"},
		{syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP, root, nil, "raw"},
		{syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_ICMPV6, root, nil, "raw6"},
		{syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP, user, syscall.EPERM, ""},
	} {
		so, err := in.Socket(c.family, c.typ, c.proto, c.cred)
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("socket(%d, %d, %d) = %v, want %v", c.family, c.typ, c.proto, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("socket(%d, %d, %d): %v", c.family, c.typ, c.proto, err)
		}
		if got := so.Info().Proto; got != c.netstat {
			t.Errorf("socket(%d, %d, %d) lists as %q, want %q", c.family, c.typ, c.proto, got, c.netstat)
		}
		defer so.Close()
	}
}

func TestInetUDPAvailableIsNextDatagram(t *testing.T) {
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	in := NewInet(s)
	srv, err := in.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0, transport.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Bind(&syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	cli, err := in.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0, transport.Cred{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	to, _ := srv.GetSockName()
	for _, m := range []string{"four", "sixsix"} {
		if _, err := cli.SendTo([]byte(m), 0, to); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, testWait)
	buf := make([]byte, 16)
	// The loopback delivers asynchronously: wait for the first datagram.
	if _, _, err := srv.RecvFrom(buf, syscall.MSG_PEEK); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Available(); err != nil || n != 4 {
		t.Errorf("FIONREAD with two datagrams queued = %d, %v; want the first's 4", n, err)
	}
	found := false
	for _, e := range in.Endpoints() {
		if e.Proto == "udp" && e.Local == netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(to.(*syscall.SockaddrInet4).Port)) {
			found = true
		}
	}
	if !found {
		t.Errorf("the bound socket is not in Endpoints: %+v", in.Endpoints())
	}
}
