package host

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
)

// The netd client and server exchange these types as JSON; a round trip
// must preserve them.
func TestJSONRoundTrip(t *testing.T) {
	in := Interface{Index: 2, Name: "eth0", Flags: FlagUp | FlagRunning, MTU: 1500, MAC: "02:00:00:00:00:01",
		Addrs: []Addr{{Prefix: netip.MustParsePrefix("10.0.0.2/24"), Broadcast: netip.MustParseAddr("10.0.0.255")}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Interface
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}
