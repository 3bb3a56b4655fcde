package dhcp4

import (
	"encoding/json"
	"testing"
)

// FuzzParseLease: the lease file parser never panics, and what it accepts
// survives a write and a read unchanged.
func FuzzParseLease(f *testing.F) {
	f.Add([]byte(`{"interface":"eth0","address":"10.0.0.5/24","broadcast":"10.0.0.255","server":"10.0.0.1","routers":["10.0.0.1"],"dns":["10.0.0.53"],"domain":"lab","mtu":1400,"obtained":"2026-12-03T12:00:00Z","lease":3600,"t1":1800,"t2":3150}`))
	f.Add([]byte(`{"address":"10.0.0.5/24","server":"10.0.0.1","lease":-1}`))
	f.Add([]byte(`{"address":"::1/64"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLease(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := ParseLease(out)
		if err != nil {
			t.Fatalf("re-read %s: %v", out, err)
		}
		out2, _ := json.Marshal(l2)
		if string(out) != string(out2) {
			t.Fatalf("%s became %s", out, out2)
		}
	})
}
