package netd

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"syscall"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies and queries to the request
// decoders: they never panic, refuse with EINVAL, and what they accept
// re-encodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []struct {
		kind        uint8
		body, query string
	}{
		{0, `{"prefix":"10.0.0.1/24","broadcast":"10.0.0.255"}`, ""},
		{0, `{"prefix":"fe80::1/64"}`, ""},
		{1, `{"up":true,"mtu":1400,"mac":"02:00:00:00:00:01","promisc":false}`, ""},
		{2, `{"dst":"0.0.0.0/0","gateway":"10.0.0.1","dev":"eth0","metric":5,"type":"unreachable"}`, ""},
		{2, ``, "dst=10.0.0.0/8&gateway=10.0.0.1&dev=eth0&metric=3"},
		{2, ``, "dst=::/0&gateway=fe80::1%25eth0"},
		{3, `{"addr":"10.0.0.1","mac":"02:00:00:00:00:02","dev":"eth0","proxy":true}`, ""},
		{3, `{"addr":"fe80::1%eth0","dev":"eth0","state":"PERMANENT","permanent":true}`, ""},
		{0, `{"prefix":`, ""},
		{1, `{}`, ""},
	} {
		f.Add(s.kind, []byte(s.body), s.query)
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, query string) {
		var got, again any
		var err, err2 error
		switch kind % 4 {
		case 0:
			var r AddressRequest
			r, err = decodeAddress(body)
			if err == nil {
				got = r
				again, err2 = reencode(r, decodeAddress)
			}
		case 1:
			var p InterfacePatch
			p, err = decodePatch(body)
			if err == nil {
				got = p
				again, err2 = reencode(p, decodePatch)
			}
		case 2:
			q, qerr := url.ParseQuery(query)
			if qerr != nil {
				q = url.Values{}
			}
			r, rerr := decodeRoute(body, q)
			err = rerr
			if err == nil {
				if !r.Dst.IsValid() {
					t.Fatalf("accepted a route without a destination: %+v", r)
				}
				got = r
				again, err2 = reencode(r, func(b []byte) (any, error) { return decodeRoute(b, nil) })
				if err2 == nil {
					// The query form carries dst, gateway, dev and metric.
					short := r
					short.Flags, short.Type, short.Protocol, short.Use = 0, "", "", 0
					back, qerr := decodeRoute(nil, routeQuery(short))
					if qerr != nil || !reflect.DeepEqual(back, short) {
						t.Fatalf("query form of %+v decodes as %+v, %v", short, back, qerr)
					}
				}
			}
		case 3:
			n, nerr := decodeNeighbor(body)
			err = nerr
			if err == nil {
				got = n
				again, err2 = reencode(n, decodeNeighbor)
			}
		}
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("refusal %v is not EINVAL", err)
			}
			return
		}
		if err2 != nil {
			t.Fatalf("%+v re-encoded does not decode: %v", got, err2)
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("decoded %+v, re-encoded and decoded %+v", got, again)
		}
	})
}

func reencode[T any, U any](v T, decode func([]byte) (U, error)) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decode(b)
}

// FuzzFrames feeds arbitrary bytes to the frame reader and the message,
// answer and option decoders: no panic, a length over the limit refused
// before anything is allocated for it, and a decoded message re-encodes
// to the same bytes.
func FuzzFrames(f *testing.F) {
	var b bytes.Buffer
	writeFrame(&b, frameRecv, msgHeader(syscall.MSG_TRUNC, netip.MustParseAddrPort("[fe80::1%eth0]:53"), []byte{1, 2}), []byte("data"))
	f.Add(b.Bytes())
	f.Add([]byte{frameAnswer, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Add([]byte{frameData, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{frameSend, 0, 0, 0, 5, 0, 0, 0, 0, 200})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for range 16 {
			kind, p, err := readFrame(r, nil)
			if err != nil {
				return
			}
			if len(p) > maxFrame {
				t.Fatalf("frame of %d bytes accepted", len(p))
			}
			switch kind {
			case frameSend, frameRecv, frameErrQ:
				flags, addr, oob, data, err := parseMsg(p)
				if err != nil {
					continue
				}
				again := append(msgHeader(flags, addr, oob), data...)
				if f2, a2, o2, d2, err := parseMsg(again); err != nil || f2 != flags || a2 != addr || !bytes.Equal(o2, oob) || !bytes.Equal(d2, data) {
					t.Fatalf("message %x does not survive a re-encoding: %x", p, again)
				}
			case frameAnswer:
				parseAnswer(p)
			case frameSetOpt:
				parseInt32s(p, 3)
			case frameError:
				parseErrno(p)
			}
		}
	})
}
