package tcp

import "time"

// timer is one of an endpoint's timers: a deadline and a time.AfterFunc
// that fires at or after it. Moving the deadline later does not touch the
// runtime timer (the callback re-arms itself), so the common case of
// pushing the retransmission timer back on every ACK is cheap.
type timer struct {
	t     *time.Timer
	at    time.Time // the deadline; zero when stopped
	sched time.Time // when t fires; zero when it is not pending
}

// set arms the timer for d from now; f runs (on its own goroutine) when
// the deadline passes and must call fired under the endpoint's lock.
func (tm *timer) set(d time.Duration, f func()) {
	now := time.Now()
	tm.at = now.Add(d)
	if !tm.sched.IsZero() && !tm.at.Before(tm.sched) {
		return
	}
	tm.sched = tm.at
	if tm.t == nil {
		tm.t = time.AfterFunc(d, f)
		return
	}
	tm.t.Reset(d)
}

// arm is set for a callback that is a method of the endpoint, from the
// time now of the caller: f(e) is wrapped once, when the runtime timer is
// made, so re-arming allocates nothing (a method value such as e.onRTO
// passed to set is a new closure at every call).
func (tm *timer) arm(now time.Time, d time.Duration, e *endpoint, f func(*endpoint)) {
	tm.at = now.Add(d)
	if !tm.sched.IsZero() && !tm.at.Before(tm.sched) {
		return
	}
	tm.sched = tm.at
	if tm.t == nil {
		tm.t = time.AfterFunc(d, func() { f(e) })
		return
	}
	tm.t.Reset(d)
}

func (tm *timer) stop() {
	tm.at = time.Time{}
	if tm.t != nil && !tm.sched.IsZero() {
		tm.t.Stop()
	}
	tm.sched = time.Time{}
}

func (tm *timer) armed() bool { return !tm.at.IsZero() }

// fired reports, in the callback under the endpoint's lock, whether the
// deadline has passed (and disarms the timer); otherwise it re-arms the
// runtime timer for the deadline, if there still is one.
func (tm *timer) fired() bool {
	tm.sched = time.Time{}
	if tm.at.IsZero() {
		return false
	}
	now := time.Now()
	if now.Before(tm.at) {
		tm.sched = tm.at
		tm.t.Reset(tm.at.Sub(now))
		return false
	}
	tm.at = time.Time{}
	return true
}
