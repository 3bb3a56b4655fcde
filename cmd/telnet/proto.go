package telnet

import "encoding/binary"

// TELNET commands (RFC 854, "TELNET COMMAND STRUCTURE").
const (
	cmdSE   = 240
	cmdNOP  = 241
	cmdDM   = 242
	cmdBRK  = 243
	cmdIP   = 244
	cmdAO   = 245
	cmdAYT  = 246
	cmdEC   = 247
	cmdEL   = 248
	cmdGA   = 249
	cmdSB   = 250
	cmdWILL = 251
	cmdWONT = 252
	cmdDO   = 253
	cmdDONT = 254
	cmdIAC  = 255
)

// Options the client knows (the rest are refused).
const (
	optBinary     = 0  // RFC 856
	optEcho       = 1  // RFC 857
	optSGA        = 3  // RFC 858
	optTTYPE      = 24 // RFC 1091
	optNAWS       = 31 // RFC 1073
	optNewEnviron = 39 // RFC 1572
)

// Sub-negotiation qualifiers (RFC 1091 and RFC 1572).
const (
	qualIS   = 0
	qualSEND = 1
	envVAR   = 0
	envVALUE = 1
	envESC   = 2
	envUSER  = 3
)

// maxSB bounds a sub-negotiation we keep; the rest of a longer one is
// dropped (our options need a few bytes).
const maxSB = 512

// maxTerm bounds the terminal type sent, as BSD telnet's 40 characters.
const maxTerm = 40

// qstate is an option side's state in RFC 1143's Q method.
type qstate uint8

const (
	qNo qstate = iota
	qYes
	qWantNo
	qWantYes
)

// side is one direction of one option: its state and RFC 1143's queue
// bit (OPPOSITE: the other request is queued behind the pending one).
type side struct {
	state    qstate
	opposite bool
}

// parser states of the receive side.
type rstate uint8

const (
	rData   rstate = iota
	rIAC           // IAC seen
	rOpt           // IAC WILL/WONT/DO/DONT seen; the option byte is next
	rSB            // IAC SB seen; the option byte is next
	rSBData        // inside a sub-negotiation
	rSBIAC         // IAC inside a sub-negotiation
)

// Engine is the TELNET protocol of one connection: the option state
// machine and the NVT codec, without I/O. Receive takes what the server
// sent and returns the data for the user and the answers for the server;
// Encode turns what the user typed into NVT bytes. Not safe for
// concurrent use.
type Engine struct {
	us, him [256]side // us: options we perform (WILL/WONT); him: the server's (DO/DONT)

	term       string // RFC 1091 terminal type
	cols, rows int    // RFC 1073 window size
	user       string // RFC 1572 USER ("" : not exported)

	st     rstate
	verb   byte // the pending WILL/WONT/DO/DONT in rOpt
	crHeld bool // a CR from the server waits for its next byte
	sbOpt  byte
	sb     []byte
	sbLong bool // the sub-negotiation passed maxSB
	data   []byte
	reply  []byte
}

// NewEngine returns an engine that sends term for TERMINAL-TYPE, cols x
// rows for NAWS (0x0: no size known, none sent) and user (if not
// empty) as NEW-ENVIRON's USER.
func NewEngine(term string, cols, rows int, user string) *Engine {
	if len(term) > maxTerm {
		term = term[:maxTerm]
	}
	return &Engine{term: term, cols: cols, rows: rows, user: user}
}

// supportsUs reports whether we agree to perform opt when the server
// asks (DO opt).
func supportsUs(opt byte) bool {
	switch opt {
	case optBinary, optSGA, optTTYPE, optNAWS, optNewEnviron:
		return true
	}
	return false
}

// supportsHim reports whether we let the server perform opt (WILL opt).
func supportsHim(opt byte) bool {
	switch opt {
	case optBinary, optEcho, optSGA:
		return true
	}
	return false
}

// Us reports whether we perform opt; Him whether the server does.
func (e *Engine) Us(opt byte) bool  { return e.us[opt].state == qYes }
func (e *Engine) Him(opt byte) bool { return e.him[opt].state == qYes }

// Receive parses server bytes. It returns the data bytes for the user
// and the bytes to send back; both are valid until the next call.
func (e *Engine) Receive(p []byte) (data, reply []byte) {
	e.data, e.reply = e.data[:0], e.reply[:0]
	for _, c := range p {
		e.receiveByte(c)
	}
	return e.data, e.reply
}

// Flush returns a CR still held for its next byte (at the end of the
// connection).
func (e *Engine) Flush() []byte {
	if e.crHeld {
		e.crHeld = false
		return []byte{'\r'}
	}
	return nil
}

