package stack

// HeaderRoom is the headroom NewPacket reserves in front of the data: room
// for Ethernet with two VLAN tags (22), an IPv6 header with a fragment
// header and some extension headers, or an IPv4 header with options, and a
// transport header with options (60), so no layer has to copy.
const HeaderRoom = 192

// Packet is an outgoing packet under construction. Its bytes are
// buf[off:]; each layer prepends its header into the room in front. A
// Packet has one owner at a time: whoever builds it, then the stack once
// it is passed to WritePacket.
type Packet struct {
	buf   []byte
	off   int
	batch *TxBatch // where writeFrame puts the frame (WriteOptions.Batch)
}

// NewPacket returns a packet of n zero bytes with HeaderRoom in front.
func NewPacket(n int) *Packet {
	return &Packet{buf: make([]byte, HeaderRoom+n), off: HeaderRoom}
}

// NewPacketFrom returns a packet holding a copy of data with HeaderRoom in
// front.
func NewPacketFrom(data []byte) *Packet {
	p := NewPacket(len(data))
	copy(p.Bytes(), data)
	return p
}

// Bytes returns the packet's data: the headers prepended so far and the
// payload. The slice aliases the packet.
func (p *Packet) Bytes() []byte { return p.buf[p.off:] }

// Len returns the length of the data.
func (p *Packet) Len() int { return len(p.buf) - p.off }

// Headroom returns the bytes free in front of the data.
func (p *Packet) Headroom() int { return p.off }

// Prepend extends the data by n bytes at the front and returns them; it
// grows the buffer (one copy) if the headroom is short.
func (p *Packet) Prepend(n int) []byte {
	if n > p.off {
		nb := make([]byte, HeaderRoom+n+p.Len())
		copy(nb[HeaderRoom+n:], p.Bytes())
		p.buf, p.off = nb, HeaderRoom+n
	}
	p.off -= n
	return p.buf[p.off : p.off+n]
}

// TrimFront removes n bytes from the front of the data (they become
// headroom again).
func (p *Packet) TrimFront(n int) { p.off += min(n, p.Len()) }

// Clone returns an independent copy with the full headroom.
func (p *Packet) Clone() *Packet { return NewPacketFrom(p.Bytes()) }
