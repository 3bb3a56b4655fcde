// Package isn owns the initial sequence numbers a TCP endpoint picks: the
// RFC 6528 generator for ordinary connections, and SYN cookies (RFC 4987
// §3.6), which let a listener under a SYN flood answer a SYN without
// keeping state and rebuild the connection from the ACK, modelled on
// Linux's net/ipv4/syncookies.c, including its encoding of TCP options in
// the low bits of the SYN-ACK's timestamp.
//
// The keyed hash is HMAC-SHA256 from the standard library. Generators and
// Cookies are immutable once made and safe for concurrent use; time is
// passed in, so a fixed seed makes them deterministic for tests.
package isn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/stackbox/stackbox/pkg/tcp/seqnum"
)

// key is a 256-bit secret: from crypto/rand when seed is 0, otherwise
// derived from the seed and a label so that the generator's and the
// cookies' keys differ for the same seed.
func key(seed uint64, label string) []byte {
	if seed == 0 {
		k := make([]byte, sha256.Size)
		rand.Read(k) // never fails (crypto/rand's documented guarantee)
		return k
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	k := sha256.Sum256(append([]byte(label), b[:]...))
	return k[:]
}

// keyedHash is the first 32 bits of HMAC-SHA256(key, extra || 4-tuple).
// IPv4 addresses, mapped or not, hash as their IPv4-mapped form, so the
// two spellings of one peer agree; zones are not part of the tuple.
func keyedHash(k []byte, local, remote netip.AddrPort, extra ...byte) uint32 {
	var msg [64]byte
	b := append(msg[:0], extra...)
	for _, ap := range [2]netip.AddrPort{local, remote} {
		a := ap.Addr().Unmap().As16()
		b = append(b, a[:]...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	m := hmac.New(sha256.New, k)
	m.Write(b)
	return binary.BigEndian.Uint32(m.Sum(nil))
}

// Generator makes RFC 6528 initial sequence numbers.
type Generator struct{ key []byte }

// NewGenerator returns a generator keyed from seed, or from crypto/rand
// when seed is 0 (what a real stack must use: a guessable key makes ISNs
// predictable, RFC 6528 §3).
func NewGenerator(seed uint64) *Generator {
	return &Generator{key: key(seed, "stackbox/tcp/isn generator")}
}

// Tick is the period of RFC 6528's timer M (RFC 9293 §3.4.1).
const Tick = 4 * time.Microsecond

// ISN returns M + F(localip, localport, remoteip, remoteport, secretkey)
// (RFC 6528 §3): M counts 4 µs ticks of now, so successive connections of
// one 4-tuple get increasing ISNs (protecting a new incarnation from old
// duplicates), while F keeps one tuple's sequence space unguessable from
// another's.
func (g *Generator) ISN(local, remote netip.AddrPort, now time.Time) seqnum.Value {
	m := uint32(now.UnixNano() / int64(Tick))
	return seqnum.Value(m + keyedHash(g.key, local, remote))
}
