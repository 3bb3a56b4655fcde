package tcp_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link/emu"
	"github.com/stackbox/stackbox/pkg/socket"
	"github.com/stackbox/stackbox/pkg/socket/gonet"
	"github.com/stackbox/stackbox/pkg/stack"
	"github.com/stackbox/stackbox/pkg/transport"
)

// TCP benchmarks (make bench): each of our figures is reported beside the
// Linux kernel's figure for the same measurement between two network
// namespaces joined by a veth pair, measured in the same run, and the
// ratio ours/kernel. Our stacks are driven through the socket layer and
// gonet, exactly as applications use them, so the figures include the
// socket layer; the kernel's through Go's net package.
//
// The kernel parts live in bench_interop_test.go (Linux, root); elsewhere,
// or without root, the in-memory benchmarks report our figure alone and
// say why the kernel's is missing, and the TAP benchmarks skip.
//
// Addresses: 10.83.0.0/24 throughout (the in-memory stacks too, though
// they are in no namespace): kernel↔kernel over veth 10.83.0.11 (client
// namespace) and 10.83.0.12 (server namespace); over TAP the kernel is
// 10.83.0.1 and our stack 10.83.0.2; in memory 10.83.0.21 and 10.83.0.22.
// Every iteration's timing excludes the lab's setup and the kernel's
// measurement (the timer is stopped for them), so ns/op is ours.

const (
	bulkSize  = 64 << 20  // bytes per bulk iteration
	bulkChunk = 256 << 10 // write and read size
	benchPort = 5201
	memConns  = 10000 // idle connections for the memory benchmark
)

// benchEnv is one setting: a listener on the server side and a way to
// connect to it from the client side (callable from any goroutine; for
// the kernel it opens the socket in the client's namespace).
type benchEnv struct {
	ln   net.Listener
	dial func() (net.Conn, error)
}

// kernelEnv, set by bench_interop_test.go on Linux, builds the
// kernel↔kernel setting over a veth pair between two namespaces it
// creates (cleaned up by b.Cleanup). It returns a reason instead when the
// kernel cannot be measured (not root, no iproute2).
var kernelEnv func(b *testing.B) (*benchEnv, string)

// kernelIdleMemory, set on Linux, opens n idle kernel↔kernel connections
// over veth and returns the kernel's slab bytes per connection (both
// ends), or a reason it cannot say.
var kernelIdleMemory func(b *testing.B, n int) kernelMemory

// kernelMemory is the kernel's memory for idle connections.
type kernelMemory struct {
	perConn float64 // slab bytes per connection, both ends, every cache
	tcpSock float64 // of which the TCP cache (struct tcp_sock)
	detail  string  // what was measured, the caches that grew most
	why     string  // when not empty: why there is no figure
}

func kernel(b *testing.B) (*benchEnv, string) {
	if kernelEnv == nil {
		return nil, "the kernel comparison needs Linux"
	}
	return kernelEnv(b)
}

// benchStack is one of our stacks on the emulated network with the
// whole socket layer.
func benchStack(b *testing.B, nw *emu.Network, addr string) *gonet.Dialer {
	b.Helper()
	d, _ := benchStackClose(b, nw, addr)
	return d
}

