package isn

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// Cookie layout, as Linux's: the low 24 bits of the cookie (after taking
// away the first hash and the client's ISN) carry the data, the top 8 the
// low bits of a counter of CookiePeriod ticks.
const (
	cookieBits = 24
	cookieMask = 1<<cookieBits - 1
	// CookiePeriod is the counter's tick.
	CookiePeriod = 64 * time.Second
	// MaxCookieAge is Linux's MAX_SYNCOOKIE_AGE: a cookie is accepted
	// while the counter has advanced by less than this since it was made,
	// so for between 64 and 128 seconds.
	MaxCookieAge = 2
	mssBits      = 2 // the MSS index takes the low 2 bits
)

// Linux's msstab values (net/ipv4/syncookies.c and net/ipv6/syncookies.c),
// ascending. The IPv6 entries are the MTUs 1280, 1480, 1500 and 9000 less
// the 60 bytes of IPv6 and TCP headers.
var (
	msstab4 = [4]int{536, 1300, 1440, 1460}
	msstab6 = [4]int{1220, 1420, 1440, 8940}
)

// MSSTable returns the MSS values a cookie can encode for connections over
// addr's family.
func MSSTable(addr netip.Addr) [4]int {
	if addr.Unmap().Is4() {
		return msstab4
	}
	return msstab6
}

// Cookies makes and checks SYN cookies under one secret.
type Cookies struct{ key []byte }

// NewCookies returns cookies keyed from seed, or from crypto/rand when seed
// is 0.
func NewCookies(seed uint64) *Cookies {
	return &Cookies{key: key(seed, "stackbox/tcp/isn syncookie")}
}

func counter(now time.Time) uint32 { return uint32(now.Unix() >> 6) } // CookiePeriod ticks

// hash0 is Linux's first cookie_hash, over the 4-tuple alone.
func (c *Cookies) hash0(local, remote netip.AddrPort) uint32 {
	return keyedHash(c.key, local, remote, 0)
}

// data is the 24-bit field for counter count and MSS index idx. Linux adds
// the index to a hash of the tuple and counter, so a cookie changed in its
// low bits still decodes, to a neighbouring MSS; here the index is hashed
// too and sits in the clear beside 22 bits of the hash, so any change to
// the cookie fails the check.
func (c *Cookies) data(local, remote netip.AddrPort, count uint32, idx int) uint32 {
	var extra [6]byte
	extra[0] = 1
	binary.BigEndian.PutUint32(extra[1:], count)
	extra[5] = byte(idx)
	h := keyedHash(c.key, local, remote, extra[:]...)
	return (h<<mssBits | uint32(idx)) & cookieMask
}

// Make returns the cookie to use as the ISN of the SYN-ACK answering a SYN
// from remote to local with sequence number clientISN and MSS option mss
// (536 if the SYN had none, RFC 9293 §3.7.1), and the index into MSSTable
// of the MSS the cookie carries: the largest entry not above mss, or the
// smallest if mss is below them all (as Linux). The connection must then
// use that MSS, since it is all the ACK will bring back.
func (c *Cookies) Make(local, remote netip.AddrPort, clientISN seqnum.Value, mss int, now time.Time) (cookie seqnum.Value, mssIndex int) {
	tab := MSSTable(local.Addr())
	for i, m := range tab { // ascending
		if m <= mss {
			mssIndex = i
		}
	}
	count := counter(now)
	v := c.hash0(local, remote) + uint32(clientISN) + count<<cookieBits + c.data(local, remote, count, mssIndex)
	return seqnum.Value(v), mssIndex
}

// Check validates the ACK completing a cookie handshake: ack is its
// acknowledgment number (the cookie plus one) and clientISN its sequence
// number less one. It returns the MSS the cookie carries, or ok false if
// the cookie was not made by c for this 4-tuple and client ISN, or is
// MaxCookieAge or more counter ticks old.
func (c *Cookies) Check(local, remote netip.AddrPort, clientISN seqnum.Value, ack seqnum.Value, now time.Time) (mss int, ok bool) {
	v := uint32(ack) - 1 - c.hash0(local, remote) - uint32(clientISN)
	count := counter(now)
	diff := (count - v>>cookieBits) & (1<<(32-cookieBits) - 1)
	if diff >= MaxCookieAge {
		return 0, false
	}
	idx := int(v & (1<<mssBits - 1))
	if v&cookieMask != c.data(local, remote, count-diff, idx) {
		return 0, false
	}
	return MSSTable(local.Addr())[idx], true
}

// Timestamp option encoding, Linux's cookie_init_timestamp: when the SYN
// carried timestamps, the options a cookie has no room for ride in the low
// bits of the SYN-ACK's TSval and come back in the ACK's TSecr.
const (
	tsBits      = 6
	tsWscale    = 0xf // the window scale shift, or 0xf for none
	tsSACK      = 1 << 4
	tsECN       = 1 << 5
	maxWscale   = 14 // RFC 7323 §2.3
	noWscaleVal = -1
)

// EncodeTSOptions returns the TSval to send in a cookie SYN-ACK in place of
// tsval: its low 6 bits replaced by the client's window scale (wscale, or
// none if negative; above 14 is taken as 14, RFC 7323 §2.3) and whether it
// offered SACK and ECN. The result is never later than tsval, so the next
// timestamps do not go backwards (PAWS, RFC 7323 §5), and never 0, which
// DecodeTSOptions rejects. Encode before adding any per-connection
// timestamp offset, and take it away before decoding.
func EncodeTSOptions(tsval uint32, wscale int, sackOK, ecn bool) uint32 {
	opts := uint32(tsWscale)
	if wscale >= 0 {
		opts = uint32(min(wscale, maxWscale))
	}
	if sackOK {
		opts |= tsSACK
	}
	if ecn {
		opts |= tsECN
	}
	ts := tsval&^(1<<tsBits-1) | opts
	if ts > tsval || ts == 0 {
		ts -= 1 << tsBits // wraps to the previous period, still "earlier" mod 2^32
	}
	return ts
}

// DecodeTSOptions recovers the options EncodeTSOptions put in the TSecr of
// the ACK completing a cookie handshake: wscale is -1 if the client did not
// offer window scaling. ok is false for a zero TSecr, which echoes nothing
// (Linux ignores a zero TSecr likewise) and which EncodeTSOptions never
// sends.
func DecodeTSOptions(tsecr uint32) (wscale int, sackOK, ecn, ok bool) {
	if tsecr == 0 {
		return 0, false, false, false
	}
	wscale = int(tsecr & tsWscale)
	if wscale == tsWscale {
		wscale = noWscaleVal
	}
	return wscale, tsecr&tsSACK != 0, tsecr&tsECN != 0, true
}
