package gonet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "stackbox test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// crypto/tls runs over gonet conns: an HTTPS server on a tls.Listener
// over a gonet Listener, and net/http's client dialling through
// Dialer.DialContext and doing the handshake on the conn it returns.
func TestHTTPSOverGonet(t *testing.T) {
	d, _ := newFakeDialer(t)
	cert, pool := selfSigned(t)
	ln, err := d.Listen(context.Background(), "tcp", "127.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.TLS.ServerName)
	}), ErrorLog: log.New(io.Discard, "", 0)} // the refused handshake below would log
	served := result(func() error {
		return srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	})
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testWait}
	resp, err := client.Get("https://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "secure localhost" || resp.TLS == nil {
		t.Errorf("HTTPS answer %q", b)
	}

	// tls.Client directly on a dialled conn.
	c, err := d.Dial("tcp", "127.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	tc.Close()

	// DialTLS, also as http.Transport.DialTLSContext.
	tc, err = d.DialTLS(ctx, "tcp", "localhost:443", &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	if st := tc.ConnectionState(); !st.HandshakeComplete || st.ServerName != "localhost" {
		t.Errorf("DialTLS state %+v", st)
	}
	tc.Close()
	if _, err := d.DialTLS(ctx, "tcp", "localhost:443", &tls.Config{}); err == nil {
		t.Error("DialTLS trusted an unknown certificate")
	}
	tr2 := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialTLS(ctx, network, addr, &tls.Config{RootCAs: pool})
	}}
	defer tr2.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr2, Timeout: testWait}).Get("https://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	wait(t, served)
}