// benchStackClose is benchStack that also returns the stack, for closing
// it before b's cleanup.
func benchStackClose(b *testing.B, nw *emu.Network, addr string) (*gonet.Dialer, *stack.Stack) {
	b.Helper()
	s := stack.New(stack.Options{})
	b.Cleanup(func() { s.Close() })
	n, err := s.AddNIC(nw.NewPort(emu.PortConfig{}), stack.NICOptions{NoDAD: true, NoAutoconf: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.AddAddress(stack.Address{Prefix: netip.MustParsePrefix(addr)}); err != nil {
		b.Fatal(err)
	}
	n.SetUp(true)
	in := socket.NewInet(s)
	return &gonet.Dialer{Layer: in.Layer, Cred: transport.Cred{Privileged: true}, Timeout: 10 * time.Second}, s
}

// oursEnv is two of our stacks on one emulated network without
// impairments: client 10.83.0.21, server 10.83.0.22.
func oursEnv(b *testing.B) *benchEnv {
	b.Helper()
	nw := emu.NewNetwork(83)
	b.Cleanup(func() { nw.Close() })
	cd := benchStack(b, nw, "10.83.0.21/24")
	sd := benchStack(b, nw, "10.83.0.22/24")
	return oursListening(b, sd, cd, "10.83.0.22")
}

// oursListening is a listener on sd at host:benchPort dialled from cd.
func oursListening(b *testing.B, sd, cd *gonet.Dialer, host string) *benchEnv {
	b.Helper()
	addr := net.JoinHostPort(host, fmt.Sprint(benchPort))
	ln, err := sd.Listen(b.Context(), "tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return &benchEnv{ln: ln, dial: func() (net.Conn, error) { return cd.Dial("tcp4", addr) }}
}

// bulk sends n bytes from a new connection's client to the server and
// returns the time from the connect's start to the server's reading the
// last byte.
func bulk(e *benchEnv, n int64) (time.Duration, error) {
	type res struct {
		got int64
		at  time.Time
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := e.ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		buf := make([]byte, bulkChunk)
		var got int64
		for {
			k, err := c.Read(buf)
			got += int64(k)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- res{got, time.Now(), err}
				return
			}
		}
	}()
	data := make([]byte, bulkChunk)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	start := time.Now()
	werr := func() error {
		c, err := e.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		for left := n; left > 0; left -= int64(len(data)) {
			if _, err := c.Write(data[:min(int64(len(data)), left)]); err != nil {
				return err
			}
		}
		return c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	if werr != nil {
		e.ln.Close() // unblock the accept
		return 0, fmt.Errorf("sender: %w", werr)
	}
	r := <-done
	if r.err == nil && r.got != n {
		r.err = fmt.Errorf("received %d bytes of %d", r.got, n)
	}
	if r.err != nil {
		return 0, fmt.Errorf("receiver: %w", r.err)
	}
	return r.at.Sub(start), nil
}

// echo serves one connection from ln: each byte read is written back,
// until EOF.
func echo(ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.(interface{ SetNoDelay(bool) error }).SetNoDelay(true)
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

// pingPong makes n 1-byte request/response round trips on one connection
// (TCP_NODELAY at both ends) and returns their total time, the connect
// excluded.
func pingPong(e *benchEnv, n int) (time.Duration, error) {
	served := echo(e.ln)
	var d time.Duration
	err := func() error {
		c, err := e.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		c.(interface{ SetNoDelay(bool) error }).SetNoDelay(true)
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		b := []byte{'x'}
		start := time.Now()
		for range n {
			if _, err := c.Write(b); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, b); err != nil {
				return err
			}
		}
		d = time.Since(start)
		return c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	if err != nil {
		e.ln.Close()
		return 0, err
	}
	return d, <-served
}

// connRate opens n connections one after another: connect, write one
// byte, read the server's one byte and its FIN, close. The server
// accepts, reads the byte, answers it and closes first (so TIME_WAIT is
// on the server, as with a web server, and the client's ports free up).
func connRate(e *benchEnv, n int) (time.Duration, error) {
	served := make(chan error, 1)
	go func() {
		errc := make(chan error, 64)
		var first error
		for i := 0; i < n; i++ {
			c, err := e.ln.Accept()
			if err != nil {
				served <- err
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil {
					errc <- err
					return
				}
				_, err := c.Write(b)
				errc <- err
			}()
			// Collect finished handlers without blocking the accepts.
			for drained := false; !drained; {
				select {
				case err := <-errc:
					if err != nil && first == nil {
						first = err
					}
				default:
					drained = true
				}
			}
		}
		served <- first
	}()
	var d time.Duration
	err := func() error {
		b := make([]byte, 1)
		start := time.Now()
		for i := range n {
			c, err := e.dial()
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			b[0] = byte(i)
			if _, err := c.Write(b); err != nil {
				c.Close()
				return fmt.Errorf("connection %d: write: %w", i, err)
			}
			if _, err := io.ReadFull(c, b); err != nil {
				c.Close()
				return fmt.Errorf("connection %d: read: %w", i, err)
			}
			if k, err := c.Read(b); k != 0 || !errors.Is(err, io.EOF) {
				c.Close()
				return fmt.Errorf("connection %d: after the answer: %d bytes, %v (want EOF)", i, k, err)
			}
			c.Close()
		}
		d = time.Since(start)
		return nil
	}()
	if err != nil {
		e.ln.Close()
		return 0, err
	}
	select {
	case err := <-served:
		return d, err
	case <-time.After(30 * time.Second):
		return d, errors.New("server did not finish")
	}
}

// report puts our figure beside the kernel's under unit and
// "kernel-"+unit, with their ratio; without a kernel figure it says why.
func report(b *testing.B, ours, kern float64, unit, why string) {
	b.Helper()
	b.ReportMetric(ours, unit)
	if why != "" {
		b.Logf("ours %.4g %s; kernel figure not measured: %s", ours, unit, why)
		return
	}
	b.ReportMetric(kern, "kernel-"+unit)
	b.ReportMetric(ours/kern, "ratio")
}

const vethWhat = "kernel↔kernel over veth"

func mbps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

// benchBulk sends b.N × bulkSize on one connection of ours (timed,
// from the connect to the last byte read), then the same on one
// connection of the kernel's (timer stopped), and reports both.
func benchBulk(b *testing.B, ours *benchEnv) {
	b.Helper()
	n := int64(b.N) * bulkSize
	b.ResetTimer()
	d, err := bulk(ours, n)
	if err != nil {
		b.Fatalf("ours: %v", err)
	}
	b.StopTimer()
	ke, why := kernel(b)
	var kern float64
	if ke != nil {
		kd, err := bulk(ke, n)
		if err != nil {
			b.Fatalf("kernel: %v", err)
		}
		kern = mbps(n, kd)
	}
	report(b, mbps(n, d), kern, "MB/s", why)
}

// BenchmarkBulkMemory: bulk throughput on one connection between two of
// our stacks on an emulated Ethernet (in memory, no impairments), b.N ×
// 64 MiB, beside the kernel's over veth.
func BenchmarkBulkMemory(b *testing.B) {
	benchBulk(b, oursEnv(b))
}

// BenchmarkRoundTrip: 1-byte request/response round trips per second on
// one connection with TCP_NODELAY, between two of our stacks in memory.
func BenchmarkRoundTrip(b *testing.B) {
	benchRR(b, oursEnv(b))
}

func benchRR(b *testing.B, ours *benchEnv) {
	b.Helper()
	b.ResetTimer()
	d, err := pingPong(ours, b.N)
	if err != nil {
		b.Fatalf("ours: %v", err)
	}
	b.StopTimer()
	ke, why := kernel(b)
	var kern float64
	if ke != nil {
		kd, err := pingPong(ke, b.N)
		if err != nil {
			b.Fatalf("kernel: %v", err)
		}
		kern = float64(b.N) / kd.Seconds()
	}
	report(b, float64(b.N)/d.Seconds(), kern, "rr/s", why)
}

// BenchmarkConnRate: connections opened, used for a 1-byte exchange and
// closed per second, one at a time, between two of our stacks in memory.
func BenchmarkConnRate(b *testing.B) {
	benchConnRate(b, oursEnv(b))
}

func benchConnRate(b *testing.B, ours *benchEnv) {
	b.Helper()
	b.ResetTimer()
	d, err := connRate(ours, b.N)
	if err != nil {
		b.Fatalf("ours: %v", err)
	}
	b.StopTimer()
	ke, why := kernel(b)
	var kern float64
	if ke != nil {
		kd, err := connRate(ke, b.N)
		if err != nil {
			b.Fatalf("kernel: %v", err)
		}
		kern = float64(b.N) / kd.Seconds()
	}
	report(b, float64(b.N)/d.Seconds(), kern, "conn/s", why)
}

type acceptResult struct {
	conns []net.Conn
	err   error
}

// acceptN accepts n connections from ln and sends them (and the first
// error) on the channel, which has room for one more send.
func acceptN(ln net.Listener, n int) chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		r := acceptResult{conns: make([]net.Conn, 0, n)}
		for range n {
			c, err := ln.Accept()
			if err != nil {
				r.err = err
				break
			}
			r.conns = append(r.conns, c)
		}
		ch <- r
	}()
	return ch
}

// abortAll closes with SO_LINGER 0 (a reset).
func abortAll(cs []net.Conn) {
	for _, c := range cs {
		if l, ok := c.(interface{ SetLinger(int) error }); ok {
			l.SetLinger(0)
		}
		c.Close()
	}
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// heapInUse is the live heap after two collections.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIdleConnMemory: the Go heap held by 10,000 idle established
// connections between two of our stacks (socket layer and gonet
// included), per connection (both ends) and per end, beside the kernel
// slab memory of 10,000 idle connections over veth (ratio ours/kernel:
// below 1 is leaner). Each iteration opens and closes the 10,000
// connections.
func BenchmarkIdleConnMemory(b *testing.B) {
	var sum float64
	for range b.N {
		sum += oursIdleMemory(b, memConns)
	}
	b.StopTimer()
	perConn := sum / float64(b.N)
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(perConn/2, "B/end")
	km := kernelMemory{why: "the kernel comparison needs Linux"}
	if kernelIdleMemory != nil {
		km = kernelIdleMemory(b, memConns) // once per run, the same for every b.N
	}
	if km.why != "" {
		b.Logf("ours %.0f B/conn (%.0f B per end); kernel figure not measured: %s", perConn, perConn/2, km.why)
		return
	}
	b.ReportMetric(km.perConn, "kernel-B/conn")
	b.ReportMetric(km.tcpSock, "kernel-tcpsock-B/conn")
	b.ReportMetric(perConn/km.perConn, "ratio")
	b.Logf("ours %.0f B/conn (%.0f B per end, Go heap), kernel %.0f B/conn (slab, %s); %s",
		perConn, perConn/2, km.perConn, vethWhat, km.detail)
}

// oursIdleMemory opens n connections between two fresh stacks, lets
// them go idle and returns the heap growth per connection.
func oursIdleMemory(b *testing.B, n int) float64 {
	b.StopTimer()
	nw := emu.NewNetwork(84)
	cd, cs := benchStackClose(b, nw, "10.83.0.21/24")
	sd, ss := benchStackClose(b, nw, "10.83.0.22/24")
	addr := net.JoinHostPort("10.83.0.22", fmt.Sprint(benchPort))
	ln, err := sd.Listen(b.Context(), "tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	clients := make([]net.Conn, 0, n+1)
	// One connection first, so that what the first connection
	// allocates once (tables, caches, pools) is not counted.
	first := acceptN(ln, 1)
	warm, err := cd.Dial("tcp4", addr)
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	clients = append(clients, warm)
	fr := <-first
	if fr.err != nil {
		b.Fatal(fr.err)
	}
	warm.Write([]byte{1})
	io.ReadFull(fr.conns[0], make([]byte, 1))
	accepted := acceptN(ln, n)
	defer func() {
		// Resets, not FINs: no TIME_WAIT endpoints outlive the
		// iteration to be freed during the next one's measurement.
		ln.Close()
		r := <-accepted
		abortAll(clients)
		abortAll(r.conns)
		abortAll(fr.conns)
		cs.Close()
		ss.Close()
		nw.Close()
	}()
	before := heapInUse()
	b.StartTimer()
	for i := range n {
		c, err := cd.Dial("tcp4", addr)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		clients = append(clients, c)
	}
	r := <-accepted
	accepted <- r // for the deferred close
	if r.err != nil {
		b.Fatalf("accept: %v", r.err)
	}
	b.StopTimer()
	time.Sleep(300 * time.Millisecond) // delayed ACKs and the like settle
	after := heapInUse()
	per := (float64(after) - float64(before)) / float64(n)
	return per
}
