package waiter

import "testing"

func TestNotifyWakesOnlyInterestedEntries(t *testing.T) {
	var q Queue
	var gotIn, gotOut EventMask
	in := NewEntry(EventIn, func(m EventMask) { gotIn |= m })
	out := NewEntry(EventOut, func(m EventMask) { gotOut |= m })
	q.Register(in)
	q.Register(out)
	if q.Len() != 2 {
		t.Fatalf("Len %d, want 2", q.Len())
	}
	q.Notify(EventIn)
	if gotIn != EventIn || gotOut != 0 {
		t.Errorf("EventIn woke in=%#x out=%#x", gotIn, gotOut)
	}
	// Errors and hang-ups wake every entry, asked for or not (poll(2)).
	q.Notify(EventErr | EventHUp)
	if gotOut != EventErr|EventHUp {
		t.Errorf("EventErr|EventHUp reached the EventOut entry as %#x", gotOut)
	}
	q.Unregister(in)
	q.Unregister(in) // a second removal does nothing
	gotIn = 0
	q.Notify(EventIn)
	if gotIn != 0 || q.Len() != 1 {
		t.Errorf("unregistered entry woke (%#x), Len %d", gotIn, q.Len())
	}
	out.SetMask(EventIn)
	gotOut = 0
	q.Notify(EventIn | EventOut)
	if gotOut != EventIn {
		t.Errorf("after SetMask(EventIn), Notify(In|Out) delivered %#x", gotOut)
	}
	q.Notify(0) // nothing to do
}

func TestChannelEntryNeverBlocks(t *testing.T) {
	var q Queue
	e, ch := NewChannelEntry(EventIn)
	q.Register(e)
	for i := 0; i < 100; i++ {
		q.Notify(EventIn) // a full one-slot channel must not block the notifier
	}
	select {
	case <-ch:
	default:
		t.Fatal("no wake-up")
	}
	select {
	case <-ch:
		t.Fatal("more than one pending wake-up")
	default:
	}
	q.Unregister(e)
	q.Notify(EventIn)
	select {
	case <-ch:
		t.Fatal("woken after Unregister")
	default:
	}
}

func TestEntriesRemovedFromTheMiddle(t *testing.T) {
	var q Queue
	var order []int
	es := make([]*Entry, 5)
	for i := range es {
		es[i] = NewEntry(EventIn, func(EventMask) { order = append(order, i) })
		q.Register(es[i])
	}
	q.Unregister(es[2])
	q.Unregister(es[4]) // the head (entries are pushed at the front)
	q.Unregister(es[0]) // the tail
	q.Notify(EventIn)
	if len(order) != 2 || q.Len() != 2 {
		t.Fatalf("woke %v, Len %d; want entries 3 and 1", order, q.Len())
	}
	q.Register(es[2]) // an entry can be registered again once removed
	if q.Len() != 3 {
		t.Errorf("Len %d after re-registering", q.Len())
	}
}

func TestDoubleRegisterPanics(t *testing.T) {
	var q, r Queue
	e := NewEntry(EventIn, func(EventMask) {})
	q.Register(e)
	defer func() {
		if recover() == nil {
			t.Error("registering an entry on a second queue did not panic")
		}
	}()
	r.Register(e)
}
