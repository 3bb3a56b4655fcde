package route

import (
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// Table IDs with the numbers Linux gives them (rt_tables).
const (
	TableDefault uint32 = 253
	TableMain    uint32 = 254
)

// Priorities of the rules a new Policy starts with, as in Linux.
const (
	PriorityMain    uint32 = 32766
	PriorityDefault uint32 = 32767
)

// Action is what a rule does when it matches (Linux FR_ACT_*).
type Action uint8

const (
	// ActionLookup looks the destination up in the rule's table; if that
	// table has no route, the next rule is tried.
	ActionLookup Action = iota
	// ActionBlackhole, ActionUnreachable and ActionProhibit end the lookup
	// with a reject route of that type.
	ActionBlackhole
	ActionUnreachable
	ActionProhibit
)

// Rule selects a table for a flow, like one line of `ip rule`. Zero
// selector fields match everything.
type Rule struct {
	Priority uint32
	Src      netip.Prefix // "from": the flow's source address; invalid = all
	Dst      netip.Prefix // "to": the flow's destination; invalid = all
	Mark     uint32       // "fwmark Mark/Mask": matches when flow.Mark&Mask == Mark
	Mask     uint32       // 0 with Mark != 0 means 0xffffffff, as Linux
	IIF      int          // incoming interface (forwarded packets); 0 = any
	OIF      int          // outgoing interface the socket is bound to; 0 = any
	Action   Action
	Table    uint32 // for ActionLookup
}

// String formats r like `ip rule` prints it.
func (r Rule) String() string {
	b := strconv.AppendUint(nil, uint64(r.Priority), 10)
	b = append(b, ":\tfrom "...)
	if r.Src.IsValid() {
		b = append(b, r.Src.String()...)
	} else {
		b = append(b, "all"...)
	}
	if r.Dst.IsValid() {
		b = append(b, " to "...)
		b = append(b, r.Dst.String()...)
	}
	if r.Mark != 0 || r.Mask != 0 {
		b = append(b, " fwmark 0x"...)
		b = strconv.AppendUint(b, uint64(r.Mark), 16)
		if r.Mask != 0xffffffff {
			b = append(b, "/0x"...)
			b = strconv.AppendUint(b, uint64(r.Mask), 16)
		}
	}
	if r.IIF != 0 {
		b = append(b, " iif #"...)
		b = strconv.AppendInt(b, int64(r.IIF), 10)
	}
	if r.OIF != 0 {
		b = append(b, " oif #"...)
		b = strconv.AppendInt(b, int64(r.OIF), 10)
	}
	switch r.Action {
	case ActionLookup:
		b = append(b, " lookup "...)
		switch r.Table {
		case TableMain:
			b = append(b, "main"...)
		case TableDefault:
			b = append(b, "default"...)
		default:
			b = strconv.AppendUint(b, uint64(r.Table), 10)
		}
	case ActionBlackhole:
		b = append(b, " blackhole"...)
	case ActionUnreachable:
		b = append(b, " unreachable"...)
	case ActionProhibit:
		b = append(b, " prohibit"...)
	}
	return string(b)
}

// Flow is what rules select on: a packet to route, or a socket's route.
type Flow struct {
	Dst  netip.Addr
	Src  netip.Addr // invalid when the source is not chosen yet
	Mark uint32
	IIF  int // 0 for locally originated packets
	OIF  int // 0 unless the socket is bound to an interface
}

// matches reports whether rule r selects flow f. A rule with a source or
// destination prefix applies only to that family; an unset flow source
// matches only rules without a source (Linux compares the unspecified
// address, which no non-default prefix contains).
func (r *Rule) matches(f *Flow) bool {
	if r.Src.IsValid() {
		if r.Src.Addr().Is4() != f.Dst.Is4() {
			return false
		}
		src := f.Src
		if !src.IsValid() {
			src = netip.IPv6Unspecified()
			if f.Dst.Is4() {
				src = netip.IPv4Unspecified()
			}
		}
		if !r.Src.Contains(src) {
			return false
		}
	}
	if r.Dst.IsValid() && !r.Dst.Contains(f.Dst) {
		return false
	}
	return (f.Mark^r.Mark)&r.Mask == 0 &&
		(r.IIF == 0 || r.IIF == f.IIF) &&
		(r.OIF == 0 || r.OIF == f.OIF)
}

// Policy is policy routing: several tables and the priority-ordered rules
// that choose among them (`ip rule`, RFC 1812 §5.2.1 lets a router route on
// more than the destination). It starts with the main and default tables
// and the rules "32766: from all lookup main" and "32767: from all lookup
// default" (Linux also has "0: lookup local"; this package keeps no local
// table, local delivery is the stack's). Safe for concurrent use; its lock
// is taken before a table's, never the other way round.
type Policy struct {
	gen  atomic.Uint64 // bumped when rules or the set of tables change
	once sync.Once     // makes the zero Policy the same as NewPolicy's

	mu     sync.RWMutex
	tables map[uint32]*Table
	rules  []Rule // by priority, then insertion
}

// NewPolicy returns a Policy with empty main and default tables and the
// default rules. The zero Policy is the same.
func NewPolicy() *Policy { return new(Policy) }

func (p *Policy) init() {
	p.tables = map[uint32]*Table{TableMain: New(), TableDefault: New()}
	p.rules = []Rule{
		{Priority: PriorityMain, Table: TableMain},
		{Priority: PriorityDefault, Table: TableDefault},
	}
}

func (p *Policy) lock() {
	p.once.Do(p.init)
	p.mu.Lock()
}

func (p *Policy) rlock() {
	p.once.Do(p.init)
	p.mu.RLock()
}

// Main returns the main table, where routes go when no table is named.
func (p *Policy) Main() *Table { return p.Table(TableMain) }

// Table returns table id, creating it empty if it does not exist (like `ip
// route add … table id`). id 0 means main.
func (p *Policy) Table(id uint32) *Table {
	if id == 0 {
		id = TableMain
	}
	p.rlock()
	t := p.tables[id]
	p.mu.RUnlock()
	if t != nil {
		return t
	}
	p.lock()
	defer p.mu.Unlock()
	if t = p.tables[id]; t == nil {
		t = New()
		p.tables[id] = t
		p.gen.Add(1)
	}
	return t
}

// Tables returns the IDs of the existing tables, ascending.
func (p *Policy) Tables() []uint32 {
	p.rlock()
	defer p.mu.RUnlock()
	ids := make([]uint32, 0, len(p.tables))
	for id := range p.tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func normalizeRule(r *Rule) error {
	if r.Src.IsValid() {
		if r.Src != r.Src.Masked() {
			return errorf("rule", syscall.EINVAL, "source %v has host bits set", r.Src)
		}
	} else {
		r.Src = netip.Prefix{}
	}
	if r.Dst.IsValid() {
		if r.Dst != r.Dst.Masked() {
			return errorf("rule", syscall.EINVAL, "destination %v has host bits set", r.Dst)
		}
		if r.Src.IsValid() && r.Src.Addr().Is4() != r.Dst.Addr().Is4() {
			return errorf("rule", syscall.EINVAL, "source %v and destination %v differ in family", r.Src, r.Dst)
		}
	} else {
		r.Dst = netip.Prefix{}
	}
	if r.Mark != 0 && r.Mask == 0 {
		r.Mask = 0xffffffff
	}
	if r.Mark&^r.Mask != 0 {
		return errorf("rule", syscall.EINVAL, "fwmark 0x%x has bits outside mask 0x%x", r.Mark, r.Mask)
	}
	if r.IIF < 0 || r.OIF < 0 {
		return errorf("rule", syscall.EINVAL, "invalid interface index")
	}
	switch r.Action {
	case ActionLookup:
		if r.Table == 0 {
			return errorf("rule", syscall.EINVAL, "lookup rule without a table")
		}
	case ActionBlackhole, ActionUnreachable, ActionProhibit:
		r.Table = 0
	default:
		return errorf("rule", syscall.EINVAL, "invalid action %d", r.Action)
	}
	return nil
}

// AddRule inserts r after the rules of lower or equal priority. It fails
// with EEXIST if an identical rule exists (fib_nl_newrule) and EINVAL for
// a malformed one. A lookup rule naming a table that does not exist yet is
// allowed; the lookup skips it until the table is created.
func (p *Policy) AddRule(r Rule) error {
	if err := normalizeRule(&r); err != nil {
		return err
	}
	p.lock()
	defer p.mu.Unlock()
	if slices.Contains(p.rules, r) {
		return errorf("rule", syscall.EEXIST, "%v", r)
	}
	i := 0
	for i < len(p.rules) && p.rules[i].Priority <= r.Priority {
		i++
	}
	p.rules = slices.Insert(p.rules, i, r)
	p.gen.Add(1)
	return nil
}

// DeleteRule removes the first rule that r matches, where only r's
// non-zero fields are compared (`ip rule del priority 100` deletes rule
// 100). It fails with ENOENT, as Linux does, when none matches.
func (p *Policy) DeleteRule(r Rule) error {
	if r.Mark != 0 && r.Mask == 0 {
		r.Mask = 0xffffffff
	}
	p.lock()
	defer p.mu.Unlock()
	for i, o := range p.rules {
		if (r.Priority == 0 || o.Priority == r.Priority) &&
			(!r.Src.IsValid() || o.Src == r.Src) &&
			(!r.Dst.IsValid() || o.Dst == r.Dst) &&
			(r.Mask == 0 || (o.Mark == r.Mark && o.Mask == r.Mask)) &&
			(r.IIF == 0 || o.IIF == r.IIF) &&
			(r.OIF == 0 || o.OIF == r.OIF) &&
			(r.Action == ActionLookup || o.Action == r.Action) &&
			(r.Table == 0 || o.Table == r.Table) {
			p.rules = slices.Delete(p.rules, i, i+1)
			p.gen.Add(1)
			return nil
		}
	}
	return errorf("rule", syscall.ENOENT, "no rule %v", r)
}

// Rules returns the rules in the order they are tried.
func (p *Policy) Rules() []Rule {
	p.rlock()
	defer p.mu.RUnlock()
	return slices.Clone(p.rules)
}

// Generation changes whenever a rule, the set of tables, or any table
// changes; use it like Table.Generation.
func (p *Policy) Generation() uint64 {
	p.rlock()
	defer p.mu.RUnlock()
	g := p.gen.Load()
	for _, t := range p.tables {
		g += t.Generation()
	}
	return g
}

// Lookup routes flow f: it tries the rules in order, and the first rule
// that matches and ends the lookup decides. A lookup rule ends it when its
// table has a route for f.Dst (through f.OIF if set, see Table.LookupNIC),
// a reject route included; a rule action ends it with a reject route of
// the action's type for f.Dst's whole family (Dst /0, no interface). table
// is the ID of the table the route came from, 0 for a rule action.
func (p *Policy) Lookup(f Flow) (r Route, table uint32, ok bool) {
	if !f.Dst.IsValid() {
		return Route{}, 0, false
	}
	f.Dst, f.Src = f.Dst.WithZone(""), f.Src.WithZone("") // Prefix.Contains refuses zones
	p.rlock()
	defer p.mu.RUnlock()
	for i := range p.rules {
		rule := &p.rules[i]
		if !rule.matches(&f) {
			continue
		}
		var typ Type
		switch rule.Action {
		case ActionLookup:
			t := p.tables[rule.Table]
			if t == nil {
				continue
			}
			if r, ok := t.LookupNIC(f.Dst, f.OIF); ok {
				return r, rule.Table, true
			}
			continue
		case ActionBlackhole:
			typ = TypeBlackhole
		case ActionUnreachable:
			typ = TypeUnreachable
		case ActionProhibit:
			typ = TypeProhibit
		}
		dst, _ := f.Dst.Prefix(0)
		return Route{Dst: dst, Type: typ, Protocol: ProtoBoot}, 0, true
	}
	return Route{}, 0, false
}
