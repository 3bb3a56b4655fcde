package traceroute

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// tcpHdrLen is the SYN's header: 20 bytes and 20 of options, as Linux's
// own SYNs (MSS, SACK permitted, timestamps, window scale), so probes
// look like a connection's first segment to middleboxes (traceroute 2.1
// tcp module).
const tcpHdrLen = 40

// TCP flags (RFC 9293 §3.1).
const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// tcpMethod is -T: SYNs to one port from one source port over a raw TCP
// socket, the probe numbered by its sequence number (a SYN-ACK or RST
// acknowledges seq+1; an ICMP error quotes seq).
type tcpMethod struct {
	common
	pc           host.PacketConn
	sport, dport uint16
	seqBase      uint32
	src          netip.Addr
}

func newTCP(c common) (method, error) {
	t := c.t
	dport := 80
	if t.o.port >= 0 {
		dport = t.o.port
	}
	src, err := c.routeSource(dport)
	if err != nil {
		return nil, err
	}
	pc, err := t.h.ListenPacket(t.ctx, c.network("ip")+":tcp", src.String(), c.socketOptions(0))
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, &sysError{what: "socket", err: err, noPriv: true}
		}
		if c.src.IsValid() && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, &sysError{what: "bind", err: err}
		}
		return nil, &sysError{what: "socket", err: err}
	}
	now := time.Now().UnixNano()
	m := &tcpMethod{common: c, pc: pc, src: src, dport: uint16(dport),
		sport: uint16(32768 + now%28000), seqBase: uint32(now >> 10)}
	go m.read()
	return m, nil
}

// syn builds probe idx's SYN with its checksum (RFC 9293 §3.1's pseudo
// header for IPv4, RFC 8200 §8.1's for IPv6).
func (m *tcpMethod) syn(idx int) []byte {
	b := make([]byte, tcpHdrLen)
	binary.BigEndian.PutUint16(b[0:], m.sport)
	binary.BigEndian.PutUint16(b[2:], m.dport)
	binary.BigEndian.PutUint32(b[4:], m.seqBase+uint32(idx))
	b[12] = tcpHdrLen / 4 << 4
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:], 5840)
	mss := uint16(1460)
	if m.t.v6() {
		mss = 1440
	}
	o := b[20:]
	o[0], o[1] = 2, 4 // MSS
	binary.BigEndian.PutUint16(o[2:], mss)
	o[4], o[5] = 4, 2  // SACK permitted
	o[6], o[7] = 8, 10 // timestamps
	binary.BigEndian.PutUint32(o[8:], uint32(time.Now().UnixMilli()))
	o[16] = 1                     // NOP
	o[17], o[18], o[19] = 3, 3, 7 // window scale
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(m.src, m.t.dst, b))
	return b
}

// tcpChecksum is the Internet checksum (RFC 1071) of seg and its pseudo
// header.
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += syscall.IPPROTO_TCP + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func (m *tcpMethod) send(idx, ttl int) (time.Time, error) {
	if err := m.setTTL(m.pc, ttl); err != nil {
		return time.Time{}, err
	}
	seg := m.syn(idx)
	var sent time.Time
	err := m.sendShared(m, func() error {
		sent = time.Now()
		_, err := m.pc.SendMsg(seg, nil, netip.AddrPortFrom(m.t.dst, 0))
		return err
	}, m.drain)
	if err != nil {
		if retry, fatal := m.sendFailed(err); retry {
			return time.Time{}, nil
		} else {
			return sent, fatal
		}
	}
	return sent, nil
}

// read takes the destination's SYN-ACK or RST to our SYNs, and ICMP
// errors quoting them, until the socket closes.
func (m *tcpMethod) read() {
	b, oob := make([]byte, 2048), make([]byte, 512)
	for {
		n, _, _, from, err := m.pc.RecvMsg(b, oob, 0)
		if err == nil {
			seg := b[:n]
			if !m.t.v6() {
				// IPv4 raw sockets read the IP header too (raw(7)).
				if n < 20 || b[0]>>4 != 4 || int(b[0]&0xf)*4 > n {
					continue
				}
				seg = b[int(b[0]&0xf)*4 : n]
			}
			if idx, ok := m.answer(seg); ok && from.Addr().Unmap() == m.t.dst {
				m.deliver(reply{idx: idx, from: m.t.dst, at: time.Now()})
			}
			continue
		}
		if !pending(err) {
			return
		}
		m.drain(m.deliver)
	}
}

// drain reads the error queue until it is empty and gives the errors
// quoting our SYNs to fn.
func (m *tcpMethod) drain(fn func(reply)) {
	b, oob := make([]byte, 2048), make([]byte, 512)
	for range 64 {
		n, oobn, _, _, err := m.pc.RecvMsg(b, oob, syscall.MSG_ERRQUEUE)
		if err != nil {
			return
		}
		ee := parseErr(oob[:oobn])
		// The queued payload is the quoted TCP header: ports, then seq.
		if !icmpErr(ee, m.t.v6()) || n < 8 ||
			binary.BigEndian.Uint16(b[0:]) != m.sport || binary.BigEndian.Uint16(b[2:]) != m.dport {
			continue
		}
		idx := int(binary.BigEndian.Uint32(b[4:]) - m.seqBase)
		fn(reply{idx: idx, at: time.Now(), ee: ee})
	}
}

// answer reports which probe seg (a TCP segment from the destination)
// answers: a SYN-ACK or an RST to our port, acknowledging a SYN's seq+1.
func (m *tcpMethod) answer(seg []byte) (int, bool) {
	if len(seg) < 20 || binary.BigEndian.Uint16(seg[0:]) != m.dport || binary.BigEndian.Uint16(seg[2:]) != m.sport {
		return 0, false
	}
	fl := seg[13]
	if fl&(tcpSYN|tcpACK) != tcpSYN|tcpACK && fl&tcpRST == 0 {
		return 0, false
	}
	idx := int(binary.BigEndian.Uint32(seg[8:]) - 1 - m.seqBase)
	return idx, idx >= 0 && idx < m.t.o.max*m.t.o.nprobes
}

func (m *tcpMethod) finished(int) {}
func (m *tcpMethod) close()       { m.pc.Close() }
