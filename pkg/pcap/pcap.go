// Package pcap reads and writes the classic libpcap capture file format
// (the one tcpdump -w writes and Wireshark/tshark open), for Ethernet
// frames. It owns only the file format: the sniffer link endpoint and tests
// that hand captures to tshark use it.
//
// Format: a 24-byte global header (magic 0xa1b2c3d4 for microsecond or
// 0xa1b23c4d for nanosecond timestamps, version 2.4, snap length, link type)
// followed by records of a 16-byte header (seconds, sub-second, captured
// length, original length) and the captured bytes.
package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// LinkTypeEthernet is LINKTYPE_ETHERNET (DLT_EN10MB).
const LinkTypeEthernet = 1

const (
	magicMicros = 0xa1b2c3d4
	magicNanos  = 0xa1b23c4d
	// DefaultSnapLen keeps whole frames, jumbo frames and GSO super-packets
	// included.
	DefaultSnapLen = 262144
)

// Writer appends frames to a capture. It is safe for concurrent use: a
// sniffer sees frames from the reader and writer goroutines of a link.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	snapLen int
	hdr     [16]byte
}

// NewWriter writes a global header (nanosecond timestamps, Ethernet) to w
// and returns a Writer for the records. snapLen ≤ 0 means DefaultSnapLen.
func NewWriter(w io.Writer, snapLen int) (*Writer, error) {
	if snapLen <= 0 {
		snapLen = DefaultSnapLen
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], magicNanos)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snapLen))
	binary.LittleEndian.PutUint32(h[20:], LinkTypeEthernet)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap: writing file header: %w", err)
	}
	return &Writer{w: w, snapLen: snapLen}, nil
}

// WriteFrame appends one frame captured at time ts, truncated to the snap
// length.
func (pw *Writer) WriteFrame(ts time.Time, frame []byte) error {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	captured := frame
	if len(captured) > pw.snapLen {
		captured = captured[:pw.snapLen]
	}
	ns := ts.UnixNano()
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(captured)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(len(frame)))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("pcap: writing record header: %w", err)
	}
	if _, err := pw.w.Write(captured); err != nil {
		return fmt.Errorf("pcap: writing record: %w", err)
	}
	return nil
}

// Record is one frame read back from a capture.
type Record struct {
	Time    time.Time
	OrigLen int
	Data    []byte
}

// Reader reads the records of a capture.
type Reader struct {
	r        io.Reader
	order    binary.ByteOrder
	nanos    bool
	snapLen  uint32
	LinkType uint32
}

// ErrFormat is wrapped by every error about a file that is not a valid capture.
var ErrFormat = errors.New("pcap: not a valid capture file")

// NewReader reads and checks the global header.
func NewReader(r io.Reader) (*Reader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: file header: %v", ErrFormat, err)
	}
	pr := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[0:]) == magicMicros:
		pr.order = binary.LittleEndian
	case binary.LittleEndian.Uint32(h[0:]) == magicNanos:
		pr.order, pr.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[0:]) == magicMicros:
		pr.order = binary.BigEndian
	case binary.BigEndian.Uint32(h[0:]) == magicNanos:
		pr.order, pr.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%w: bad magic %#x", ErrFormat, binary.LittleEndian.Uint32(h[0:]))
	}
	pr.snapLen = pr.order.Uint32(h[16:])
	pr.LinkType = pr.order.Uint32(h[20:])
	return pr, nil
}

// maxRecord bounds a record's captured length, so a corrupt file cannot make
// the reader allocate without limit.
const maxRecord = 1 << 20

// Next returns the next record, or io.EOF at a clean end of file.
func (pr *Reader) Next() (Record, error) {
	var h [16]byte
	if _, err := io.ReadFull(pr.r, h[:]); err != nil {
		if err == io.EOF {
			return Record{}, io.EOF
		}
		return Record{}, fmt.Errorf("%w: record header: %v", ErrFormat, err)
	}
	sec, sub := pr.order.Uint32(h[0:]), pr.order.Uint32(h[4:])
	incl, orig := pr.order.Uint32(h[8:]), pr.order.Uint32(h[12:])
	if incl > maxRecord || incl > orig {
		return Record{}, fmt.Errorf("%w: record of %d captured bytes (original %d)", ErrFormat, incl, orig)
	}
	data := make([]byte, incl)
	if _, err := io.ReadFull(pr.r, data); err != nil {
		return Record{}, fmt.Errorf("%w: record data: %v", ErrFormat, err)
	}
	nsec := int64(sub)
	if !pr.nanos {
		nsec *= 1000
	}
	return Record{Time: time.Unix(int64(sec), nsec), OrigLen: int(orig), Data: data}, nil
}
