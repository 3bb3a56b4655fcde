package linkspec

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/pcap"
	"github.com/stackbox/stackbox/pkg/wire"
)

func TestParse(t *testing.T) {
	mac := wire.MAC{0x02, 0, 0, 0, 0, 0x01}
	tests := []struct {
		spec string
		want Spec
	}{
		{"loopback", Spec{Kind: KindLoopback}},
		{"lo,mtu=1500", Spec{Kind: KindLoopback, MTU: 1500}},
		{"tap:sbx0", Spec{Kind: KindTap, Name: "sbx0"}},
		{"tap:sbx0,mtu=9000,mac=02:00:00:00:00:01", Spec{Kind: KindTap, Name: "sbx0", MTU: 9000, MAC: mac}},
		{"afpacket:veth1,mac=02-00-00-00-00-01", Spec{Kind: KindAFPacket, Name: "veth1", MAC: mac}},
		{"emu:lab", Spec{Kind: KindEmu, Name: "lab"}},
		{"emu:lab,loss=0.01,delay=10ms,jitter=2ms,dup=1%,corrupt=0.5,reorder=25%,rate=10mbit,limit=50,seed=7",
			Spec{Kind: KindEmu, Name: "lab", Seed: 7, SeedSet: true, Impair: emu.Impairments{
				Loss: 0.01, Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Duplicate: 0.01,
				Corrupt: 0.5, Reorder: 0.25, Rate: 10_000_000, Limit: 50}}},
		{"emu:x,rate=1gbit", Spec{Kind: KindEmu, Name: "x", Impair: emu.Impairments{Rate: 1e9}}},
		{"emu:x,rate=125kbps", Spec{Kind: KindEmu, Name: "x", Impair: emu.Impairments{Rate: 1e6}}},
		{"emu:x,rate=1.5Mbit", Spec{Kind: KindEmu, Name: "x", Impair: emu.Impairments{Rate: 1_500_000}}},
		{"emu:x,rate=2kibit", Spec{Kind: KindEmu, Name: "x", Impair: emu.Impairments{Rate: 2048}}},
		{"emu:x,rate=64000", Spec{Kind: KindEmu, Name: "x", Impair: emu.Impairments{Rate: 64000}}},
		{"udp:127.0.0.1:5555,127.0.0.1:5556", Spec{Kind: KindUDP, Local: "127.0.0.1:5555", Remote: "127.0.0.1:5556"}},
		{"udp:[::1]:5555,[::1]:5556,mtu=1400", Spec{Kind: KindUDP, Local: "[::1]:5555", Remote: "[::1]:5556", MTU: 1400}},
		{"unix:/run/vm.sock", Spec{Kind: KindUnix, Name: "/run/vm.sock"}},
		{"unix:/run/vm.sock,listen,pcap=/tmp/c.pcap", Spec{Kind: KindUnix, Name: "/run/vm.sock", Listen: true, PCAP: "/tmp/c.pcap"}},
		{"tcp:127.0.0.1:4000,listen", Spec{Kind: KindTCP, Name: "127.0.0.1:4000", Listen: true}},
		{"tap:sbx0,offload=off", Spec{Kind: KindTap, Name: "sbx0", NoOffload: true}},
		{"tap:sbx0,offload=on", Spec{Kind: KindTap, Name: "sbx0"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.spec, got, tt.want)
		}
		again, err := Parse(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.spec, got.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", "empty; expected tap:NAME"},
		{"wifi:wlan0", `unknown kind "wifi"; expected tap:NAME, emu:NETWORK, afpacket:IFACE, udp:LOCAL,REMOTE, unix:PATH, tcp:HOST:PORT or loopback`},
		{"TAP:x", `unknown kind "TAP"`},
		{"tap:", "missing tap device name; expected tap:NAME"},
		{"tap", "missing tap device name"},
		{"tap:waytoolongname16", "longer than 15 bytes"},
		{"tap:a/b", "not a valid interface name"},
		{"afpacket:", "missing interface name; expected afpacket:NAME"},
		{"afpacket:eth0,mtu=1500", "afpacket uses the interface's MTU"},
		{"emu:", "missing network name; expected emu:NETWORK"},
		{"unix:", "missing socket path"},
		{"udp:127.0.0.1:1", "expected udp:LOCAL,REMOTE"},
		{"udp:127.0.0.1:1,mtu=1500", "expected udp:LOCAL,REMOTE"},
		{"udp:localhost,127.0.0.1:2", `udp address "localhost" is not host:port`},
		{"udp:127.0.0.1:99999,127.0.0.1:2", "bad port"},
		{"tcp:nowhere", "expected tcp:HOST:PORT"},
		{"lo:x", "loopback takes no name"},
		{"lo,mac=02:00:00:00:00:01", "loopback has no MAC"},
		{"tap:x,mtu=abc", `mtu="abc": expected an integer from 68 to 65535`},
		{"tap:x,mtu=67", "from 68 to 65535"},
		{"tap:x,mtu=65536", "from 68 to 65535"},
		{"tap:x,mac=zz", `mac="zz": expected a unicast address`},
		{"tap:x,mac=01:00:5e:00:00:01", "expected a unicast address"},
		{"tap:x,speed=fast", `unknown option "speed"; expected mtu, mac, pcap`},
		{"emu:x,speed=fast", "expected mtu, mac, pcap, loss, dup"},
		{"tap:x,loss=0.1", "loss= applies only to emu links"},
		{"tap:x,listen", `option "listen" has no value`},
		{"unix:/s,listen,listen", `option "listen" given twice`},
		{"tap:x,mtu=1500,mtu=9000", `option "mtu" given twice`},
		{"tap:x,", "empty option"},
		{"tap:x,pcap=", "pcap= needs a file name"},
		{"tap:x,offload=maybe", `offload="maybe": expected on or off`},
		{"emu:x,offload=off", "offload= applies only to tap links"},
		{"emu:x,loss=1.5", `loss="1.5": expected a probability`},
		{"emu:x,loss=-1%", "expected a probability"},
		{"emu:x,loss=NaN", "expected a probability"},
		{"emu:x,dup=many", `dup="many"`},
		{"emu:x,delay=10", `delay="10": expected a duration`},
		{"emu:x,jitter=-1ms", "expected a duration"},
		{"emu:x,rate=fast", `rate="fast": expected bits per second`},
		{"emu:x,rate=10furlongs", "expected bits per second"},
		{"emu:x,rate=0", "out of range"},
		{"emu:x,limit=0", "expected a positive number"},
		{"emu:x,seed=-1", "expected an unsigned 64-bit integer"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.spec)
		var se *Error
		if !errors.As(err, &se) || se.Spec != tt.spec {
			t.Errorf("Parse(%q) = %v, want a *Error for the spec", tt.spec, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"`+tt.spec+`"`) {
			t.Errorf("Parse(%q) error %q, want it to quote the spec and say %q", tt.spec, err, tt.want)
		}
	}
}

func inbox(e link.Endpoint) chan []byte {
	ch := make(chan []byte, 16)
	e.Attach(link.DispatcherFunc(func(f []byte) { ch <- f }))
	return ch
}

func frameTo(dst, src wire.MAC) []byte {
	f := make([]byte, 60)
	copy(f, dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x88, 0xb5
	return f
}

func expect(t *testing.T, ch chan []byte, want []byte) {
	t.Helper()
	select {
	case got := <-ch:
		if !bytes.Equal(got, want) {
			t.Fatal("wrong frame delivered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame delivered")
	}
}

func mustOpen(t *testing.T, spec string) link.Endpoint {
	t.Helper()
	e, err := Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestOpenLoopbackWithPcap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lo.pcap")
	e := mustOpen(t, "lo,mtu=1500,pcap="+path)
	if e.MTU() != 1500 || e.Capabilities()&link.CapLoopback == 0 || e.Name() != "loopback" {
		t.Fatalf("%s: MTU %d caps %v", e.Name(), e.MTU(), e.Capabilities())
	}
	in := inbox(e)
	f := frameTo(wire.BroadcastMAC, wire.MAC{})
	if _, err := e.WritePackets([][]byte{f}); err != nil {
		t.Fatal(err)
	}
	expect(t, in, f)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, err := pcap.NewReader(file)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 {
		t.Fatalf("capture holds %d frames, want 2 (written and looped back)", n)
	}
}

func TestOpenEmu(t *testing.T) {
	a := mustOpen(t, "emu:linkspec-test,seed=5,mtu=9000,mac=02:00:00:00:00:0a")
	b := mustOpen(t, "emu:linkspec-test,seed=5")
	if a.MTU() != 9000 || a.MAC() != (wire.MAC{2, 0, 0, 0, 0, 0x0a}) || !strings.HasPrefix(a.Name(), "emu:linkspec-test#") {
		t.Fatalf("%s: MTU %d MAC %v", a.Name(), a.MTU(), a.MAC())
	}
	ia, ib := inbox(a), inbox(b)
	f := frameTo(b.MAC(), a.MAC())
	a.WritePackets([][]byte{f})
	expect(t, ib, f)
	g := frameTo(a.MAC(), b.MAC())
	b.WritePackets([][]byte{g})
	expect(t, ia, g)

	// A port whose spec loses everything it sends.
	c := mustOpen(t, "emu:linkspec-test,loss=100%")
	c.WritePackets([][]byte{frameTo(wire.BroadcastMAC, c.MAC())})
	if s := c.(link.Counter).Stats(); s.TxDropped != 1 {
		t.Fatalf("lossy port stats %+v", s)
	}
	if _, err := Open("emu:linkspec-test,seed=6"); err == nil || !strings.Contains(err.Error(), "already exists with seed 5") {
		t.Fatalf("seed mismatch: %v", err)
	}
}

func TestOpenUDP(t *testing.T) {
	ports := make([]string, 2)
	for i := range ports {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = c.LocalAddr().String()
		c.Close()
	}
	a := mustOpen(t, "udp:"+ports[0]+","+ports[1])
	b := mustOpen(t, "udp:"+ports[1]+","+ports[0]+",mtu=1400")
	if b.MTU() != 1400 {
		t.Fatalf("MTU %d", b.MTU())
	}
	ib := inbox(b)
	f := frameTo(b.MAC(), a.MAC())
	if _, err := a.WritePackets([][]byte{f}); err != nil {
		t.Fatal(err)
	}
	expect(t, ib, f)
}

func TestOpenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vm.sock")
	srv := mustOpen(t, "unix:"+path+",listen")
	cli := mustOpen(t, "unix:"+path+",mac=02:00:00:00:00:0c")
	if cli.MAC() != (wire.MAC{2, 0, 0, 0, 0, 0x0c}) {
		t.Fatalf("MAC %v", cli.MAC())
	}
	is := inbox(srv)
	f := frameTo(srv.MAC(), cli.MAC())
	if _, err := cli.WritePackets([][]byte{f}); err != nil {
		t.Fatal(err)
	}
	expect(t, is, f)
}

func TestOpenErrors(t *testing.T) {
	for _, spec := range []string{
		"unix:" + filepath.Join(t.TempDir(), "missing.sock"),
		"lo,pcap=" + filepath.Join(t.TempDir(), "no", "dir", "c.pcap"),
		"bogus:x",
	} {
		e, err := Open(spec)
		var se *Error
		if err == nil || !errors.As(err, &se) || se.Spec != spec {
			if e != nil {
				e.Close()
			}
			t.Errorf("Open(%q) = %v, want a *Error quoting the spec", spec, err)
		}
	}
	_, err := Open("unix:" + filepath.Join(t.TempDir(), "missing.sock"))
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Open of a missing socket: %v does not wrap ENOENT", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"loopback", "lo,mtu=1500", "tap:sbx0,mac=02:00:00:00:00:01", "afpacket:eth0",
		"emu:lab,loss=0.01,delay=10ms,jitter=2ms,dup=1%,corrupt=0.5,reorder=25%,rate=10mbit,limit=5,seed=7",
		"udp:127.0.0.1:1,127.0.0.1:2", "unix:/x,listen,pcap=/y", "tcp:[::1]:80", "emu:,", ",,,", "tap:x,=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			if !strings.Contains(err.Error(), "link spec") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if s.Kind == "" || s.Impair.Validate() != nil || (s.MTU != 0 && (s.MTU < MinMTU || s.MTU > MaxMTU)) {
			t.Fatalf("Parse(%q) accepted %+v", spec, s)
		}
		again, err := Parse(s.String())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip %q → %q: %+v, %v", spec, s.String(), again, err)
		}
	})
}
