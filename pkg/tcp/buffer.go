package tcp

// ring is a byte ring that grows on demand up to a limit: the send buffer
// (bytes from SND.UNA on, so it is the retransmission queue) and the
// receive buffer (unread in-order bytes, then out-of-order bytes at their
// offset from RCV.NXT). Memory is allocated as data arrives, not at
// connection setup, and kept while the connection is busy (freeing it
// each time the ring empties made it regrow by doubling on every burst:
// half of all allocation in bulk transfer); the endpoint gives it back
// after the rings have stayed empty for ringIdle, so an idle connection
// holds none.
type ring struct {
	b    []byte
	head int // index of the byte at offset 0
	n    int // bytes held from offset 0 (the readable or queued part)
}

const ringMinAlloc = 4096

// The limits of buffer auto-tuning: SO_RCVBUF grows toward twice what
// the application reads per round trip (rcvSpaceAdjustLocked) up to
// autoRcvBufMax, SO_SNDBUF toward twice the congestion window
// (sndBufExpandLocked) up to autoSndBufMax, unless the application set
// them (Linux net.ipv4.tcp_rmem[2] and tcp_wmem[2]).
const (
	autoRcvBufMax = 6 << 20
	autoSndBufMax = 4 << 20
)

// capFor is the allocation ensure(size) leaves: len(r.b) if that holds
// size, else the next doubling.
func (r *ring) capFor(size int) int {
	if size <= len(r.b) {
		return len(r.b)
	}
	c := max(len(r.b), ringMinAlloc)
	for c < size {
		c *= 2
	}
	return c
}

// ensure makes room for offsets below size (size ≤ the caller's limit)
// and returns how many bytes the ring grew by (the caller charges them:
// endpoint.ringGrowLocked).
func (r *ring) ensure(size int) int {
	if size <= len(r.b) {
		return 0
	}
	return r.resize(r.capFor(size))
}

// resize reallocates the ring to c bytes, keeping offsets below c, and
// returns the growth (negative when it shrank).
func (r *ring) resize(c int) int {
	old := len(r.b)
	nb := make([]byte, c)
	// Unwrap: everything that may hold data (the whole old ring, since
	// out-of-order bytes may sit past n) moves to offset order.
	if len(r.b) > 0 {
		k := copy(nb, r.b[r.head:])
		copy(nb[k:], r.b[:r.head])
	}
	r.b, r.head = nb, 0
	return c - old
}

// put copies p to offsets off… (which must be below len(r.b)).
func (r *ring) put(off int, p []byte) {
	i := (r.head + off) % len(r.b)
	k := copy(r.b[i:], p)
	copy(r.b, p[k:])
}

// get copies len(p) bytes from offset off into p.
func (r *ring) get(off int, p []byte) {
	i := (r.head + off) % len(r.b)
	k := copy(p, r.b[i:])
	copy(p[k:], r.b[:len(p)-k])
}

// consume drops k bytes from the front.
func (r *ring) consume(k int) {
	r.n -= k
	if len(r.b) > 0 {
		r.head = (r.head + k) % len(r.b)
	}
}

// release gives the memory back when nothing is held (see ringIdle) and
// returns how many bytes it freed.
func (r *ring) release() int {
	if r.n != 0 {
		return 0
	}
	k := len(r.b)
	r.b, r.head = nil, 0
	return k
}
