package wire_test

// The tshark harness: every frame our builders produce must decode cleanly
// in Wireshark's dissectors, which are an independent implementation of
// every format in this package. Each format's test file registers frames:
//
//	func init() {
//		tsharkCases = append(tsharkCases, tsharkCase{
//			Name:          "tcp/ipv4/syn",
//			Frame:         func(t *testing.T) []byte { … },
//			WantProtocols: "eth:ethertype:ip:tcp",
//		})
//	}
//
// TestTsharkDecodes writes all frames into one capture, runs tshark once
// with checksum validation switched on, and reports per frame (subtest
// decode/<Name>) any malformed-packet mark, any expert item that signals a
// real problem (see tsharkProblem and tsharkProblemFields), and a protocol chain that does not match.
// Cases with WantProblem set are deliberately broken frames: the harness must
// flag them, so a harness that silently passes everything fails itself.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stackbox/stackbox/pkg/pcap"
)

// tsharkCase is one frame for tshark to decode.
type tsharkCase struct {
	// Name identifies the frame in failures; unique, e.g. "tcp/ipv6/syn".
	Name string
	// Frame builds the whole Ethernet frame with our builders. It may fail
	// the test through t; the frame is then left out of the capture.
	Frame func(t *testing.T) []byte
	// WantProtocols is the frame.protocols chain tshark must report, or a
	// part of it made of whole elements: "ip:tcp" matches
	// "eth:ethertype:ip:tcp" but "ip:tc" does not.
	WantProtocols string
	// WantProblem, when set, marks a deliberately broken frame: tshark must
	// report a problem whose text contains WantProblem (case-insensitive),
	// e.g. "checksum" or "malformed". Such cases keep the harness honest.
	WantProblem string
}

// tsharkCases is filled by the init functions of the *_test.go files.
var tsharkCases []tsharkCase

// tsharkPrefs switches on the checksum checks that Wireshark leaves off by
// default (names from `tshark -G defaultprefs`, Wireshark 4.0). ICMP,
// ICMPv6, IGMP and MLD checksums are always verified.
var tsharkPrefs = []string{
	"ip.check_checksum:TRUE",
	"tcp.check_checksum:TRUE",
	"udp.check_checksum:TRUE",
	// A zero UDP checksum over IPv6 is an error (RFC 8200 §8.1); keep
	// Wireshark reporting it as one.
	"udp.ignore_ipv6_zero_checksum:FALSE",
}

// tsharkProblemFields are expert items that mean our frame is wrong although
// Wireshark files them under a severity or group tsharkProblem lets pass
// (several are Note/Sequence or Note/Protocol). Each format's test file may
// append the ones of its protocols in an init function.
var tsharkProblemFields = []string{
	"tcp.option.len.invalid",       // an option's length is bad or runs past the header
	"tcp.suboption_malformed",      // a suboption runs past its option
	"tcp.non_zero_bytes_after_eol", // junk padding after EOL
	"tcp.nop",                      // "4 NOP in a row": wasteful padding
	"tcp.options.mss.present",      // MSS on a segment without SYN
	"tcp.ack.nonzero",              // acknowledgment number without ACK
	"tcp.urgent_pointer.non_zero",  // urgent pointer without URG
	"tcp.checksum.ffff",            // 0xffff where 0x0000 is meant
}

// tsharkFieldSep separates aggregated occurrences of one field; expert
// messages can contain commas, so use a byte they do not.
const tsharkFieldSep = "\x1f"

// tsharkResult is what tshark said about one frame.
type tsharkResult struct {
	protocols string
	malformed bool
	problems  []string // expert items that signal a real problem
	ignored   []string // expert items judged harmless, for -v output
}

