package tcp

import (
	"bytes"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/stack/route"
)

// routedLab is A — R — B: each host on its own emulated switch with R,
// a forwarding stack, between them; A and B record their segments.
type routedLab struct {
	a, b           *host
	ra, rb         *recorder
	r              *stack.Stack
	rToA, rToB     *stack.NIC // R's interfaces
	aAddr4, bAddr4 netip.Addr
	aAddr6, bAddr6 netip.Addr
}

func newRoutedLab(t testing.TB, delay time.Duration) *routedLab {
	t.Helper()
	nw1, nw2 := newNet(t, 21), newNet(t, 22)
	cfg := emu.PortConfig{Out: emu.Impairments{Delay: delay}}
	l := &routedLab{
		aAddr4: netip.MustParseAddr("10.1.0.2"), bAddr4: netip.MustParseAddr("10.2.0.2"),
		aAddr6: netip.MustParseAddr("2001:db8:1::2"), bAddr6: netip.MustParseAddr("2001:db8:2::2"),
	}
	l.a, l.ra = newRecHost(t, nw1, cfg, "10.1.0.2/24", "2001:db8:1::2/64")
	l.b, l.rb = newRecHost(t, nw2, cfg, "10.2.0.2/24", "2001:db8:2::2/64")
	l.r = stack.New(stack.Options{IPv4Forwarding: true, IPv6Forwarding: true})
	t.Cleanup(func() { l.r.Close() })
	nic := func(nw *emu.Network, prefixes ...string) *stack.NIC {
		n, err := l.r.AddNIC(nw.NewPort(cfg), stack.NICOptions{NoDAD: true, NoAutoconf: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range prefixes {
			if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(p)}); err != nil {
				t.Fatal(err)
			}
		}
		n.SetUp(true)
		return n
	}
	l.rToA = nic(nw1, "10.1.0.1/24", "2001:db8:1::1/64")
	l.rToB = nic(nw2, "10.2.0.1/24", "2001:db8:2::1/64")
	for h, gws := range map[*host][2]string{l.a: {"10.1.0.1", "2001:db8:1::1"}, l.b: {"10.2.0.1", "2001:db8:2::1"}} {
		for i, gw := range gws {
			dst := []string{"0.0.0.0/0", "::/0"}[i]
			if err := h.s.Routes().Add(route.Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr(gw)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

// TestPMTUChangeMidStream moves 3 MiB each way through a router whose
// outgoing links' MTU is lowered twice mid-transfer, once the receiver
// has a third and two thirds of its stream. R answers the first
// too-big packets with Fragmentation Needed (IPv4, DF set by PMTU
// discovery) or Packet Too Big (IPv6); both senders' MSS (TCP_INFO and
// TCP_MAXSEG) follows the new path MTU, no larger segment is sent once it
// has, and both streams arrive byte for byte (RFC 1191, RFC 8201).
func TestPMTUChangeMidStream(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name, hdr, mtus := "v4", 20, []int{1500, 1400, 1000}
		if v6 {
			name, hdr, mtus = "v6", 40, []int{1500, 1400, 1280}
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newRoutedLab(t, 2*time.Millisecond)
				fam, dst, aAddr := syscall.AF_INET, l.bAddr4, l.aAddr4
				if v6 {
					fam, dst, aAddr = syscall.AF_INET6, l.bAddr6, l.aAddr6
				}
				// Small receive buffers keep the data beyond what the
				// receivers have read from crossing R before its MTU drops.
				lis := l.b.open(t, fam)
				c := l.a.open(t, fam)
				for _, ep := range []*endpoint{lis, c} {
					if err := ep.SetSockOpt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10); err != nil {
						t.Fatal(err)
					}
				}
				if err := lis.Bind(ap(netip.Addr{}, 80)); err != nil {
					t.Fatal(err)
				}
				if err := lis.Listen(4); err != nil {
					t.Fatal(err)
				}
				mustConnect(t, c, ap(dst, 80))
				s := accept(t, lis, time.Second)
				mss := func(mtu int) int { return mtu - hdr - 20 - 12 } // timestamps on
				for _, ep := range []*endpoint{c, s} {
					if got := tcpInfo(ep).SndMSS; got != uint32(mss(mtus[0])) {
						t.Fatalf("initial MSS %d, want %d", got, mss(mtus[0]))
					}
				}
				size := 3 << 20
				up, down := randomBytes(31, size), randomBytes(32, size)
				errc := make(chan error, 2)
				for _, w := range []struct {
					ep   *endpoint
					data []byte
				}{{c, up}, {s, down}} {
					go func() {
						err := writeAll(w.ep, w.data, time.Hour)
						if err == nil {
							err = w.ep.Shutdown(syscall.SHUT_WR)
						}
						errc <- err
					}()
				}
				// Each receiver lowers the MTU of R's link towards it, so
				// the sender at the other end meets the smaller MTU.
				type result struct {
					data    []byte
					changes []time.Time
					err     error
				}
				recv := func(ep *endpoint, nic *stack.NIC) result {
					var r result
					for i, mtu := range mtus[1:] {
						d, err := readN(ep, size/3, time.Hour)
						r.data = append(r.data, d...)
						if err != nil {
							r.err = fmt.Errorf("stage %d: %v", i, err)
							return r
						}
						if err := nic.SetMTU(mtu); err != nil {
							r.err = err
							return r
						}
						r.changes = append(r.changes, time.Now())
					}
					d, err := readAll(ep, time.Hour)
					r.data = append(r.data, d...)
					r.err = err
					return r
				}
				downc := make(chan result, 1)
				go func() { downc <- recv(c, l.rToA) }()
				upR := recv(s, l.rToB)
				downR := <-downc
				for _, r := range []result{upR, downR} {
					if r.err != nil {
						t.Fatalf("read: %v\nclient %s\nserver %s", r.err, dump(c), dump(s))
					}
				}
				for range 2 {
					if err := <-errc; err != nil {
						t.Fatalf("write: %v", err)
					}
				}
				if !bytes.Equal(upR.data, up) {
					t.Errorf("upstream: %d bytes, want %d, equal prefix %d", len(upR.data), len(up), commonPrefix(upR.data, up))
				}
				if !bytes.Equal(downR.data, down) {
					t.Errorf("downstream: %d bytes, want %d, equal prefix %d", len(downR.data), len(down), commonPrefix(downR.data, down))
				}
				final := mss(mtus[len(mtus)-1])
				for _, ep := range []*endpoint{c, s} {
					if got := tcpInfo(ep).SndMSS; got != uint32(final) {
						t.Errorf("final TCP_INFO MSS %d, want %d", got, final)
					}
					if v, err := ep.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_MAXSEG); err != nil || v.(int) != final {
						t.Errorf("TCP_MAXSEG %v (%v), want %d", v, err, final)
					}
				}
				if m, ok := l.a.s.PathMTU(dst); !ok || m != mtus[len(mtus)-1] {
					t.Errorf("A's path MTU to B %d (%v), want %d", m, ok, mtus[len(mtus)-1])
				}
				if m, ok := l.b.s.PathMTU(aAddr); !ok || m != mtus[len(mtus)-1] {
					t.Errorf("B's path MTU to A %d (%v), want %d", m, ok, mtus[len(mtus)-1])
				}
				// In each sender's segments: every MSS was used, and from the
				// first segment of a new size on nothing larger left.
				for _, side := range []struct {
					name    string
					rec     *recorder
					changes []time.Time
				}{{"A", l.ra, upR.changes}, {"B", l.rb, downR.changes}} {
					segs := side.rec.sent()
					for i, mtu := range mtus {
						want := mss(mtu)
						first := -1
						for j, sg := range segs {
							if sg.n == want && (i == 0 || sg.at.After(side.changes[i-1])) {
								first = j
								break
							}
						}
						if first < 0 {
							t.Errorf("%s sent no %d-byte segment for MTU %d", side.name, want, mtu)
							continue
						}
						for _, sg := range segs[first:] {
							if sg.n > want {
								t.Errorf("%s sent %d bytes (seq %d) at %v after using MSS %d", side.name, sg.n, sg.seq, sg.at, want)
								break
							}
						}
					}
				}
				st := l.r.Stats()
				toobig := st.ICMP.OutDestUnreachs.Load()
				if v6 {
					toobig = st.ICMP6.OutPktTooBigs.Load()
				}
				if toobig == 0 {
					t.Error("R sent no Fragmentation Needed / Packet Too Big")
				}
				t.Logf("%d ICMP too-big from R, %d+%d retransmitted", toobig, tcpInfo(c).TotalRetrans, tcpInfo(s).TotalRetrans)
				c.Close()
				s.Close()
			})
		})
	}
}

func tcpInfo(ep *endpoint) TCPInfo {
	v, _ := ep.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
	return v.(TCPInfo)
}
