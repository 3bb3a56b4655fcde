//go:build linux

package tcp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stackbox/stackbox/internal/netlab"
	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/wire"
)

// ECN against the Linux kernel in the TAP lab (interop_test.go's
// newTCPLab): negotiation both ways, read from both ends' TCP_INFO (and
// `ss -tni` in the namespace when it prints option flags), and CE marks
// in each direction answered by the other side.

func ssHas(line, word string) bool {
	return strings.Contains(" "+line+" ", " "+word+" ")
}

// checkKernelECN checks ECN from the kernel's side: its TCP_INFO's
// TCPI_OPT_ECN and TCPI_OPT_ECN_SEEN (our ECT(0) data arrived),
// and `ss -tni`'s "ecn" and "ecnseen" when this iproute2 prints option
// flags at all (the lab's 6.1 prints none of ts, sack, ecn: see
// checkOptions).
func checkKernelECN(t *testing.T, k *tcpLab, kc *net.TCPConn, want, seen bool) {
	t.Helper()
	line := k.ss(t, kc)
	if ssHas(line, "ts") || ssHas(line, "sack") || ssHas(line, "ecn") {
		if ssHas(line, "ecn") != want || ssHas(line, "ecnseen") != seen {
			t.Errorf("ss line (want ECN %v): %s", want, line)
		}
	} else {
		t.Logf("this ss prints no option flags; ECN from the kernel's TCP_INFO only: %s", line)
	}
	ki := kernelTCPInfo(t, kc)
	if got := ki.Options&TCPIOptECN != 0; got != want {
		t.Errorf("kernel tcpi_options %#x: ECN %v, want %v", ki.Options, got, want)
	}
	if got := ki.Options&TCPIOptECNSeen != 0; got != seen {
		t.Errorf("kernel tcpi_options %#x: ECN_SEEN %v, want %v", ki.Options, got, seen)
	}
}

// TestKernelECN: with our Protocol.ECN 1 and the namespace's
// net.ipv4.tcp_ecn at its default 2, our client's connection to the
// kernel server is ECN-capable; with tcp_ecn=1 in the namespace and ours
// at the default 2, so is the kernel client's to our server; with both
// at 2 neither asks; with ours at 0 a kernel client's request is
// refused, and with the kernel's at 0 ours is. The kernel's TCP_INFO (and ss, if it prints flags) shows ECN
// exactly when agreed and, after 256 KiB each way, ECN_SEEN (it received
// our ECT(0) data); ours shows TCPI_OPT_ECN and ECN_SEEN likewise.
func TestKernelECN(t *testing.T) {
	k := newTCPLab(t)
	port := uint16(5100)
	for _, f := range families {
		for _, tc := range []struct {
			name     string
			us, kern int
			dialUs   bool
			want     bool
		}{
			{"us->kernel", ECNOn, 2, false, true},
			{"kernel->us", ECNAccept, 1, true, true},
			{"kernel->us/neither-asks", ECNAccept, 2, true, false},
			{"kernel->us/we-refuse", ECNOff, 1, true, false},
			{"us->kernel/kernel-refuses", ECNOn, 0, false, false},
		} {
			port++
			t.Run(fmt.Sprintf("%s/%s", f.name, tc.name), func(t *testing.T) {
				k.tcp.ECN = tc.us
				k.l.Sysctl(t, "net.ipv4.tcp_ecn", fmt.Sprint(tc.kern)) // IPv6 too
				var c bulkConn
				if tc.dialUs {
					c = k.dialUs(t, f, port)
				} else {
					c = k.dialKernel(t, f, port)
				}
				// Data each way at once (neither side's buffers need hold
				// all of it), the connection left open for ss.
				up, down := randomBytes(1, 256<<10), randomBytes(2, 256<<10)
				errc := make(chan error, 3)
				go func() {
					_, err := c.kc.Write(down)
					errc <- err
				}()
				go func() {
					got := make([]byte, len(up))
					_, err := io.ReadFull(c.kc, got)
					if err == nil && !bytes.Equal(got, up) {
						err = fmt.Errorf("the kernel received other bytes")
					}
					errc <- err
				}()
				go func() { errc <- writeAll(c.us, up, 10*time.Second) }()
				if got, err := readN(c.us, len(down), 10*time.Second); err != nil || !bytes.Equal(got, down) {
					t.Fatalf("%d of %d bytes, %v", len(got), len(down), err)
				}
				for range 3 {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(50 * time.Millisecond) // the last ACKs
				checkKernelECN(t, k, c.kc, tc.want, tc.want)
				oi := tcpInfoOf(t, c.us)
				if got := oi.Options&TCPIOptECN != 0; got != tc.want {
					t.Errorf("our tcpi_options %#x: ECN %v, want %v", oi.Options, got, tc.want)
				}
				if got := oi.Options&TCPIOptECNSeen != 0; got != tc.want {
					t.Errorf("our tcpi_options %#x: ECN_SEEN %v, want %v", oi.Options, got, tc.want)
				}
			})
		}
	}
	k.tcp.ECN = DefaultECN
}

// ceLink wraps our stack's TAP endpoint and marks every out-th ECT IPv4
// or IPv6 frame we send, and every in-th one we receive, CE, as a
// congested router between us and the kernel would. (The lab's kernel
// has no sch_netem for its "ecn" option.) A received frame may be a TCP
// aggregate (link.CapRXCoalesce): its segments all arrive CE.
type ceLink struct {
	link.Endpoint
	out, in             atomic.Int64 // mark every n-th; 0: none
	outSeen, inSeen     atomic.Int64
	outMarked, inMarked atomic.Int64
}

// maybeMark marks f CE if it is the every-th ECT frame counted in seen.
func maybeMark(f []byte, every int64, seen, marked *atomic.Int64) {
	if every <= 0 || len(f) < 14+40 {
		return
	}
	if et := uint16(f[12])<<8 | uint16(f[13]); et != 0x0800 && et != 0x86dd {
		return
	}
	ip := f[14:]
	if e := ipECN(ip); e != wire.ECNECT0 && e != wire.ECNECT1 {
		return
	}
	if seen.Add(1)%every == 0 {
		setCE(ip)
		marked.Add(1)
	}
}

func (l *ceLink) WritePackets(frames [][]byte) (int, error) {
	for _, f := range frames {
		maybeMark(f, l.out.Load(), &l.outSeen, &l.outMarked)
	}
	return l.Endpoint.WritePackets(frames)
}

func (l *ceLink) Attach(d link.Dispatcher) {
	if d == nil {
		l.Endpoint.Attach(nil)
		return
	}
	l.Endpoint.Attach(link.DispatcherFunc(func(f []byte) {
		maybeMark(f, l.in.Load(), &l.inSeen, &l.inMarked)
		d.DeliverFrame(f)
	}))
}

// newCELab is newTCPLab with a ceLink between our stack and the TAP.
func newCELab(t *testing.T) (*tcpLab, *ceLink) {
	t.Helper()
	l := netlab.New(t)
	tp := l.AddTAP(t, netlab.TAPConfig{Addrs: []netip.Prefix{netip.PrefixFrom(kern4, 24)}})
	l.MustIP(t, "-6", "addr", "add", "fd81::1/64", "dev", tp.Dev, "nodad")
	s := stack.New(stack.Options{})
	t.Cleanup(func() { s.Close() })
	ce := &ceLink{Endpoint: tp.Endpoint}
	n, err := s.AddNIC(ce, stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.81.0.2/24", "fd81::2/64"} {
		if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(a)}); err != nil {
			t.Fatal(err)
		}
	}
	n.SetUp(true)
	return &tcpLab{l: l, dev: tp.Dev, tap: tp, s: s, tcp: New(s)}, ce
}

