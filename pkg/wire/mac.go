package wire

import (
	"errors"
	"net"
)

// MAC is an IEEE 802 48-bit hardware address, held by value so that views
// and builders do not allocate.
type MAC [6]byte

// Well-known hardware addresses.
var (
	BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ZeroMAC      = MAC{}
)

// String formats the address as Linux tools do: lower-case, colon separated.
func (m MAC) String() string {
	const hexDigits = "0123456789abcdef"
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		b[i*3] = hexDigits[v>>4]
		b[i*3+1] = hexDigits[v&0xf]
	}
	return string(b[:])
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == ZeroMAC }

// HardwareAddr returns m as a net.HardwareAddr (a fresh slice).
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

// MACFrom copies a 6-byte hardware address into a MAC.
func MACFrom(b []byte) (MAC, error) {
	var m MAC
	if len(b) != len(m) {
		return m, errors.New("wire: hardware address is not 6 bytes")
	}
	copy(m[:], b)
	return m, nil
}

// ParseMAC parses "aa:bb:cc:dd:ee:ff" (and the other forms net.ParseMAC
// accepts for 48-bit addresses).
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	return MACFrom(hw)
}
