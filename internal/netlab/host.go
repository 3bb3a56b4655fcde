//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/link"
	"github.com/stackbox/stackbox/pkg/wire"
)

// Host is a minimal IPv4 host on a link endpoint, built only from pkg/wire,
// for proving endpoints against the kernel without the stack: it answers
// ARP requests (RFC 826) and ICMP echo requests (RFC 792) for its address,
// like any host on the wire, sends ARP requests and echo requests on
// demand, and lets the test wait for a frame it expects.
//
// It receives like a NIC without promiscuous mode: only frames to its MAC
// or to broadcast (an afpacket endpoint sees everything on the wire).
type Host struct {
	ep  link.Endpoint
	MAC wire.MAC
	IP  netip.Addr

	frames       chan []byte
	dropped      atomic.Uint64
	arpAnswered  atomic.Uint64
	echoAnswered atomic.Uint64
}

// NewHost attaches a Host with address ip to ep (using ep's MAC). It
// detaches at t's cleanup.
func NewHost(t testing.TB, ep link.Endpoint, ip netip.Addr) *Host {
	t.Helper()
	if !ip.Is4() {
		t.Fatalf("netlab: Host address %v is not IPv4", ip)
	}
	h := &Host{ep: ep, MAC: ep.MAC(), IP: ip, frames: make(chan []byte, 1024)}
	ep.Attach(link.DispatcherFunc(h.deliver))
	t.Cleanup(func() { ep.Attach(nil) })
	return h
}

// ARPAnswered counts the ARP requests for our address that we answered.
func (h *Host) ARPAnswered() uint64 { return h.arpAnswered.Load() }

// EchoAnswered counts the echo requests we answered.
func (h *Host) EchoAnswered() uint64 { return h.echoAnswered.Load() }

// deliver runs on the endpoint's reader: answer what a host answers, then
// queue the frame for Expect (dropping, and counting, when the test is not
// reading).
func (h *Host) deliver(f []byte) {
	eth, err := wire.ParseEthernet(f)
	if err != nil || (eth.Dst() != h.MAC && !eth.Dst().IsBroadcast()) {
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeARP:
		if a, err := wire.ParseARP(eth.Payload()); err == nil && a.Op() == wire.ARPRequest && a.TargetIP() == h.IP {
			reply := h.arpFrame(wire.ARPReply, a.SenderMAC(), a.SenderMAC(), a.SenderIP())
			if _, err := h.ep.WritePackets([][]byte{reply}); err == nil {
				h.arpAnswered.Add(1)
			}
		}
	case wire.EtherTypeIPv4:
		ip, err := wire.ParseIPv4(eth.Payload())
		if err != nil || ip.Dst() != h.IP || ip.Protocol() != wire.IPProtoICMP || !ip.ChecksumValid() || ip.IsFragment() {
			break
		}
		if m, err := wire.ParseICMPv4(ip.Payload()); err == nil && m.Type() == wire.ICMPv4Echo && m.ChecksumValid() {
			reply := h.icmpFrame(eth.Src(), ip.Src(), wire.ICMPv4EchoReply, m.Ident(), m.Seq(), m.Data())
			if _, err := h.ep.WritePackets([][]byte{reply}); err == nil {
				h.echoAnswered.Add(1)
			}
		}
	}
	select {
	case h.frames <- f:
	default:
		h.dropped.Add(1)
	}
}

// arpFrame builds an ARP packet from us in an Ethernet frame to ethDst.
func (h *Host) arpFrame(op uint16, ethDst, targetMAC wire.MAC, targetIP netip.Addr) []byte {
	ef := wire.EthernetFields{Dst: ethDst, Src: h.MAC, EtherType: wire.EtherTypeARP}
	af := wire.ARPFields{Op: op, SenderMAC: h.MAC, SenderIP: h.IP, TargetMAC: targetMAC, TargetIP: targetIP}
	b := make([]byte, ef.Len()+af.Len())
	ef.Encode(b)
	af.Encode(b[ef.Len():])
	return b
}

