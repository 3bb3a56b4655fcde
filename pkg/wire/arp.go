package wire

import (
	"encoding/binary"
	"net/netip"
)

// ARP (RFC 826) for IPv4 over Ethernet, the only pairing the stack resolves.

// ARP operation codes (RFC 826).
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARPLen is the length of an Ethernet/IPv4 ARP packet.
const ARPLen = 28

const (
	arpHTypeEthernet = 1 // hardware type: Ethernet (10Mb), RFC 826 / IANA
)

// ARP is a validated view of an Ethernet/IPv4 ARP packet, made by ParseARP.
// It is exactly ARPLen bytes long: Ethernet padding after it is dropped.
type ARP []byte

// ParseARP validates an ARP packet whose hardware is Ethernet and whose
// protocol is IPv4; other pairings give ErrUnsupported naming the field.
// The operation is not checked: the stack ignores codes it does not handle.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, truncated("arp", "packet", ARPLen, len(b))
	}
	if v := binary.BigEndian.Uint16(b[0:]); v != arpHTypeEthernet {
		return nil, newError(ErrUnsupported, "arp", "hardware type", "%d, want 1 (Ethernet)", v)
	}
	if v := binary.BigEndian.Uint16(b[2:]); v != EtherTypeIPv4 {
		return nil, newError(ErrUnsupported, "arp", "protocol type", "%#04x, want 0x0800 (IPv4)", v)
	}
	if b[4] != 6 {
		return nil, newError(ErrUnsupported, "arp", "hardware length", "%d, want 6", b[4])
	}
	if b[5] != 4 {
		return nil, newError(ErrUnsupported, "arp", "protocol length", "%d, want 4", b[5])
	}
	return ARP(b[:ARPLen]), nil
}

// Op returns the operation: ARPRequest, ARPReply or another code.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[8:14]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(a[14:18])) }

// TargetMAC returns the target hardware address.
func (a ARP) TargetMAC() MAC { return MAC(a[18:24]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(a[24:28])) }

// IsGratuitous reports whether the packet announces the sender's own
// binding: sender and target IP are equal and not 0.0.0.0. Such a request
// (the common form) or reply updates caches that hold the address (RFC 5227
// §3 "ARP Announcement", RFC 5944 §4.6).
func (a ARP) IsGratuitous() bool {
	return [4]byte(a[14:18]) == [4]byte(a[24:28]) && [4]byte(a[14:18]) != [4]byte{}
}

// IsProbe reports whether the packet is an address conflict detection probe:
// a request with sender IP 0.0.0.0 (RFC 5227 §2.1.1), which must not update
// any cache.
func (a ARP) IsProbe() bool {
	return a.Op() == ARPRequest && [4]byte(a[14:18]) == [4]byte{}
}

// ARPFields builds an Ethernet/IPv4 ARP packet.
type ARPFields struct {
	Op        uint16
	SenderMAC MAC
	// SenderIP and TargetIP must be IPv4 (or IPv4-mapped IPv6); the zero
	// Addr is written as 0.0.0.0, as a probe's sender address is.
	SenderIP  netip.Addr
	TargetMAC MAC
	TargetIP  netip.Addr
}

// Len returns ARPLen.
func (f *ARPFields) Len() int { return ARPLen }

// Encode writes the packet to b[:ARPLen]; b must be at least that long.
func (f *ARPFields) Encode(b []byte) {
	_ = b[ARPLen-1]
	binary.BigEndian.PutUint16(b[0:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(b[2:], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], f.Op)
	copy(b[8:14], f.SenderMAC[:])
	ipv4PutAddr(b[14:18], f.SenderIP)
	copy(b[18:24], f.TargetMAC[:])
	ipv4PutAddr(b[24:28], f.TargetIP)
}