// TestKernelECNCongestion: CE marks each way on an ECN connection with
// the kernel, 8 MiB each way, SHA-256 compared, no loss.
//   - us->kernel: our link marks every 50th ECT frame we send CE; the
//     kernel echoes ECE and we reduce (Stats.ECNReductions, a finite
//     ssthresh in our TCP_INFO) without retransmitting.
//   - kernel->us: our link marks every 50th ECT frame it receives CE; we
//     echo ECE until the kernel's CWR, and the kernel counts the
//     deliveries ECE reported (tcpi_delivered_ce) and reduced its window
//     (a finite tcpi_snd_ssthresh).
func TestKernelECNCongestion(t *testing.T) {
	k, ce := newCELab(t)
	k.tcp.ECN = ECNOn
	const n = 8 << 20
	t.Run("us->kernel", func(t *testing.T) {
		ce.out.Store(50)
		defer ce.out.Store(0)
		c := k.dialKernel(t, families[0], 5201)
		red := k.tcp.Stats().ECNReductions.Load()
		k.bulk(t, n, []bulkConn{c})
		red = k.tcp.Stats().ECNReductions.Load() - red
		oi := tcpInfoOf(t, c.us)
		marked := ce.outMarked.Load()
		t.Logf("%d frames marked CE, %d reductions, cwnd %d ssthresh %d, %d retransmitted", marked, red, oi.SndCwnd, oi.SndSsthresh, oi.TotalRetrans)
		if oi.Options&TCPIOptECN == 0 {
			t.Fatalf("ECN not negotiated: tcpi_options %#x", oi.Options)
		}
		if marked == 0 || red == 0 || red > uint64(marked) || oi.SndSsthresh >= 1<<20 {
			t.Errorf("%d marks, %d reductions, ssthresh %d", marked, red, oi.SndSsthresh)
		}
		if oi.TotalRetrans != 0 {
			t.Errorf("we retransmitted %d segments with no loss", oi.TotalRetrans)
		}
	})
	t.Run("kernel->us", func(t *testing.T) {
		k.l.Sysctl(t, "net.ipv4.tcp_ecn", "1")
		ce.in.Store(50)
		defer ce.in.Store(0)
		c := k.dialUs(t, families[1], 5202)
		// Read the kernel's view while the connection is open: bulk
		// closes it.
		data := randomBytes(9, n)
		errc := make(chan error, 1)
		go func() {
			_, err := c.kc.Write(data)
			errc <- err
		}()
		got, err := readN(c.us, n, 30*time.Second)
		if werr := <-errc; err == nil {
			err = werr
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d of %d bytes, %v", len(got), n, err)
		}
		time.Sleep(100 * time.Millisecond) // the last ACKs
		ki := kernelTCPInfo(t, c.kc)
		oi := tcpInfoOf(t, c.us)
		line := k.ss(t, c.kc)
		t.Logf("%d frames marked CE; kernel: delivered_ce %d, cwnd %d, ssthresh %d, retransmitted %d; ss: %s",
			ce.inMarked.Load(), ki.Delivered_ce, ki.Snd_cwnd, ki.Snd_ssthresh, ki.Total_retrans, line)
		checkKernelECN(t, k, c.kc, true, false) // we sent no data: nothing ECT reached it
		if oi.Options&(TCPIOptECN|TCPIOptECNSeen) != TCPIOptECN|TCPIOptECNSeen {
			t.Errorf("our tcpi_options %#x: no ECN", oi.Options)
		}
		if ce.inMarked.Load() == 0 || ki.Delivered_ce == 0 || ki.Snd_ssthresh >= 1<<20 {
			t.Errorf("the kernel saw no ECE from us: delivered_ce %d, ssthresh %d", ki.Delivered_ce, ki.Snd_ssthresh)
		}
	})
}
