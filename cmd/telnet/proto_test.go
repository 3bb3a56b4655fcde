package telnet

import (
	"bytes"
	"fmt"
	"testing"
)

// iac builds protocol bytes: ints are bytes, strings their bytes.
func iac(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case string:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("iac: %T", p))
		}
	}
	return b
}

// Each server message and the exact bytes a fresh client answers, in
// sequence on one engine (RFC 1143 state carried from step to step).
func TestNegotiationTranscript(t *testing.T) {
	e := NewEngine("xterm-256color", 100, 255, "joe")
	steps := []struct {
		what       string
		from, want []byte
	}{
		{"DO TTYPE", iac(255, 253, 24), iac(255, 251, 24)},
		{"DO TTYPE again: no answer", iac(255, 253, 24), nil},
		{"SB TTYPE SEND", iac(255, 250, 24, 1, 255, 240), iac(255, 250, 24, 0, "xterm-256color", 255, 240)},
		{"DO NAWS: WILL and the size, 255 doubled", iac(255, 253, 31), iac(255, 251, 31, 255, 250, 31, 0, 100, 0, 255, 255, 255, 240)},
		{"WILL ECHO", iac(255, 251, 1), iac(255, 253, 1)},
		{"WILL ECHO again", iac(255, 251, 1), nil},
		{"DO ECHO: we do not echo", iac(255, 253, 1), iac(255, 252, 1)},
		{"DO ECHO again: refused again, no state", iac(255, 253, 1), iac(255, 252, 1)},
		{"WILL SGA", iac(255, 251, 3), iac(255, 253, 3)},
		{"DO SGA", iac(255, 253, 3), iac(255, 251, 3)},
		{"WILL unknown", iac(255, 251, 99), iac(255, 254, 99)},
		{"DO unknown (LINEMODE)", iac(255, 253, 34), iac(255, 252, 34)},
		{"DONT unknown: already off", iac(255, 254, 34), nil},
		{"WONT ECHO turns it off", iac(255, 252, 1), iac(255, 254, 1)},
		{"WONT ECHO again", iac(255, 252, 1), nil},
		{"DO NEW-ENVIRON", iac(255, 253, 39), iac(255, 251, 39)},
		{"SEND VAR USER", iac(255, 250, 39, 1, 0, "USER", 255, 240), iac(255, 250, 39, 0, 0, "USER", 1, "joe", 255, 240)},
		{"SEND all", iac(255, 250, 39, 1, 255, 240), iac(255, 250, 39, 0, 0, "USER", 1, "joe", 255, 240)},
		{"SEND VAR PATH: not exported", iac(255, 250, 39, 1, 0, "PATH", 255, 240), iac(255, 250, 39, 0, 255, 240)},
		{"SB for an option we refused", iac(255, 250, 34, 1, 2, 3, 255, 240), nil},
		{"NOP, GA, DM, AYT are no data", iac("a", 255, 241, 255, 249, 255, 242, 255, 246, "b"), nil},
	}
	for _, s := range steps {
		_, reply := e.Receive(s.from)
		if !bytes.Equal(reply, s.want) {
			t.Errorf("%s: sent %v, want %v", s.what, reply, s.want)
		}
	}
	if !e.Us(optTTYPE) || !e.Us(optNAWS) || !e.Him(optSGA) || e.Him(optEcho) || e.Us(optEcho) {
		t.Errorf("states: us TTYPE %v NAWS %v, him SGA %v ECHO %v, us ECHO %v",
			e.Us(optTTYPE), e.Us(optNAWS), e.Him(optSGA), e.Him(optEcho), e.Us(optEcho))
	}
	if got, want := e.SetWindow(132, 43), iac(255, 250, 31, 0, 132, 0, 43, 255, 240); !bytes.Equal(got, want) {
		t.Errorf("window change: %v, want %v", got, want)
	}
}