// icmpFrame builds an ICMP echo or echo reply from us, built back to front
// into one buffer as the stack will.
func (h *Host) icmpFrame(ethDst wire.MAC, dst netip.Addr, typ uint8, ident, seq uint16, data []byte) []byte {
	ef := wire.EthernetFields{Dst: ethDst, Src: h.MAC, EtherType: wire.EtherTypeIPv4}
	mf := wire.ICMPv4Fields{Type: typ, Ident: ident, Seq: seq, PayloadLen: len(data)}
	ipf := wire.IPv4Fields{TTL: 64, Protocol: wire.IPProtoICMP, Src: h.IP, Dst: dst, DF: true, ID: seq,
		PayloadLen: mf.Len() + len(data)}
	b := make([]byte, ef.Len()+ipf.Len()+mf.Len()+len(data))
	off := ef.Len() + ipf.Len()
	copy(b[off+mf.Len():], data)
	mf.Encode(b[off:])
	ipf.Encode(b[ef.Len():])
	ef.Encode(b)
	return b
}

// Send writes frames through the endpoint.
func (h *Host) Send(frames ...[]byte) error {
	if n, err := h.ep.WritePackets(frames); err != nil {
		return fmt.Errorf("netlab: %s: sent %d of %d frames: %w", h.ep.Name(), n, len(frames), err)
	}
	return nil
}

// Expect waits until a received frame satisfies match (non-matching frames
// are discarded) or ctx ends; resend, if not nil, runs at the start and
// every second after, for requests worth retrying. The error names what was
// awaited and summarises what came instead.
func (h *Host) Expect(ctx context.Context, what string, resend func() error, match func(wire.Ethernet) bool) (wire.Ethernet, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if resend != nil {
		if err := resend(); err != nil {
			return nil, err
		}
	}
	var others []string
	for {
		select {
		case f := <-h.frames:
			eth, err := wire.ParseEthernet(f)
			if err != nil {
				continue
			}
			if match(eth) {
				return eth, nil
			}
			if len(others) < 8 {
				others = append(others, fmt.Sprintf("%v>%v type %#04x len %d", eth.Src(), eth.Dst(), eth.EtherType(), len(f)))
			}
		case <-tick.C:
			if resend != nil {
				if err := resend(); err != nil {
					return nil, err
				}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("netlab: no %s on %s: %w (other frames: [%s]; %d dropped unread)",
				what, h.ep.Name(), ctx.Err(), strings.Join(others, ", "), h.dropped.Load())
		}
	}
}

// Resolve sends ARP requests for ip (one a second) until the reply comes,
// and returns it.
func (h *Host) Resolve(ctx context.Context, ip netip.Addr) (wire.ARP, wire.Ethernet, error) {
	req := h.arpFrame(wire.ARPRequest, wire.BroadcastMAC, wire.ZeroMAC, ip)
	eth, err := h.Expect(ctx, "ARP reply from "+ip.String(), func() error { return h.Send(req) },
		func(e wire.Ethernet) bool {
			a, err := wire.ParseARP(e.Payload())
			return e.EtherType() == wire.EtherTypeARP && err == nil && a.Op() == wire.ARPReply && a.SenderIP() == ip
		})
	if err != nil {
		return nil, nil, err
	}
	a, _ := wire.ParseARP(eth.Payload())
	return a, eth, nil
}

// Ping sends ICMP echo requests (one a second) to ip at dstMAC until the
// matching echo reply (same ident and seq) comes, and returns its IPv4
// and ICMP views.
func (h *Host) Ping(ctx context.Context, dstMAC wire.MAC, ip netip.Addr, ident, seq uint16, data []byte) (wire.IPv4, wire.ICMPv4, error) {
	req := h.icmpFrame(dstMAC, ip, wire.ICMPv4Echo, ident, seq, data)
	eth, err := h.Expect(ctx, fmt.Sprintf("echo reply from %v (ident %d seq %d)", ip, ident, seq),
		func() error { return h.Send(req) },
		func(e wire.Ethernet) bool {
			if e.EtherType() != wire.EtherTypeIPv4 {
				return false
			}
			p, err := wire.ParseIPv4(e.Payload())
			if err != nil || p.Src() != ip || p.Protocol() != wire.IPProtoICMP {
				return false
			}
			m, err := wire.ParseICMPv4(p.Payload())
			return err == nil && m.Type() == wire.ICMPv4EchoReply && m.Ident() == ident && m.Seq() == seq
		})
	if err != nil {
		return nil, nil, err
	}
	p, _ := wire.ParseIPv4(eth.Payload())
	m, _ := wire.ParseICMPv4(p.Payload())
	if !bytes.Equal(m.Data(), data) {
		return p, m, fmt.Errorf("netlab: echo reply from %v carries %d bytes that differ from the %d sent", ip, len(m.Data()), len(data))
	}
	return p, m, nil
}
