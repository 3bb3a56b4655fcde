package wget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostErr: the name did not resolve (wget's HOSTERR, fatal, exit 4).
type hostErr struct{ name string }

func (e *hostErr) Error() string { return "unable to resolve host address " + e.name }

// connErr: no address connected (CONREFUSED or CONERROR). The
// "failed: …" lines are already printed.
type connErr struct{ err error }

func (e *connErr) Error() string { return e.err.Error() }
func (e *connErr) Unwrap() error { return e.err }

// verifyErr: the certificate did not verify (VERIFCERTERR, exit 5).
type verifyErr struct{}

func (verifyErr) Error() string { return "certificate verification failed" }

// sslErr: the handshake failed otherwise (CONSSLERR).
type sslErr struct{ err error }

func (e *sslErr) Error() string { return e.err.Error() }

// strerror is the C library's text for an error: Go's errno text with
// a capital, and timeouts as ETIMEDOUT.
func strerror(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "Connection timed out"
	}
	var errno syscall.Errno
	var pe *os.PathError
	s := err.Error()
	if errors.As(err, &errno) {
		s = errno.Error()
	} else if errors.As(err, &pe) {
		s = pe.Err.Error()
	}
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// lookup resolves name, printing wget's "Resolving" line once per name
// (later connections use the run's cache, as wget's host cache).
func (r *run) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	r.mu.Lock()
	cached, ok := r.dns[name]
	r.mu.Unlock()
	if ok {
		return cached, nil
	}
	r.logf(logVerbose, "Resolving %s (%s)... ", name, name)
	var addrs []netip.Addr
	err := errors.New("Name or service not known")
	if r.cfg.Resolve != nil {
		if r.o.dnsTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.o.dnsTimeout)
			defer cancel()
		}
		addrs, err = r.cfg.Resolve(ctx, r.h, r.env.Getenv, name)
		if err == nil && len(addrs) == 0 {
			err = errors.New("No address associated with hostname")
		}
	}
	if err != nil {
		r.logf(logVerbose, "failed: %s.\n", strings.TrimSuffix(err.Error(), "."))
		r.logf(logNotQuiet, "wget: unable to resolve host address %s\n", r.q(name))
		return nil, &hostErr{name}
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	r.logf(logVerbose, "%s\n", strings.Join(s, ", "))
	r.mu.Lock()
	r.dns[name] = addrs
	r.mu.Unlock()
	return addrs, nil
}

// dial is the Transport's DialContext: resolve, then try the addresses
// in order with wget's "Connecting to" lines.
func (r *run) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	c, err := r.dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	return r.wrap(c), nil
}

func (r *run) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	name, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	addrs, err := r.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	_, notLiteral := netip.ParseAddr(name)
	var last error
	for _, a := range addrs {
		switch {
		case notLiteral != nil:
			r.logf(logVerbose, "Connecting to %s (%s)|%s|:%d... ", name, name, a, port)
		case a.Is4():
			r.logf(logVerbose, "Connecting to %s:%d... ", a, port)
		default:
			r.logf(logVerbose, "Connecting to [%s]:%d... ", a, port)
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if r.o.connTimeout > 0 {
			dctx, cancel = context.WithTimeout(ctx, r.o.connTimeout)
		}
		c, err := r.h.Dial(dctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String(), nil)
		cancel()
		if err == nil {
			r.logf(logVerbose, "connected.\n")
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.logf(logNotQuiet, "failed: %s.\n", strerror(err))
		last = err
	}
	return nil, &connErr{last}
}

// dialTLS is the Transport's DialTLSContext: a TCP connection, then a TLS
// 1.2+ handshake offering http/1.1 with SNI, verified as wget (GnuTLS)
// verifies, with its messages.
func (r *run) dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	c, err := r.dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	name, _, _ := net.SplitHostPort(addr)
	v := &verifier{r: r, name: name}
	cfg := &tls.Config{
		ServerName:         name,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true, // verified below, so that every problem is named
		VerifyConnection:   v.verify,
		MinVersion:         tls.VersionTLS12,
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if t := r.o.readTimeout; t > 0 {
		hctx, cancel = context.WithTimeout(ctx, t)
	}
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		c.Close()
		if v.failed {
			return nil, verifyErr{}
		}
		r.logf(logNotQuiet, "Unable to establish SSL connection.\n")
		return nil, &sslErr{err}
	}
	return r.wrap(tc), nil
}

type verifier struct {
	r      *run
	name   string
	failed bool
}

// verify checks the chain against the roots and the name against the
// leaf separately, so that both problems are reported, as GnuTLS wget
// does. With --no-check-certificate the problems are warnings.
func (v *verifier) verify(cs tls.ConnectionState) error {
	r := v.r
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	r.mu.Lock()
	roots := r.roots // nil: the system's
	r.mu.Unlock()
	severity := "ERROR"
	if r.o.noCheck {
		severity = "WARNING"
	}
	host := strings.Trim(v.name, "[]")
	bad := false
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		bad = true
		r.logf(logNotQuiet, "%s: The certificate of %s is not trusted.\n", severity, r.q(host))
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			r.logf(logNotQuiet, "%s: The certificate of %s doesn't have a known issuer.\n", severity, r.q(host))
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			if time.Now().Before(leaf.NotBefore) {
				r.logf(logNotQuiet, "%s: The certificate of %s is not yet activated\n", severity, r.q(host))
			} else {
				r.logf(logNotQuiet, "%s: The certificate of %s has expired.\n", severity, r.q(host))
			}
		}
	}
	if err := leaf.VerifyHostname(host); err != nil {
		bad = true
		r.logf(logNotQuiet, "The certificate's owner does not match hostname %s\n", r.q(host))
	}
	if bad && !r.o.noCheck {
		v.failed = true
		return verifyErr{}
	}
	return nil
}

// loadCA reads --ca-certificate when the first https URL sets up TLS; a
// file that cannot be read leaves the system's roots, as in wget.
func (r *run) loadCA() {
	pem, err := os.ReadFile(r.o.caFile)
	pool := x509.NewCertPool()
	if err == nil && !pool.AppendCertsFromPEM(pem) {
		err = fmt.Errorf("no certificates")
	}
	if err != nil {
		r.logf(logNotQuiet, "ERROR: Failed to open cert %s: (%d).\n", r.o.caFile, -64)
		return
	}
	r.roots = pool
	r.logf(logVerbose, "Loaded CA certificate '%s'\n", r.o.caFile)
}

// capConn is a connection whose reads are recorded while the run waits
// for response headers (-S prints them as sent), and whose every read has
// --read-timeout as its deadline.
type capConn struct {
	net.Conn
	r *run
}

func (r *run) wrap(c net.Conn) net.Conn { return &capConn{c, r} }

func (c *capConn) Read(b []byte) (int, error) {
	if t := c.r.o.readTimeout; t > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(t))
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.r.mu.Lock()
		if c.r.capOn && len(c.r.capture) < 64<<10 {
			c.r.capture = append(c.r.capture, b[:n]...)
		}
		c.r.mu.Unlock()
	}
	return n, err
}
