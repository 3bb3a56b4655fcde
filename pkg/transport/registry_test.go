package transport

import (
	"errors"
	"syscall"
	"testing"
)

func TestRegistryErrorsAsSocket2(t *testing.T) {
	var r Registry
	made := 0
	c := func(NewRequest) (Endpoint, error) { made++; return nil, nil }
	r.Register(syscall.AF_INET, syscall.SOCK_DGRAM, 0, c)
	r.Register(syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP, c)
	r.Register(syscall.AF_INET, syscall.SOCK_RAW, -1, c)
	for _, tc := range []struct {
		fam, typ, proto int
		want            error
	}{
		{syscall.AF_INET, syscall.SOCK_DGRAM, 0, nil},
		{syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_UDP, nil},
		{syscall.AF_INET, syscall.SOCK_RAW, 89, nil},
		{syscall.AF_INET, syscall.SOCK_RAW, 0, syscall.EPROTONOSUPPORT},
		{syscall.AF_INET, syscall.SOCK_DGRAM, syscall.IPPROTO_TCP, syscall.EPROTONOSUPPORT},
		{syscall.AF_INET, syscall.SOCK_STREAM, 0, syscall.ESOCKTNOSUPPORT},
		{syscall.AF_INET6, syscall.SOCK_DGRAM, 0, syscall.ESOCKTNOSUPPORT},
		{syscall.AF_UNIX, syscall.SOCK_DGRAM, 0, syscall.EAFNOSUPPORT},
		{syscall.AF_INET, syscall.SOCK_RAW, 300, syscall.EINVAL},
	} {
		_, err := r.New(NewRequest{Family: tc.fam, Type: tc.typ, Protocol: tc.proto})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("New(%d, %d, %d) = %v, want %v", tc.fam, tc.typ, tc.proto, err, tc.want)
		}
	}
	if made != 3 {
		t.Errorf("constructor ran %d times, want 3", made)
	}
}