// dataByte is a byte of the NVT data stream. Outside binary mode a CR
// is followed by NUL (a bare CR) or LF (end of line) (RFC 854, "The NVT
// Printer and Keyboard"): CR NUL is given to the user as CR, and CR LF
// as LF while the server does not echo, as BSD telnet's telrcv does.
func (e *Engine) dataByte(c byte) {
	if e.crHeld {
		e.crHeld = false
		switch {
		case c == 0:
			e.data = append(e.data, '\r')
			return
		case c == '\n' && !e.Him(optEcho):
			e.data = append(e.data, '\n')
			return
		}
		e.data = append(e.data, '\r')
	}
	if c == '\r' && !e.Him(optBinary) {
		e.crHeld = true
		return
	}
	e.data = append(e.data, c)
}

func (e *Engine) receiveByte(c byte) {
	switch e.st {
	case rData:
		if c == cmdIAC {
			e.st = rIAC
			return
		}
		e.dataByte(c)
	case rIAC:
		e.st = rData
		switch c {
		case cmdIAC:
			e.dataByte(cmdIAC) // IAC IAC: a data byte 255
		case cmdWILL, cmdWONT, cmdDO, cmdDONT:
			e.verb, e.st = c, rOpt
		case cmdSB:
			e.st = rSB
		default:
			// NOP, DM, GA, AYT, … from a server: nothing for a client
			// without urgent-data handling to do.
		}
	case rOpt:
		e.st = rData
		e.negotiate(e.verb, c)
	case rSB:
		e.sbOpt, e.sb, e.sbLong, e.st = c, e.sb[:0], false, rSBData
	case rSBData:
		if c == cmdIAC {
			e.st = rSBIAC
			return
		}
		e.sbByte(c)
	case rSBIAC:
		switch c {
		case cmdIAC:
			e.sbByte(cmdIAC)
			e.st = rSBData
		case cmdSE:
			e.st = rData
			if !e.sbLong {
				e.suboption()
			}
		default:
			// IAC and a command other than SE inside a sub-negotiation:
			// the sub-negotiation was cut short (BSD telnet ends it
			// there); the command is taken as one.
			e.st = rIAC
			e.receiveByte(c)
		}
	}
}

func (e *Engine) sbByte(c byte) {
	if len(e.sb) >= maxSB {
		e.sbLong = true
		return
	}
	e.sb = append(e.sb, c)
}

func (e *Engine) send(verb, opt byte) { e.reply = append(e.reply, cmdIAC, verb, opt) }

// negotiate is RFC 1143 section 7's receive side: an answer only when
// the state changes, so two conforming ends never loop.
func (e *Engine) negotiate(verb, opt byte) {
	switch verb {
	case cmdWILL:
		e.recvEnable(&e.him[opt], opt, supportsHim(opt), cmdDO, cmdDONT, false)
	case cmdWONT:
		e.recvDisable(&e.him[opt], opt, cmdDO, cmdDONT, false)
	case cmdDO:
		e.recvEnable(&e.us[opt], opt, supportsUs(opt), cmdWILL, cmdWONT, true)
	case cmdDONT:
		e.recvDisable(&e.us[opt], opt, cmdWILL, cmdWONT, true)
	}
}

// recvEnable handles WILL (for him) or DO (for us); yes/no are the verbs
// that agree and refuse.
func (e *Engine) recvEnable(s *side, opt byte, ok bool, yes, no byte, local bool) {
	switch s.state {
	case qNo:
		if ok {
			s.state = qYes
			e.send(yes, opt)
			e.enabled(opt, local)
		} else {
			e.send(no, opt)
		}
	case qYes:
		// Already enabled: no answer (RFC 1143's rule against loops).
	case qWantNo:
		// Our DONT/WONT answered by WILL/DO: an error in the peer; take
		// the option as it says (RFC 1143: EMPTY → NO, OPPOSITE → YES).
		if s.opposite {
			s.state, s.opposite = qYes, false
			e.enabled(opt, local)
		} else {
			s.state = qNo
		}
	case qWantYes:
		if s.opposite {
			s.state, s.opposite = qWantNo, false
			e.send(no, opt)
		} else {
			s.state = qYes
			e.enabled(opt, local)
		}
	}
}

// recvDisable handles WONT (for him) or DONT (for us).
func (e *Engine) recvDisable(s *side, opt byte, yes, no byte, local bool) {
	switch s.state {
	case qNo:
	case qYes:
		s.state = qNo
		e.send(no, opt)
	case qWantNo:
		if s.opposite {
			s.state, s.opposite = qWantYes, false
			e.send(yes, opt)
		} else {
			s.state = qNo
		}
	case qWantYes:
		s.state, s.opposite = qNo, false
	}
}

// enabled runs what an option does when it comes on.
func (e *Engine) enabled(opt byte, local bool) {
	if local && opt == optNAWS && e.cols > 0 && e.rows > 0 {
		// RFC 1073: the client sends its size once NAWS is agreed.
		e.reply = e.appendNAWS(e.reply)
	}
}

