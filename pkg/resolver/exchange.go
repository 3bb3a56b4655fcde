package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/stackbox/stackbox/pkg/host"
)

// ednsSize is the UDP payload size advertised with EDNS0: the DNS flag
// day 2020 value, which avoids IP fragmentation on common paths.
const ednsSize = 1232

// maxStrays bounds the datagrams a UDP try reads that are not the
// answer (wrong ID or question, garbage) before it gives up on the try.
const maxStrays = 64

// newQuery is a query for name and qtype with a random ID (RFC 5452
// §9.2: IDs and source ports must be unpredictable); recursion desired
// unless rd is false.
func (r *Resolver) newQuery(name string, qtype uint16, rd bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = uint16(rand.Uint32())
	m.RecursionDesired = rd
	if r.config().EDNS0 {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

// Exchange sends m (its ID replaced by a random one) to the configured
// nameservers with failover and returns the first usable answer, and the
// server that gave it, whatever its RCODE: nslookup, host and dig print
// it. A SERVFAIL, REFUSED or NOTIMP answer moves on to the next server
// (as glibc's res_send) and is returned only if no server does better.
// The error is for no answer at all (ErrTimeout, ErrBadResponse).
func (r *Resolver) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, netip.AddrPort, error) {
	m = m.Copy()
	m.Id = uint16(rand.Uint32())
	name := ""
	if len(m.Question) > 0 {
		name = m.Question[0].Name
	}
	c := r.config()
	servers := c.Servers
	if len(servers) == 0 {
		return nil, netip.AddrPort{}, dnsError(name, "", msgNoServers, ErrBadResponse)
	}
	if c.Rotate && len(servers) > 1 {
		k := int(r.next.Add(1)-1) % len(servers)
		servers = append(append([]netip.AddrPort(nil), servers[k:]...), servers[:k]...)
	}
	var (
		last     *dns.Msg
		lastFrom netip.AddrPort
		lastErr  error
		done     = make([]bool, len(servers)) // gave a final word: not retried
	)
	for try := range max(c.Attempts, 1) {
		// glibc res_send: the first round waits Timeout per server, later
		// rounds double it and share it among the servers.
		timeout := c.Timeout << try
		if try > 0 {
			timeout /= time.Duration(len(servers))
		}
		if timeout <= 0 {
			timeout = defaultTimeout
		}
		for i, s := range servers {
			if done[i] {
				continue
			}
			resp, err := r.exchangeOne(ctx, s, m, timeout)
			if ctx.Err() != nil {
				return last, lastFrom, ctxError(ctx, name, s.String())
			}
			if err != nil {
				lastErr = err
				if !isTimeout(err) {
					done[i] = true // refused port, unreachable: no point again
				}
				continue
			}
			switch resp.Rcode {
			case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
				last, lastFrom, done[i] = resp, s, true
				continue
			}
			return resp, s, nil
		}
		if !contains(done, false) {
			break
		}
	}
	if last != nil {
		return last, lastFrom, nil
	}
	server := servers[len(servers)-1].String()
	if lastErr == nil || isTimeout(lastErr) {
		return nil, netip.AddrPort{}, dnsError(name, server, msgTimeout, ErrTimeout)
	}
	return nil, netip.AddrPort{}, dnsError(name, server, msgUnreachable+": "+errText(lastErr), ErrBadResponse)
}

func contains(l []bool, v bool) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// ctxError is the error for a lookup its context ended.
func ctxError(ctx context.Context, name, server string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return dnsError(name, server, msgTimeout, ErrTimeout)
	}
	return &net.DNSError{Err: ctx.Err().Error(), Name: name, Server: server, UnwrapErr: ctx.Err()}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// errText is err's innermost message ("connection refused").
func errText(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// exchangeOne is one try with one server: UDP (TCP with use-vc), and
// TCP again when the UDP answer is truncated (RFC 7766 §5).
func (r *Resolver) exchangeOne(ctx context.Context, server netip.AddrPort, q *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if r.config().UseTCP {
		return r.exchangeTCP(ctx, server, q)
	}
	resp, err := r.exchangeUDP(ctx, server, q)
	if err == nil && resp.Truncated {
		return r.exchangeTCP(ctx, server, q)
	}
	return resp, err
}

// socketOptions is r.Options with Local set to l.
func (r *Resolver) socketOptions(l netip.AddrPort) *host.SocketOptions {
	o := host.SocketOptions{}
	if r.Options != nil {
		o = *r.Options
	}
	o.Local = l
	return &o
}

// dialUDP opens a UDP socket connected to server (so the stack drops
// datagrams from anyone else) from a random port in 1024–65535 (RFC 5452
// §9.2 asks for the widest range), retrying a few ports that are taken
// and leaving the choice to the stack after that.
func (r *Resolver) dialUDP(ctx context.Context, server netip.AddrPort) (net.Conn, error) {
	network, any := "udp4", netip.IPv4Unspecified()
	if server.Addr().Is6() {
		network, any = "udp6", netip.IPv6Unspecified()
	}
	for range 8 {
		port := uint16(1024 + rand.N(65536-1024))
		c, err := r.Net.Dial(ctx, network, server.String(), r.socketOptions(netip.AddrPortFrom(any, port)))
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return r.Net.Dial(ctx, network, server.String(), r.socketOptions(netip.AddrPort{}))
}

func (r *Resolver) exchangeUDP(ctx context.Context, server netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	out, err := q.Pack()
	if err != nil {
		return nil, err
	}
	c, err := r.dialUDP(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if _, err := c.Write(out); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for range maxStrays {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf[:n]) != nil || !matches(q, resp) {
			continue // RFC 5452 §9.1: not the answer; keep waiting
		}
		return resp, nil
	}
	return nil, os.ErrDeadlineExceeded
}

func (r *Resolver) exchangeTCP(ctx context.Context, server netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	out, err := q.Pack()
	if err != nil {
		return nil, err
	}
	network := "tcp4"
	if server.Addr().Is6() {
		network = "tcp6"
	}
	c, err := r.Net.Dial(ctx, network, server.String(), r.socketOptions(netip.AddrPort{}))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	// RFC 1035 §4.2.2: each message is preceded by its 16-bit length.
	frame := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(out)), uint16(len(out)))
	if _, err := c.Write(append(frame, out...)); err != nil {
		return nil, err
	}
	var hdr [2]byte
	for range maxStrays {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, err
		}
		buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf) == nil && matches(q, resp) {
			return resp, nil
		}
	}
	return nil, errors.New("no matching answer on the TCP connection")
}

// matches reports whether resp answers q: a response with q's ID and
// q's question (names compared case-insensitively, RFC 4343). A server
// may leave out the question of an error answer (FORMERR and the like).
func matches(q, resp *dns.Msg) bool {
	if !resp.Response || resp.Id != q.Id {
		return false
	}
	if len(resp.Question) == 0 {
		return resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError
	}
	if len(resp.Question) != 1 || len(q.Question) != 1 {
		return false
	}
	a, b := q.Question[0], resp.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
