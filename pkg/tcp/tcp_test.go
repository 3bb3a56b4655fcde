package tcp

import (
	"bytes"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stackbox/stackbox/pkg/transport"
	"github.com/stackbox/stackbox/pkg/wire"
)

// TestHandshakeAndEcho: a connection over IPv4 and IPv6 negotiates MSS,
// window scale, SACK and timestamps, carries data both ways, and closes
// gracefully (both ends see EOF, the active closer lingers in TIME_WAIT).
func TestHandshakeAndEcho(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := pair(t)
				c, s := connPair(t, a, b, v6)
				for _, ep := range []*endpoint{c, s} {
					v, err := ep.GetSockOpt(syscall.IPPROTO_TCP, syscall.TCP_INFO)
					if err != nil {
						t.Fatal(err)
					}
					in := v.(TCPInfo)
					if in.State != StateEstablished || in.Options != TCPIOptTimestamps|TCPIOptSACK|TCPIOptWscale {
						t.Errorf("tcp_info %+v", in)
					}
					wantMSS := uint32(1500 - 40 - 12)
					if v6 {
						wantMSS = 1500 - 60 - 12
					}
					if in.SndMSS != wantMSS {
						t.Errorf("snd mss %d, want %d", in.SndMSS, wantMSS)
					}
				}
				if err := writeAll(c, []byte("hello"), time.Second); err != nil {
					t.Fatal(err)
				}
				got, err := readN(s, 5, time.Second)
				if err != nil || string(got) != "hello" {
					t.Fatalf("server read %q, %v", got, err)
				}
				if err := writeAll(s, []byte("world!"), time.Second); err != nil {
					t.Fatal(err)
				}
				got, err = readN(c, 6, time.Second)
				if err != nil || string(got) != "world!" {
					t.Fatalf("client read %q, %v", got, err)
				}
				if err := c.Shutdown(syscall.SHUT_WR); err != nil {
					t.Fatal(err)
				}
				if rest, err := readAll(s, time.Second); err != nil || len(rest) != 0 {
					t.Fatalf("server EOF: %q, %v", rest, err)
				}
				s.Close()
				if rest, err := readAll(c, time.Second); err != nil || len(rest) != 0 {
					t.Fatalf("client EOF: %q, %v", rest, err)
				}
				synctest.Wait()
				if st := c.Info().State; st != "TIME_WAIT" {
					t.Errorf("active closer in %s, want TIME_WAIT", st)
				}
				if st := s.Info().State; st != "CLOSE" {
					t.Errorf("passive closer in %s, want CLOSE", st)
				}
			})
		})
	}
}

// TestTransfer moves a few MB each way, byte for byte.
func TestTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pair(t)
		c, s := connPair(t, a, b, false)
		data := randomBytes(1, 4<<20)
		errc := make(chan error, 1)
		go func() {
			err := writeAll(c, data, time.Minute)
			c.Shutdown(syscall.SHUT_WR)
			errc <- err
		}()
		got, err := readAll(s, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("received %d bytes, want %d, equal prefix %d", len(got), len(data), commonPrefix(got, data))
		}
	})
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

var _ = transport.WriteOptions{}
var _ = wire.TCPFlagSYN