// RFC 1143: what we asked for is settled by the answer without a reply,
// and a queued opposite request goes out once the first is answered.
func TestRequests(t *testing.T) {
	e := NewEngine("vt100", 80, 24, "")
	if got := e.RequestHim(optSGA); !bytes.Equal(got, iac(255, 253, 3)) {
		t.Fatalf("request SGA: %v", got)
	}
	if got := e.RequestHim(optSGA); len(got) != 0 {
		t.Errorf("second request while pending sent %v", got)
	}
	if _, r := e.Receive(iac(255, 251, 3)); len(r) != 0 || !e.Him(optSGA) {
		t.Errorf("WILL SGA answering our DO: reply %v, on %v", r, e.Him(optSGA))
	}
	if got := e.RequestUs(optTTYPE); !bytes.Equal(got, iac(255, 251, 24)) {
		t.Fatalf("request TTYPE: %v", got)
	}
	if _, r := e.Receive(iac(255, 254, 24)); len(r) != 0 || e.Us(optTTYPE) {
		t.Errorf("DONT TTYPE answering our WILL: reply %v, on %v", r, e.Us(optTTYPE))
	}
	// Without -l, NEW-ENVIRON's SEND is answered with an empty IS.
	e.Receive(iac(255, 253, 39))
	if _, r := e.Receive(iac(255, 250, 39, 1, 255, 240)); !bytes.Equal(r, iac(255, 250, 39, 0, 255, 240)) {
		t.Errorf("SEND without a user: %v", r)
	}
	// A TTYPE SEND before TTYPE is agreed is ignored.
	if _, r := e.Receive(iac(255, 250, 24, 1, 255, 240)); len(r) != 0 {
		t.Errorf("SEND with TTYPE off answered %v", r)
	}
}

// The NVT data stream: IAC IAC, CR NUL, CR LF, split anywhere.
func TestReceiveData(t *testing.T) {
	cases := []struct {
		what     string
		setup    []byte
		from     []byte
		want     string
		wantTail string
	}{
		{"IAC IAC is 255", nil, iac("a", 255, 255, "b"), "a\xffb", ""},
		{"CR NUL is CR", nil, iac("x", 13, 0, "y"), "x\ry", ""},
		{"CR LF is LF while the server does not echo", nil, iac("l1", 13, 10, "l2", 13, 10), "l1\nl2\n", ""},
		{"CR LF stays with remote echo", iac(255, 251, 1), iac("p", 13, 10), "p\r\n", ""},
		{"CR then data", nil, iac(13, "z"), "\rz", ""},
		{"CR at the end waits", nil, iac("end", 13), "end", "\r"},
		{"binary: CR is data", iac(255, 251, 0), iac(13, 0, 13, 10), "\r\x00\r\n", ""},
		{"CR before IAC", nil, iac(13, 255, 255), "\r\xff", ""},
	}
	for _, c := range cases {
		for split := 0; split <= len(c.from); split++ {
			e := NewEngine("t", 80, 24, "")
			e.Receive(c.setup)
			d1, _ := e.Receive(c.from[:split])
			got := string(d1)
			d2, _ := e.Receive(c.from[split:])
			got += string(d2)
			if got != c.want {
				t.Errorf("%s (split at %d): %q, want %q", c.what, split, got, c.want)
			}
			if tail := string(e.Flush()); tail != c.wantTail {
				t.Errorf("%s: tail %q, want %q", c.what, tail, c.wantTail)
			}
		}
	}
}

// What the user types, as BSD telnet's telsnd sends it.
func TestEncode(t *testing.T) {
	e := NewEngine("t", 80, 24, "")
	if got := e.Encode([]byte("a\xffb\rc\n")); !bytes.Equal(got, []byte("a\xff\xffb\r\x00c\r\n")) {
		t.Errorf("line mode: %q", got)
	}
	e.Receive(iac(255, 251, 3)) // the server suppresses go-ahead: character mode
	if got := e.Encode([]byte("c\r\n")); !bytes.Equal(got, []byte("c\r\x00\n")) {
		t.Errorf("character mode: %q", got)
	}
	e.Receive(iac(255, 253, 0)) // we send binary
	if got := e.Encode([]byte("\r\n\xff")); !bytes.Equal(got, []byte("\r\n\xff\xff")) {
		t.Errorf("binary: %q", got)
	}
}

