package wire

import (
	"encoding/binary"
	"net/netip"
)

// Ethernet II framing (IEEE 802.3 with an EtherType, RFC 894) and IEEE
// 802.1Q VLAN tags, including 802.1ad QinQ stacks of two tags. Frames start
// at the destination MAC; there is no preamble and no FCS. Short frames may
// carry padding after the payload: the layer above trims it by its own length
// field (ParseIPv4 does, ParseARP does).

// EtherType values (IEEE registry) that the stack handles or recognises.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeIPv6 uint16 = 0x86dd
	// EtherTypeVLAN is the 802.1Q customer tag TPID.
	EtherTypeVLAN uint16 = 0x8100
	// EtherTypeQinQ is the 802.1ad service tag TPID (outer tag of a QinQ stack).
	EtherTypeQinQ uint16 = 0x88a8
	// EtherTypeQinQLegacy is the pre-standard service tag TPID some switches still send.
	EtherTypeQinQLegacy uint16 = 0x9100
)

// Ethernet sizes.
const (
	EthernetHeaderLen = 14 // destination, source, EtherType
	VLANTagLen        = 4  // TPID and TCI
	// EthernetMaxTags is how many VLAN tags ParseEthernet accepts (QinQ).
	EthernetMaxTags = 2
	// EthernetMinFrameLen is the shortest frame on the wire without the FCS;
	// senders pad shorter frames up to it.
	EthernetMinFrameLen = 60
	// ethernetMinType: values below it are 802.3 lengths, not EtherTypes.
	ethernetMinType = 0x0600
)

// VLANTag is one 802.1Q tag: the TPID that introduced it and the fields of
// its tag control information.
type VLANTag struct {
	// TPID is EtherTypeVLAN, EtherTypeQinQ or EtherTypeQinQLegacy. A builder
	// given 0 writes EtherTypeVLAN.
	TPID uint16
	PCP  uint8  // priority code point, 3 bits
	DEI  bool   // drop eligible indicator
	VID  uint16 // VLAN identifier, 12 bits
}

// tci packs the tag control information (802.1Q §9.6).
func (t VLANTag) tci() uint16 {
	v := uint16(t.PCP&7)<<13 | t.VID&0x0fff
	if t.DEI {
		v |= 1 << 12
	}
	return v
}

func ethernetIsTPID(t uint16) bool {
	return t == EtherTypeVLAN || t == EtherTypeQinQ || t == EtherTypeQinQLegacy
}

// Ethernet is a validated view of an Ethernet II frame, made by ParseEthernet.
type Ethernet []byte

// ParseEthernet validates an Ethernet II frame with up to two VLAN tags.
// A frame whose type field is an 802.3 length (below 0x0600) gives
// ErrUnsupported, as does a third stacked tag. Jumbo frames are accepted:
// the payload length is not limited here.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetHeaderLen {
		return nil, truncated("ethernet", "header", EthernetHeaderLen, len(b))
	}
	off := 12
	for tags := 0; ; tags++ {
		t := binary.BigEndian.Uint16(b[off:])
		if !ethernetIsTPID(t) {
			if t < ethernetMinType {
				return nil, newError(ErrUnsupported, "ethernet", "ethertype",
					"%#04x is an 802.3 length field, not an EtherType", t)
			}
			return Ethernet(b), nil
		}
		if tags == EthernetMaxTags {
			return nil, newError(ErrUnsupported, "ethernet", "vlan tag",
				"more than %d stacked tags", EthernetMaxTags)
		}
		off += VLANTagLen
		if len(b) < off+2 {
			return nil, truncated("ethernet", "vlan tag", off+2, len(b))
		}
	}
}

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// TagCount returns the number of VLAN tags, 0 to EthernetMaxTags.
func (e Ethernet) TagCount() int {
	n := 0
	for n < EthernetMaxTags && ethernetIsTPID(binary.BigEndian.Uint16(e[12+n*VLANTagLen:])) {
		n++
	}
	return n
}

// Tag returns tag i, 0 being the outermost. It returns the zero VLANTag when
// i is not below TagCount.
func (e Ethernet) Tag(i int) VLANTag {
	if i < 0 || i >= e.TagCount() {
		return VLANTag{}
	}
	off := 12 + i*VLANTagLen
	tci := binary.BigEndian.Uint16(e[off+2:])
	return VLANTag{
		TPID: binary.BigEndian.Uint16(e[off:]),
		PCP:  uint8(tci >> 13),
		DEI:  tci&(1<<12) != 0,
		VID:  tci & 0x0fff,
	}
}

// VLANID returns the VLAN identifier of tag i (0 outermost), 0 if absent.
func (e Ethernet) VLANID(i int) uint16 { return e.Tag(i).VID }

// PCP returns the priority code point of tag i (0 outermost), 0 if absent.
func (e Ethernet) PCP(i int) uint8 { return e.Tag(i).PCP }

// DEI returns the drop eligible indicator of tag i (0 outermost), false if absent.
func (e Ethernet) DEI(i int) bool { return e.Tag(i).DEI }

// EtherType returns the type of the payload after any VLAN tags.
func (e Ethernet) EtherType() uint16 {
	return binary.BigEndian.Uint16(e[12+e.TagCount()*VLANTagLen:])
}

// HeaderLen returns the header length including VLAN tags.
func (e Ethernet) HeaderLen() int { return EthernetHeaderLen + e.TagCount()*VLANTagLen }

// Payload returns the bytes after the header, padding included.
func (e Ethernet) Payload() []byte { return e[e.HeaderLen():] }

// EthernetFields builds an Ethernet II header with up to two VLAN tags.
// Tags are held in a fixed array so building never allocates.
type EthernetFields struct {
	Dst, Src MAC
	// Tags[:NumTags] are written outermost first. NumTags above
	// EthernetMaxTags is treated as EthernetMaxTags.
	Tags      [EthernetMaxTags]VLANTag
	NumTags   int
	EtherType uint16 // of the payload
}

func (f *EthernetFields) numTags() int {
	return max(0, min(f.NumTags, EthernetMaxTags))
}

// Len returns the header length: 14 bytes plus 4 per tag.
func (f *EthernetFields) Len() int { return EthernetHeaderLen + f.numTags()*VLANTagLen }

// Encode writes the header to b[:f.Len()]; b must be at least that long.
// PCP and VID values wider than their fields are masked.
func (f *EthernetFields) Encode(b []byte) {
	_ = b[f.Len()-1]
	copy(b[0:6], f.Dst[:])
	copy(b[6:12], f.Src[:])
	off := 12
	for _, t := range f.Tags[:f.numTags()] {
		tpid := t.TPID
		if tpid == 0 {
			tpid = EtherTypeVLAN
		}
		binary.BigEndian.PutUint16(b[off:], tpid)
		binary.BigEndian.PutUint16(b[off+2:], t.tci())
		off += VLANTagLen
	}
	binary.BigEndian.PutUint16(b[off:], f.EtherType)
}

// IPv4MulticastMAC returns the Ethernet group address an IPv4 multicast
// address maps to: 01:00:5e followed by its low 23 bits (RFC 1112 §6.4).
// The result is meaningless for addresses outside 224.0.0.0/4, and the zero
// MAC for an address that is not IPv4.
func IPv4MulticastMAC(a netip.Addr) MAC {
	a = a.Unmap()
	if !a.Is4() {
		return MAC{}
	}
	b := a.As4()
	return MAC{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
}