// suboption answers a complete sub-negotiation.
func (e *Engine) suboption() {
	switch e.sbOpt {
	case optTTYPE:
		// RFC 1091: IAC SB TERMINAL-TYPE SEND IAC SE → IS name.
		if e.Us(optTTYPE) && len(e.sb) >= 1 && e.sb[0] == qualSEND {
			e.reply = append(e.reply, cmdIAC, cmdSB, optTTYPE, qualIS)
			e.reply = appendEscaped(e.reply, []byte(e.term))
			e.reply = append(e.reply, cmdIAC, cmdSE)
		}
	case optNewEnviron:
		if e.Us(optNewEnviron) && len(e.sb) >= 1 && e.sb[0] == qualSEND {
			e.reply = e.appendEnviron(e.reply, e.sb[1:])
		}
	}
}

// appendEnviron answers RFC 1572's SEND: the variables asked for that we
// export (only USER, from -l), or all of them when the list is empty.
func (e *Engine) appendEnviron(b, list []byte) []byte {
	b = append(b, cmdIAC, cmdSB, optNewEnviron, qualIS)
	want := len(list) == 0
	// The list is a series of VAR/USERVAR names, ESC quoting a byte.
	for i := 0; i < len(list); {
		typ := list[i]
		i++
		var name []byte
		for i < len(list) && list[i] != envVAR && list[i] != envUSER {
			if list[i] == envESC && i+1 < len(list) {
				i++
			}
			name = append(name, list[i])
			i++
		}
		if typ == envVAR && (len(name) == 0 || string(name) == "USER") {
			want = true
		}
	}
	if want && e.user != "" {
		b = append(b, envVAR)
		b = appendEnvString(b, "USER")
		b = append(b, envVALUE)
		b = appendEnvString(b, e.user)
	}
	return append(b, cmdIAC, cmdSE)
}

// appendEnvString quotes RFC 1572's special bytes with ESC and doubles IAC.
func appendEnvString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case envVAR, envVALUE, envESC, envUSER:
			b = append(b, envESC, c)
		case cmdIAC:
			b = append(b, cmdIAC, cmdIAC)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendNAWS is RFC 1073's IAC SB NAWS width(16) height(16) IAC SE, a
// 255 in the size doubled.
func (e *Engine) appendNAWS(b []byte) []byte {
	var sz [4]byte
	binary.BigEndian.PutUint16(sz[0:], uint16(clamp(e.cols)))
	binary.BigEndian.PutUint16(sz[2:], uint16(clamp(e.rows)))
	b = append(b, cmdIAC, cmdSB, optNAWS)
	b = appendEscaped(b, sz[:])
	return append(b, cmdIAC, cmdSE)
}

func clamp(n int) int { return max(0, min(n, 0xffff)) }

// SetWindow changes the window size; it returns the NAWS update to send
// when NAWS is on.
func (e *Engine) SetWindow(cols, rows int) []byte {
	e.cols, e.rows = cols, rows
	if !e.Us(optNAWS) || cols <= 0 || rows <= 0 {
		return nil
	}
	return e.appendNAWS(nil)
}

// appendEscaped appends p with IAC doubled.
func appendEscaped(b, p []byte) []byte {
	for _, c := range p {
		if c == cmdIAC {
			b = append(b, cmdIAC)
		}
		b = append(b, c)
	}
	return b
}

// RequestUs asks to perform opt ourselves (WILL) and RequestHim asks
// the server to perform opt (DO): RFC 1143's "we want to enable". They
// return the bytes to send (none when the option is on or pending).
func (e *Engine) RequestUs(opt byte) []byte  { return e.request(&e.us[opt], cmdWILL, opt) }
func (e *Engine) RequestHim(opt byte) []byte { return e.request(&e.him[opt], cmdDO, opt) }

func (e *Engine) request(s *side, verb, opt byte) []byte {
	switch s.state {
	case qNo:
		s.state = qWantYes
		return []byte{cmdIAC, verb, opt}
	case qWantNo:
		s.opposite = true
	case qWantYes:
		s.opposite = false
	}
	return nil
}

// Encode turns typed bytes into NVT bytes (BSD telnet's telsnd): IAC is
// doubled; outside binary mode a CR goes as CR NUL and, while the
// server has not agreed to suppress go-ahead (the old "kludge" line
// mode), a LF goes as CR LF, the NVT end of line (RFC 854).
func (e *Engine) Encode(p []byte) []byte {
	out := make([]byte, 0, len(p)+len(p)/8+2)
	binaryOut := e.Us(optBinary)
	lineMode := !e.Him(optSGA)
	for _, c := range p {
		switch {
		case c == cmdIAC:
			out = append(out, cmdIAC, cmdIAC)
		case binaryOut:
			out = append(out, c)
		case c == '\r':
			out = append(out, '\r', 0)
		case c == '\n' && lineMode:
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// Command is IAC followed by one command byte (AYT, IP, BRK, …).
func Command(c byte) []byte { return []byte{cmdIAC, c} }