// Two of our engines offering and answering each other settle within a
// few round trips (RFC 1143's promise: no negotiation loops).
func TestEnginesSettle(t *testing.T) {
	a, b := NewEngine("a", 80, 24, "u"), NewEngine("b", 80, 24, "")
	var toB, toA []byte
	for _, o := range []byte{optSGA, optEcho, optBinary, 99} {
		toB = append(toB, a.RequestHim(o)...)
		toA = append(toA, b.RequestHim(o)...)
	}
	for _, o := range []byte{optTTYPE, optNAWS, optBinary} {
		toB = append(toB, a.RequestUs(o)...)
		toA = append(toA, b.RequestUs(o)...)
	}
	for round := 0; len(toA)+len(toB) > 0; round++ {
		if round == 10 {
			t.Fatalf("still negotiating after 10 rounds: %v / %v", toA, toB)
		}
		_, ra := a.Receive(toA)
		_, rb := b.Receive(toB)
		toB, toA = bytes.Clone(ra), bytes.Clone(rb)
	}
	for _, o := range []byte{optSGA, optBinary} {
		if !a.Him(o) || !b.Him(o) || !a.Us(o) || !b.Us(o) {
			t.Errorf("option %d not on both ways", o)
		}
	}
	// Each asked the other to echo; neither does (a client never echoes).
	if a.Him(optEcho) || b.Him(optEcho) || a.Him(99) || b.Him(99) {
		t.Error("ECHO or an unknown option came on")
	}
	// TTYPE and NAWS are the client's to perform: a client refuses them
	// from its peer.
	if a.Us(optTTYPE) || b.Us(optNAWS) {
		t.Error("TTYPE or NAWS agreed by a client")
	}
}

// Arbitrary server bytes, whole and a byte at a time: no panic, output
// bounded by the input, and every negotiation answered at most once,
// with nothing at all when it asks for the state the option is in.
func FuzzEngine(f *testing.F) {
	f.Add(iac(255, 253, 24, 255, 250, 24, 1, 255, 240, 255, 253, 31, "hi", 13, 10))
	f.Add(iac(255, 251, 1, 255, 251, 1, 255, 252, 1, 255, 252, 1, 255, 255))
	f.Add(iac(255, 250, 39, 1, 0, "USER", 2, 3, 255, 255, 255, 240))
	f.Add(iac(255, 250, 24, 255, 253, 24, 13, 0, 13))
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := NewEngine("xterm", 0xff, 0xffff, "user\xff\x01")
		data, reply := whole.Receive(in)
		if len(data) > len(in)+1 || len(reply) > 24*len(in)+16 {
			t.Fatalf("%d bytes in gave %d data, %d reply", len(in), len(data), len(reply))
		}
		e := NewEngine("xterm", 0xff, 0xffff, "user\xff\x01")
		var all []byte
		for _, c := range in {
			pending := e.st == rOpt
			verb := e.verb
			var before side
			if pending {
				if verb == cmdWILL || verb == cmdWONT {
					before = e.him[c]
				} else {
					before = e.us[c]
				}
			}
			d, r := e.Receive([]byte{c})
			all = append(all, d...)
			if !pending {
				if e.st != rSBIAC && len(r) > 0 && c != cmdSE {
					t.Fatalf("reply %v to byte %d outside a negotiation or sub-negotiation", r, c)
				}
				continue
			}
			if n := countNegotiations(r); n > 1 {
				t.Fatalf("%d answers to one negotiation: %v", n, r)
			}
			enable := verb == cmdWILL || verb == cmdDO
			if len(r) > 0 && ((enable && before.state == qYes) || (!enable && before.state == qNo)) {
				t.Fatalf("answered %v to verb %d option %d already in that state", r, verb, c)
			}
		}
		all = append(all, e.Flush()...)
		data = append(bytes.Clone(data), whole.Flush()...)
		if !bytes.Equal(all, data) {
			t.Fatalf("byte at a time gave %q, whole %q", all, data)
		}
	})
}

// countNegotiations counts IAC WILL/WONT/DO/DONT in b (outside SB).
func countNegotiations(b []byte) int {
	n := 0
	inSB := false
	for i := 0; i+1 < len(b); i++ {
		if b[i] != cmdIAC {
			continue
		}
		switch b[i+1] {
		case cmdSB:
			inSB = true
		case cmdSE:
			inSB = false
		case cmdIAC:
		case cmdWILL, cmdWONT, cmdDO, cmdDONT:
			if !inSB {
				n++
			}
		}
		i++
	}
	return n
}
