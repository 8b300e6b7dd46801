// Package stall bounds waits on the network by progress rather than by
// total time: a connection whose reads and writes fail once no byte has
// moved either way for a while (Conn), and a record of the waits in
// progress (Waits), so that a caller that runs out of time can tell "the
// other side did not answer" from "there was too much work".
//
// A long transfer that keeps moving bytes is never cut; a peer that
// accepts and then says nothing, or stops in the middle, is. The packages
// that talk to servers (postgres, lake) build their connections with it
// and word the error; this package knows nothing of what flows.
package stall

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is the stall bound a caller's option asks for: its default def
// when the option is 0, no bound (0) when it is negative, else itself.
func Limit(option, def time.Duration) time.Duration {
	switch {
	case option < 0:
		return 0
	case option == 0:
		return def
	}
	return option
}

// Conn is a net.Conn whose Read and Write fail with the stall error when
// no byte has moved either way for its limit, counted from the later of
// the call's start and the last byte moved. Once stalled, a Conn returns
// the same error to every later Read and Write: it is stuck, and a client
// that retries a timed-out read on the same connection (pgconn does, for
// its own deadlines) gets the error again at once instead of waiting anew. Deadlines set by the
// connection's user still apply, and a call that reaches one returns the
// usual timeout error: the bound only adds to them. Conn is safe for one
// reader and one writer at a time, like the connections it wraps.
type Conn struct {
	net.Conn
	limit   atomic.Int64 // time.Duration; 0 for no bound
	stalled func(waited time.Duration) error
	waits   *Waits

	last  atomic.Int64 // unix nanoseconds when a byte last moved
	quiet atomic.Bool  // reads wait for what the peer may send unasked: unbounded

	mu          sync.Mutex
	dead        error // the stall error, once stalled
	read, write side
	calls       int // reads and writes in progress, for Waits
	callStart   time.Time
}

// side is the deadlines of one direction.
type side struct {
	user  time.Time // set by the connection's user
	bound time.Time // of the call in progress; zero if none
}

func (s side) effective() time.Time {
	switch {
	case s.user.IsZero():
		return s.bound
	case s.bound.IsZero() || s.user.Before(s.bound):
		return s.user
	}
	return s.bound
}

// Wrap returns c bounded by limit (no bound if limit is not positive);
// stalled builds the error a stalled call returns, given how long nothing
// moved, and waits, if not nil, records the calls in progress.
func Wrap(c net.Conn, limit time.Duration, stalled func(waited time.Duration) error, waits *Waits) *Conn {
	s := &Conn{Conn: c, stalled: stalled, waits: waits}
	s.limit.Store(int64(limit))
	s.last.Store(time.Now().UnixNano())
	return s
}

// Bound sets c's limit (no bound if not positive), for the calls that
// start from now: a connection is wrapped unbounded while a handshake
// that has bounds of its own runs, and bounded once it is done.
func (c *Conn) Bound(limit time.Duration) { c.limit.Store(int64(limit)) }

// Quiet lifts the bound from reads while on is true: for a connection
// that waits for what the peer sends unasked (PostgreSQL's LISTEN), where
// silence is no fault. It reports whether c is a *Conn.
func Quiet(c net.Conn, on bool) bool {
	s, ok := c.(*Conn)
	if ok {
		s.quiet.Store(on)
	}
	return ok
}

