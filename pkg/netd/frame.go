package netd

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
)

// Frames carry a data socket's traffic on its upgraded stream (see the
// package doc, Data sockets). A frame is a kind byte, a 4-byte big-endian
// payload length and the payload.
const (
	frameData   = 'D' // stream bytes, either way
	frameShutWr = 'W' // client: shutdown(SHUT_WR)
	frameEOF    = 'F' // server: the peer closed its side; reads return 0 from now on
	frameError  = 'E' // server: errno (4 bytes). Streams: the socket failed, the last frame.
	// Datagram sockets: a pending error, returned once by a read.
	frameSend   = 'S' // client: a message to send (msg layout); answered
	frameRecv   = 'R' // server: a message received (msg layout)
	frameErrQ   = 'Q' // server: a message of the error queue (msg layout)
	frameSetOpt = 'O' // client: level, name, value (int32 each); answered
	frameGetOpt = 'G' // client: level, name; answered
	frameAnswer = 'A' // server: errno (uint32) and value (int32: bytes sent, option value)
)

const (
	frameHeaderLen = 5
	// maxChunk is the most stream data one frame carries.
	maxChunk = 64 << 10
	// maxFrame bounds what a reader accepts: the largest datagram (64 KiB)
	// with its address and control messages.
	maxFrame = 1<<16 + 1<<12
)

// writeFrame writes one frame with a single writev: the payload parts are
// not copied.
func writeFrame(w io.Writer, kind byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var hdr [frameHeaderLen]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(n))
	bufs := make(net.Buffers, 0, 1+len(parts))
	bufs = append(bufs, hdr[:])
	for _, p := range parts {
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
	}
	_, err := bufs.WriteTo(w)
	return err
}

// parseFrameHeader checks a frame header and returns its kind and length.
func parseFrameHeader(hdr []byte) (kind byte, n int, err error) {
	kind, n = hdr[0], int(binary.BigEndian.Uint32(hdr[1:]))
	if n > maxFrame {
		return 0, 0, fmt.Errorf("netd: frame %q of %d bytes (limit %d)", kind, n, maxFrame)
	}
	return kind, n, nil
}

// readFrame reads one whole frame into buf (grown as needed).
func readFrame(r io.Reader, buf []byte) (kind byte, payload []byte, err error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	kind, n, err := parseFrameHeader(hdr[:])
	if err != nil {
		return 0, nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return kind, buf, nil
}

// msgHeader encodes the part of a message frame before its data: flags
// (uint32), the address as text (length byte first; empty for none) and
// the control messages (uint16 length first).
func msgHeader(flags int, addr netip.AddrPort, oob []byte) []byte {
	var a []byte
	if addr.IsValid() {
		a, _ = addr.MarshalText()
	}
	b := make([]byte, 0, 7+len(a)+len(oob))
	b = binary.BigEndian.AppendUint32(b, uint32(flags))
	b = append(b, byte(len(a)))
	b = append(b, a...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(oob)))
	return append(b, oob...)
}

// parseMsg decodes a message frame's payload; oob and data alias p.
func parseMsg(p []byte) (flags int, addr netip.AddrPort, oob, data []byte, err error) {
	bad := func(what string) error { return fmt.Errorf("netd: bad message frame: %s", what) }
	if len(p) < 5 {
		return 0, addr, nil, nil, bad("short")
	}
	flags = int(binary.BigEndian.Uint32(p))
	al := int(p[4])
	p = p[5:]
	if len(p) < al+2 {
		return 0, addr, nil, nil, bad("short address")
	}
	if al > 0 {
		if addr, err = netip.ParseAddrPort(string(p[:al])); err != nil {
			return 0, addr, nil, nil, bad(err.Error())
		}
	}
	p = p[al:]
	ol := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if len(p) < ol {
		return 0, addr, nil, nil, bad("short control messages")
	}
	return flags, addr, p[:ol:ol], p[ol:], nil
}

// answerPayload encodes an answer frame's payload.
func answerPayload(errno syscall.Errno, v int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(errno))
	return binary.BigEndian.AppendUint32(b, uint32(int32(v)))
}

func parseAnswer(p []byte) (syscall.Errno, int, error) {
	if len(p) != 8 {
		return 0, 0, fmt.Errorf("netd: answer frame of %d bytes", len(p))
	}
	return syscall.Errno(binary.BigEndian.Uint32(p)), int(int32(binary.BigEndian.Uint32(p[4:]))), nil
}

func int32s(vs ...int) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, uint32(int32(v)))
	}
	return b
}

func parseInt32s(p []byte, n int) ([]int, error) {
	if len(p) != 4*n {
		return nil, fmt.Errorf("netd: option frame of %d bytes, want %d", len(p), 4*n)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = int(int32(binary.BigEndian.Uint32(p[4*i:])))
	}
	return out, nil
}

func parseErrno(p []byte) (syscall.Errno, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("netd: error frame of %d bytes", len(p))
	}
	return syscall.Errno(binary.BigEndian.Uint32(p)), nil
}
