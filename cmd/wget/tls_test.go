package wget

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/host"
)

// testPKI is a CA made for the test and a server certificate it signed
// for web.test.
type testPKI struct {
	caFile string
	cert   tls.Certificate
}

func newPKI(t *testing.T, notAfter time.Time, ips ...net.IP) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stackbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "web.test"},
		DNSNames: []string{"web.test"}, IPAddresses: ips, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caFile: filepath.Join(t.TempDir(), "ca.pem"), cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hello records what the server saw of the client's handshakes.
type hello struct {
	mu       sync.Mutex
	sni      []string
	alpn     [][]string
	versions []uint16
}

// serveTLS runs an HTTPS server with cfg's certificate and version
// limits on h's addr; its page says which TLS version it spoke.
func serveTLS(t *testing.T, h host.Host, addr string, cfg *tls.Config) *hello {
	t.Helper()
	seen := &hello{}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		seen.mu.Lock()
		seen.sni = append(seen.sni, chi.ServerName)
		seen.alpn = append(seen.alpn, chi.SupportedProtos)
		seen.mu.Unlock()
		return nil, nil
	}
	l, err := h.Listen(context.Background(), "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.versions = append(seen.versions, r.TLS.Version)
		seen.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "secure %s\n", tls.VersionName(r.TLS.Version))
	})}
	go srv.Serve(tls.NewListener(l, cfg))
	t.Cleanup(func() { srv.Close() })
	return seen
}

// webTest resolves web.test to the server (after an address that
// refuses) and nothing else.
func webTest(n int) Config {
	return Config{Resolve: func(_ context.Context, _ host.Host, _ func(string) string, name string) ([]netip.Addr, error) {
		if name == "web.test" {
			return []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", n)), netip.MustParseAddr(fmt.Sprintf("10.%d.0.2", n))}, nil
		}
		return nil, errors.New("Name or service not known")
	}}
}

// HTTPS: verification with --ca-certificate (the name resolved, the
// first address refusing, SNI and ALPN seen by the server), without it
// (exit 5), a name the certificate does not cover (exit 5), an expired
// certificate, --no-check-certificate's warnings, TLS 1.2 and 1.3 forced
// by the server, and a server that does not speak TLS.
func TestHTTPS(t *testing.T) {
	a, b := pair(t, 36)
	pki := newPKI(t, time.Now().Add(24*time.Hour))
	seen := serveTLS(t, b, "10.36.0.2:443", &tls.Config{Certificates: []tls.Certificate{pki.cert}})
	cfg := webTest(36)

	r := runWith(t, a, cfg, "-O", "-", "--ca-certificate="+pki.caFile, "https://web.test/")
	if r.status != 0 || r.out != "secure TLS 1.3\n" {
		t.Errorf("--ca-certificate: %+v", r)
	}
	match(t, "verified", r.err,
		`--%STAMP%--  https://web\.test/`,
		`Loaded CA certificate '`+q(pki.caFile)+`'`,
		`Resolving web\.test \(web\.test\)\.\.\. 10\.36\.0\.1, 10\.36\.0\.2`,
		`Connecting to web\.test \(web\.test\)\|10\.36\.0\.1\|:443\.\.\. failed: Connection refused\.`,
		`Connecting to web\.test \(web\.test\)\|10\.36\.0\.2\|:443\.\.\. connected\.`,
		`HTTP request sent, awaiting response\.\.\. 200 OK`,
		`Length: 15 \[text/plain\]`,
		`(?s).*`)
	seen.mu.Lock()
	if len(seen.sni) != 1 || seen.sni[0] != "web.test" || len(seen.alpn[0]) != 1 || seen.alpn[0][0] != "http/1.1" {
		t.Errorf("server saw SNI %q, ALPN %q", seen.sni, seen.alpn)
	}
	seen.mu.Unlock()

	r = runWith(t, a, cfg, "-O", "-", "https://web.test/")
	if r.status != 5 || r.out != "" || !strings.HasSuffix(r.err, "connected.\n"+
		"ERROR: The certificate of 'web.test' is not trusted.\n"+
		"ERROR: The certificate of 'web.test' doesn't have a known issuer.\n") {
		t.Errorf("unknown CA: %+v", r)
	}
	r = runWith(t, a, cfg, "-O", "-", "--ca-certificate="+pki.caFile, "https://10.36.0.2/")
	if r.status != 5 || !strings.HasSuffix(r.err, "connected.\nThe certificate's owner does not match hostname '10.36.0.2'\n") {
		t.Errorf("name mismatch: %+v", r)
	}
	r = runWith(t, a, cfg, "-O", "-", "--no-check-certificate", "https://10.36.0.2/")
	if r.status != 0 || r.out != "secure TLS 1.3\n" || !strings.Contains(r.err, "connected.\n"+
		"WARNING: The certificate of '10.36.0.2' is not trusted.\n"+
		"WARNING: The certificate of '10.36.0.2' doesn't have a known issuer.\n"+
		"The certificate's owner does not match hostname '10.36.0.2'\n"+
		"HTTP request sent, awaiting response... 200 OK\n") {
		t.Errorf("--no-check-certificate: %+v", r)
	}
	if r := runWith(t, a, cfg, "-nv", "-O", "-", "https://web.test/"); r.status != 5 || r.err != "failed: Connection refused.\n"+
		"ERROR: The certificate of 'web.test' is not trusted.\n"+
		"ERROR: The certificate of 'web.test' doesn't have a known issuer.\n" {
		t.Errorf("unknown CA -nv: %+v", r)
	}

	// The server forces the version.
	serveTLS(t, b, "10.36.0.2:4412", &tls.Config{Certificates: []tls.Certificate{pki.cert}, MaxVersion: tls.VersionTLS12})
	serveTLS(t, b, "10.36.0.2:4413", &tls.Config{Certificates: []tls.Certificate{pki.cert}, MinVersion: tls.VersionTLS13})
	for port, want := range map[int]string{4412: "secure TLS 1.2\n", 4413: "secure TLS 1.3\n"} {
		if r := runWith(t, a, cfg, "-q", "-O", "-", "--ca-certificate="+pki.caFile, fmt.Sprintf("https://web.test:%d/", port)); r.status != 0 || r.out != want {
			t.Errorf("port %d: %+v, want %q", port, r, want)
		}
	}

	old := newPKI(t, time.Now().Add(-time.Hour))
	serveTLS(t, b, "10.36.0.2:4414", &tls.Config{Certificates: []tls.Certificate{old.cert}})
	r = runWith(t, a, cfg, "-O", "-", "--ca-certificate="+old.caFile, "https://web.test:4414/")
	if r.status != 5 || !strings.HasSuffix(r.err, "ERROR: The certificate of 'web.test' is not trusted.\nERROR: The certificate of 'web.test' has expired.\n") {
		t.Errorf("expired: %+v", r)
	}

	// Plain HTTP where TLS is expected.
	serve(t, b, "10.36.0.2:4480", handlers())
	r = runWith(t, a, cfg, "-O", "-", "https://10.36.0.2:4480/")
	if r.status != 4 || !strings.HasSuffix(r.err, "connected.\nUnable to establish SSL connection.\n") {
		t.Errorf("not TLS: %+v", r)
	}
}