// Unwrap returns the *Conn under c, looking through TLS, or nil.
func Unwrap(c net.Conn) *Conn {
	for {
		switch x := c.(type) {
		case *Conn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
}

func (c *Conn) touch() { c.last.Store(time.Now().UnixNano()) }

// since is when the call that started at start last saw a byte move.
func (c *Conn) since(start time.Time) time.Time {
	last := time.Unix(0, c.last.Load())
	if last.After(start) {
		return last
	}
	return start
}

// Read reads from the connection.
func (c *Conn) Read(p []byte) (int, error) {
	return c.do(&c.read, c.Conn.SetReadDeadline, func() (int, error) { return c.Conn.Read(p) }, true)
}

// Write writes p whole, or fails.
func (c *Conn) Write(p []byte) (int, error) {
	written := 0
	for {
		n, err := c.do(&c.write, c.Conn.SetWriteDeadline, func() (int, error) { return c.Conn.Write(p[written:]) }, false)
		written += n
		if err != nil || written == len(p) {
			return written, err
		}
	}
}

// do runs one read or write, re-arming the bound while bytes move the
// other way, until it moves bytes, fails, or stalls.
func (c *Conn) do(s *side, set func(time.Time) error, call func() (int, error), reading bool) (int, error) {
	start := time.Now()
	c.enter(start)
	defer c.leave(s)
	limit := time.Duration(c.limit.Load())
	for {
		bounded := limit > 0 && !(reading && c.quiet.Load())
		c.mu.Lock()
		if c.dead != nil {
			c.mu.Unlock()
			return 0, c.dead
		}
		s.bound = time.Time{}
		if bounded {
			s.bound = c.since(start).Add(limit)
		}
		err := set(s.effective())
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := call()
		if n > 0 {
			c.touch()
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		now := time.Now()
		c.mu.Lock()
		user := s.user
		c.mu.Unlock()
		if !user.IsZero() && !now.Before(user) {
			return n, err // the user's own deadline
		}
		if n > 0 {
			return n, nil // the bound's, after some progress: the caller goes on
		}
		if waited := now.Sub(c.since(start)); bounded && waited >= limit {
			var err error = &Error{Waited: waited}
			if c.stalled != nil {
				err = c.stalled(waited)
			}
			c.mu.Lock()
			if c.dead == nil {
				c.dead = err
			}
			err = c.dead
			c.mu.Unlock()
			return n, err
		}
		// Bytes moved the other way meanwhile, or the bound was lifted or
		// the user's deadline moved: wait on.
	}
}

func (c *Conn) enter(start time.Time) {
	c.mu.Lock()
	if c.calls == 0 {
		c.callStart = start
	}
	c.calls++
	c.mu.Unlock()
	c.waits.enter(c)
}

func (c *Conn) leave(s *side) {
	c.mu.Lock()
	s.bound = time.Time{}
	since := c.since(c.callStart)
	c.calls--
	c.mu.Unlock()
	if !c.quiet.Load() {
		c.waits.leave(c, since)
	} else {
		c.waits.leave(c, time.Time{})
	}
}

// waitingSince is when the calls in progress last saw a byte move, or
// false if none is in progress (or reads are quiet).
func (c *Conn) waitingSince() (time.Time, bool) {
	c.mu.Lock()
	calls, start := c.calls, c.callStart
	c.mu.Unlock()
	if calls == 0 || c.quiet.Load() {
		return time.Time{}, false
	}
	return c.since(start), true
}

// SetDeadline sets the user's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the user's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read.user = t
	return c.Conn.SetReadDeadline(c.read.effective())
}

// SetWriteDeadline sets the user's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write.user = t
	return c.Conn.SetWriteDeadline(c.write.effective())
}

// Error is a stalled read or write, when Wrap was given no error of its
// own. It is a net.Error and a Timeout (see Conn for why that is safe).
type Error struct {
	Waited time.Duration
}

func (e *Error) Error() string {
	return "no data moved for " + e.Waited.Round(time.Millisecond).String()
}

// Timeout reports true.
func (e *Error) Timeout() bool { return true }

// Temporary reports false: the connection is not to be used again.
func (e *Error) Temporary() bool { return false }

var _ net.Error = (*Error)(nil)

// waiter is something that may be waiting on the network.
type waiter interface {
	waitingSince() (time.Time, bool)
}

// Waits records the waits on the network: the reads and writes of Conns
// given it, and Begin's, those in progress and the last ones that ended.
// A nil *Waits records nothing. It is safe for concurrent use.
type Waits struct {
	mu    sync.Mutex
	in    map[waiter]int
	ended [64]span // the last waits that ended, a ring
	next  int
}

// span is a wait that ended: from the last byte moved (or its start) to
// its end.
type span struct{ since, end time.Time }

func (w *Waits) enter(x waiter) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.in == nil {
		w.in = map[waiter]int{}
	}
	w.in[x]++
	w.mu.Unlock()
}

// leave ends a wait of x that last saw a byte move at since (zero: not a
// wait worth remembering).
func (w *Waits) leave(x waiter, since time.Time) {
	if w == nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	if w.in[x]--; w.in[x] <= 0 {
		delete(w.in, x)
	}
	if !since.IsZero() && now.Sub(since) > time.Millisecond {
		w.ended[w.next] = span{since, now}
		w.next = (w.next + 1) % len(w.ended)
	}
	w.mu.Unlock()
}

// fixed is a wait that began at a fixed time: a dial, a request.
type fixed struct{ t time.Time }

func (f *fixed) waitingSince() (time.Time, bool) { return f.t, true }

// Begin records a wait that starts now (connecting, a request awaiting
// its answer) until end is called.
func (w *Waits) Begin() (end func()) {
	if w == nil {
		return func() {}
	}
	f := &fixed{time.Now()}
	w.enter(f)
	return func() { w.leave(f, f.t) }
}

// Longest returns how long the longest wait in progress has gone without
// a byte moving, or 0 if none is in progress.
func (w *Waits) Longest() time.Duration {
	return w.LongestAt(time.Now())
}

// LongestAt returns how long, at time at, the longest wait then in
// progress had gone without a byte moving, or 0: for a caller whose
// deadline, at that time, ended the waits before it could look.
func (w *Waits) LongestAt(at time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	xs := make([]waiter, 0, len(w.in))
	for x := range w.in {
		xs = append(xs, x)
	}
	ended := w.ended
	w.mu.Unlock()
	var longest time.Duration
	for _, x := range xs {
		if since, ok := x.waitingSince(); ok && !since.After(at) {
			longest = max(longest, at.Sub(since))
		}
	}
	for _, sp := range ended {
		if !sp.since.IsZero() && !sp.since.After(at) && !sp.end.Before(at) {
			longest = max(longest, at.Sub(sp.since))
		}
	}
	return longest
}
