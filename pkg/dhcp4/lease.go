package dhcp4

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is an address bound from a server's DHCPACK, and what is kept of
// it in the lease file (JSON) for INIT-REBOOT (RFC 2131 §3.2).
type Lease struct {
	Interface string         `json:"interface"`
	Address   netip.Prefix   `json:"address"` // yiaddr with the subnet mask's length
	Broadcast netip.Addr     `json:"broadcast,omitzero"`
	Server    netip.Addr     `json:"server"` // server identifier (option 54)
	Routers   []netip.Addr   `json:"routers,omitempty"`
	DNS       []netip.Addr   `json:"dns,omitempty"`
	Domain    string         `json:"domain,omitempty"`
	MTU       int            `json:"mtu,omitempty"`
	Obtained  time.Time      `json:"obtained"` // when the REQUEST that got it was sent (§4.4.1)
	Duration  Seconds        `json:"lease"`
	T1        Seconds        `json:"t1"`
	T2        Seconds        `json:"t2"`
	Msg       *dhcpv4.DHCPv4 `json:"-"` // the ACK itself (nil for a lease read from the file)
}

// Seconds is a duration kept as whole seconds in JSON, as DHCP counts.
type Seconds time.Duration

func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(int64(time.Duration(s) / time.Second))
}

func (s *Seconds) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if n < 0 || n > 0xffffffff {
		return fmt.Errorf("dhcp4: %d seconds out of range", n)
	}
	*s = Seconds(time.Duration(n) * time.Second)
	return nil
}

func (s Seconds) D() time.Duration { return time.Duration(s) }

// Expiry, RenewAt and RebindAt are the lease's deadlines (§4.4.5).
func (l *Lease) Expiry() time.Time   { return l.Obtained.Add(l.Duration.D()) }
func (l *Lease) RenewAt() time.Time  { return l.Obtained.Add(l.T1.D()) }
func (l *Lease) RebindAt() time.Time { return l.Obtained.Add(l.T2.D()) }

// leaseFromACK reads the lease in ack, obtained at t.
func leaseFromACK(dev string, ack *dhcpv4.DHCPv4, t time.Time) (*Lease, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return nil, errors.New("dhcp4: ACK without an address")
	}
	bits := 0
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 {
			return nil, errors.New("dhcp4: bad subnet mask")
		}
		bits = ones
	} else {
		bits = classfulBits(ip) // RFC 2131 §3.3 leaves the default to the client; classful as udhcpc
	}
	l := &Lease{Interface: dev, Address: netip.PrefixFrom(ip, bits), Obtained: t, Msg: ack}
	if b, ok := netip.AddrFromSlice(ack.BroadcastAddress().To4()); ok {
		l.Broadcast = b
	} else if bits < 31 {
		l.Broadcast = broadcastOf(l.Address)
	}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = s
	} else {
		return nil, errors.New("dhcp4: ACK without a server identifier")
	}
	l.Routers = addrs(ack.Router())
	l.DNS = addrs(ack.DNS())
	l.Domain = ack.DomainName()
	if m := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(m) == 2 {
		if v := int(m[0])<<8 | int(m[1]); v >= 68 { // RFC 2132 §5.1 minimum
			l.MTU = v
		}
	}
	// §4.4.5: T1 defaults to half the lease, T2 to 7/8 of it.
	d := ack.IPAddressLeaseTime(0)
	if d <= 0 {
		return nil, errors.New("dhcp4: ACK without a lease time")
	}
	l.Duration = Seconds(d)
	l.T1 = Seconds(ack.IPAddressRenewalTime(d / 2))
	l.T2 = Seconds(ack.IPAddressRebindingTime(d * 7 / 8))
	if l.T2 > l.Duration || l.T2 <= 0 {
		l.T2 = Seconds(d * 7 / 8)
	}
	if l.T1 > l.T2 || l.T1 <= 0 {
		l.T1 = Seconds(l.T2.D() * 4 / 7)
	}
	return l, nil
}

func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

func addrs(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok {
			out = append(out, a)
		}
	}
	return out
}

// ParseLease reads a lease file's contents and checks what INIT-REBOOT
// relies on: an IPv4 address and server, and T1 ≤ T2 ≤ the lease.
func ParseLease(b []byte) (*Lease, error) {
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("dhcp4: lease file: %w", err)
	}
	switch {
	case !l.Address.IsValid() || !l.Address.Addr().Is4() || l.Address.Addr().IsUnspecified():
		return nil, errors.New("dhcp4: lease file: no IPv4 address")
	case !l.Server.Is4():
		return nil, errors.New("dhcp4: lease file: no IPv4 server")
	case l.Duration <= 0 || l.T1 > l.T2 || l.T2 > l.Duration:
		return nil, errors.New("dhcp4: lease file: bad lease times")
	case l.Broadcast.IsValid() && !l.Broadcast.Is4():
		return nil, errors.New("dhcp4: lease file: bad broadcast address")
	}
	for _, a := range append(append([]netip.Addr{}, l.Routers...), l.DNS...) {
		if !a.Is4() {
			return nil, errors.New("dhcp4: lease file: bad router or DNS address")
		}
	}
	if l.MTU != 0 && (l.MTU < 68 || l.MTU > 65535) {
		return nil, errors.New("dhcp4: lease file: bad MTU")
	}
	return &l, nil
}

// ReadLease reads the lease file at path.
func ReadLease(path string) (*Lease, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseLease(b)
}

// WriteLease writes l to path atomically (a temporary file renamed over it).
func WriteLease(path string, l *Lease) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lease-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