func TestTsharkDecodes(t *testing.T) {
	tshark := findTshark(t)

	// Build every frame first; a builder failure fails only its case.
	names := make(map[string]bool)
	type built struct {
		c     tsharkCase
		frame []byte
	}
	var frames []built
	t.Run("build", func(t *testing.T) {
		for _, c := range tsharkCases {
			if c.Name == "" || names[c.Name] {
				t.Errorf("tshark case name %q is empty or used twice", c.Name)
				continue
			}
			names[c.Name] = true
			t.Run(c.Name, func(t *testing.T) {
				f := c.Frame(t)
				if len(f) == 0 {
					t.Fatal("Frame returned no bytes")
				}
				frames = append(frames, built{c, f})
			})
		}
	})
	if len(frames) == 0 {
		t.Fatal("no tshark cases registered")
	}
	var negatives int
	for _, f := range frames {
		if f.c.WantProblem != "" {
			negatives++
		}
	}
	if negatives == 0 {
		t.Error("no deliberately broken frame registered: the harness cannot show that it flags problems")
	}

	var capture bytes.Buffer
	w, err := pcap.NewWriter(&capture, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, f := range frames {
		// One second apart so a stray retransmission heuristic cannot
		// tie unrelated frames together by timing.
		if err := w.WriteFrame(base.Add(time.Duration(i)*time.Second), f.frame); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "frames.pcap")
	if err := os.WriteFile(path, capture.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	results, err := runTshark(t, tshark, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(frames) {
		t.Fatalf("tshark reported %d frames, the capture holds %d", len(results), len(frames))
	}

	t.Run("decode", func(t *testing.T) {
		for i, f := range frames {
			r := results[i]
			t.Run(f.c.Name, func(t *testing.T) {
				checkTsharkResult(t, f.c, r, f.frame)
			})
		}
	})
}

// checkTsharkResult judges one frame's decode against its case.
func checkTsharkResult(t *testing.T, c tsharkCase, r tsharkResult, frame []byte) {
	t.Helper()
	if len(r.ignored) > 0 {
		t.Logf("harmless expert items: %q", r.ignored)
	}
	if c.WantProtocols != "" && !strings.Contains(":"+r.protocols+":", ":"+c.WantProtocols+":") {
		t.Errorf("frame.protocols = %q, want it to contain %q", r.protocols, c.WantProtocols)
	}
	problems := r.problems
	if r.malformed {
		problems = append([]string{"malformed packet"}, problems...)
	}
	if c.WantProblem != "" {
		for _, p := range problems {
			if strings.Contains(strings.ToLower(p), strings.ToLower(c.WantProblem)) {
				return
			}
		}
		t.Errorf("broken frame not flagged: want a problem mentioning %q, tshark reported %q\nframe: %x",
			c.WantProblem, problems, frame)
		return
	}
	if len(problems) > 0 {
		t.Errorf("tshark reports problems: %q\nframe: %x", problems, frame)
	}
}

// findTshark returns the tshark binary, installing it with apt-get when it
// is missing and we are root; it skips the test when that is impossible.
func findTshark(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("tshark"); err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "tshark")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("apt-get install tshark: %v\n%s", err, lastLines(out, 10))
			}
			if p, err := exec.LookPath("tshark"); err == nil {
				return p
			}
		}
	}
	t.Skip("tshark is not installed and could not be installed (apt-get install tshark as root); frames not cross-checked against Wireshark")
	return ""
}

// runTshark decodes the capture and returns one result per frame, in order.
func runTshark(t *testing.T, tshark, path string) ([]tsharkResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"-n", "-r", path}
	for _, p := range tsharkPrefs {
		args = append(args, "-o", p)
	}
	args = append(args,
		"-T", "fields",
		"-E", "separator=/t",
		"-E", "occurrence=a",
		"-E", "aggregator="+tsharkFieldSep,
		"-e", "frame.number",
		"-e", "frame.protocols",
		"-e", "_ws.malformed",
		"-e", "_ws.expert.severity",
		"-e", "_ws.expert.group",
		"-e", "_ws.expert.message",
	)
	for _, f := range tsharkProblemFields {
		args = append(args, "-e", f)
	}
	cmd := exec.CommandContext(ctx, tshark, args...)
	// A private, empty configuration directory: the user's Wireshark
	// profile must not change what the harness sees.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "WIRESHARK_CONFIG_DIR="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, &tsharkError{"timed out after 60s", stderr.Bytes()}
	}
	if err != nil {
		return nil, &tsharkError{"tshark: " + err.Error(), stderr.Bytes()}
	}
	return parseTsharkFields(out)
}

