package transport

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// DatagramOverhead is what each queued datagram is charged beyond its
// payload against SO_RCVBUF, standing in for Linux's sk_buff truesize, so
// a flood of empty datagrams is bounded too.
const DatagramOverhead = 256

// Datagram is one received datagram (or, on an error queue, one ICMP
// error) waiting to be read.
type Datagram struct {
	// Data is a view of the received packet (zero copy: the stack never
	// modifies received bytes).
	Data []byte
	From netip.AddrPort
	// Control is the ancillary data recvmsg may return; the endpoint
	// fills what its options ask for.
	Control ControlMessages
}

// DatagramQueue is the bounded receive queue of a datagram endpoint. The
// packet path pushes without taking the endpoint's lock; readers pop. It
// has its own lock, a leaf.
type DatagramQueue struct {
	mu    sync.Mutex
	items []Datagram // a ring: head is items[start]
	start int
	n     int
	bytes int
	drops atomic.Uint64
}

// Push queues d unless charging it would exceed limit bytes; a refused
// datagram is counted in Drops. An empty queue always takes one datagram,
// as Linux admits one whenever the queue is under its limit.
func (q *DatagramQueue) Push(d Datagram, limit int) bool {
	size := len(d.Data) + DatagramOverhead
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n > 0 && q.bytes+size > limit {
		q.drops.Add(1)
		return false
	}
	if q.n == len(q.items) {
		q.grow()
	}
	q.items[(q.start+q.n)%len(q.items)] = d
	q.n++
	q.bytes += size
	return true
}

func (q *DatagramQueue) grow() {
	nb := make([]Datagram, max(4, 2*len(q.items)))
	for i := 0; i < q.n; i++ {
		nb[i] = q.items[(q.start+i)%len(q.items)]
	}
	q.items, q.start = nb, 0
}

// Pop removes and returns the oldest datagram; peek leaves it queued.
func (q *DatagramQueue) Pop(peek bool) (Datagram, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return Datagram{}, false
	}
	d := q.items[q.start]
	if !peek {
		q.items[q.start] = Datagram{}
		q.start = (q.start + 1) % len(q.items)
		q.n--
		q.bytes -= len(d.Data) + DatagramOverhead
		if q.n == 0 {
			q.start = 0
			if len(q.items) > 64 {
				q.items = nil // give back a burst's memory
			}
		}
	}
	return d, true
}

// Len returns the number of queued datagrams.
func (q *DatagramQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// NextLen returns the length of the next datagram's payload (what FIONREAD
// reports for a datagram socket), or 0 and false when empty.
func (q *DatagramQueue) NextLen() (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, false
	}
	return len(q.items[q.start].Data), true
}

// Bytes returns the payload bytes queued (netstat's Recv-Q).
func (q *DatagramQueue) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes - q.n*DatagramOverhead
}

// Drops counts the datagrams refused for a full queue.
func (q *DatagramQueue) Drops() uint64 { return q.drops.Load() }

// Clear drops everything queued (on close).
func (q *DatagramQueue) Clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items, q.start, q.n, q.bytes = nil, 0, 0, 0
}

// CopyOut copies src into the buffers in order (scatter) and returns the
// bytes copied.
func CopyOut(dst [][]byte, src []byte) int {
	n := 0
	for _, b := range dst {
		if len(src) == 0 {
			break
		}
		c := copy(b, src)
		src = src[c:]
		n += c
	}
	return n
}

// TotalLen is the sum of the buffers' lengths.
func TotalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// Gather copies the buffers in order into dst, which must hold
// TotalLen(bufs) bytes, and returns the bytes written.
func Gather(dst []byte, bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += copy(dst[n:], b)
	}
	return n
}