type tsharkError struct {
	msg    string
	stderr []byte
}

func (e *tsharkError) Error() string { return e.msg + "\n" + string(lastLines(e.stderr, 20)) }

// parseTsharkFields reads the -T fields output of runTshark.
func parseTsharkFields(out []byte) ([]tsharkResult, error) {
	var results []tsharkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if line := sc.Text(); line == "" || strings.HasPrefix(line, "---") {
			continue // a separator some tshark versions print after the records
		}
		cols := strings.Split(sc.Text(), "\t")
		for len(cols) < 6+len(tsharkProblemFields) {
			cols = append(cols, "")
		}
		n, err := strconv.Atoi(cols[0])
		if err != nil || n != len(results)+1 {
			return nil, &tsharkError{"unexpected tshark output line: " + sc.Text(), nil}
		}
		r := tsharkResult{protocols: cols[1], malformed: cols[2] != ""}
		sev, group, msg := splitAgg(cols[3]), splitAgg(cols[4]), splitAgg(cols[5])
		for i := range msg {
			item := tsharkExpert{message: msg[i]}
			if i < len(sev) {
				item.severity = sev[i]
			}
			if i < len(group) {
				item.group = group[i]
			}
			if tsharkProblem(item) {
				r.problems = append(r.problems, item.String())
			} else {
				r.ignored = append(r.ignored, item.String())
			}
		}
		for i, f := range tsharkProblemFields {
			if cols[6+i] != "" {
				r.problems = append(r.problems, f+" present")
			}
		}
		results = append(results, r)
	}
	return results, sc.Err()
}

func splitAgg(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, tsharkFieldSep)
}

// tsharkExpert is one expert item; severity and group are the numeric
// values tshark prints for -e _ws.expert.severity/.group.
type tsharkExpert struct {
	severity, group, message string
}

func (e tsharkExpert) String() string {
	return tsharkSeverityName[e.severity] + "/" + tsharkGroupName[e.group] + ": " + e.message
}

// Expert severities and groups (epan/proto.h, PI_*), as tshark prints them.
const (
	tsharkSevNote  = "4194304"  // PI_NOTE
	tsharkSevWarn  = "6291456"  // PI_WARN
	tsharkSevError = "8388608"  // PI_ERROR
	tsharkGroupSeq = "33554432" // PI_SEQUENCE
)

var tsharkSeverityName = map[string]string{
	"1048576": "comment", "2097152": "chat", tsharkSevNote: "note",
	tsharkSevWarn: "warn", tsharkSevError: "error",
}

var tsharkGroupName = map[string]string{
	"16777216": "checksum", tsharkGroupSeq: "sequence", "50331648": "response-code",
	"67108864": "request-code", "83886080": "undecoded", "100663296": "reassemble",
	"117440512": "malformed", "134217728": "debug", "150994944": "protocol",
	"167772160": "security", "184549376": "comment", "201326592": "decryption",
	"218103808": "assumption", "234881024": "deprecated", "251658240": "receive",
	"268435456": "interface",
}

// tsharkProblem decides whether an expert item means our frame is wrong.
// Every error counts (bad checksums, malformed fields), and so does every
// warning except the sequence group: tshark analyses each capture as a
// conversation, and frames built in isolation draw notes and warnings such
// as "previous segment not captured", "ACKed segment that wasn't captured",
// "Connection reset (RST)" or "no response seen to ICMP request", which say
// nothing about the encoding. Notes and chats are informational, except the
// items listed in tsharkProblemFields.
func tsharkProblem(e tsharkExpert) bool {
	switch e.severity {
	case tsharkSevError:
		return true
	case tsharkSevWarn:
		return e.group != tsharkGroupSeq
	}
	return false
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
