package stall_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/stall"
)

const limit = 100 * time.Millisecond

// pair returns a loopback TCP connection, its client end bounded.
func pair(t *testing.T, waits *stall.Waits) (*stall.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	t.Cleanup(func() { c.Close(); peer.Close() })
	errStalled := errors.New("stalled")
	return stall.Wrap(c, limit, func(time.Duration) error { return errStalled }, waits), peer
}

// A peer that says nothing fails the read with the stall error; one that
// keeps moving bytes, slowly, never does, however long it takes.
func TestReadStallsOnlyWithoutProgress(t *testing.T) {
	t.Parallel()
	c, peer := pair(t, nil)
	if _, err := c.Read(make([]byte, 1)); err == nil || err.Error() != "stalled" {
		t.Fatalf("read from a silent peer: %v, want the stall error", err)
	}

	c, peer = pair(t, nil)
	go func() {
		for range 8 {
			time.Sleep(limit / 4)
			peer.Write([]byte("x"))
		}
		peer.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "xxxxxxxx" {
		t.Errorf("a slow transfer of 8 bytes over %s: %q, %v", 2*limit, got, err)
	}
}

// Bytes moving the other way (a COPY FROM streaming rows while the server
// is silent until the end) keep a read alive.
func TestWritesKeepAReadAlive(t *testing.T) {
	t.Parallel()
	c, peer := pair(t, nil)
	go io.Copy(io.Discard, peer)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	for range 6 {
		time.Sleep(limit / 3)
		if _, err := c.Write([]byte("row\n")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the read ended while the writes moved bytes: %v", err)
	default:
	}
	if err := <-done; err == nil || err.Error() != "stalled" {
		t.Errorf("the read after the writes stopped: %v, want the stall error", err)
	}
}

// The user's deadlines keep their meaning: a read past one gets the
// ordinary timeout, which a later deadline clears.
func TestUserDeadlines(t *testing.T) {
	t.Parallel()
	c, peer := pair(t, nil)
	c.SetReadDeadline(time.Now().Add(limit / 10))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the user's deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	peer.Write([]byte("y"))
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Errorf("read after clearing the deadline: %d, %v", n, err)
	}
	// A deadline set while a read waits cuts it short.
	go func() {
		time.Sleep(limit / 10)
		c.SetDeadline(time.Now())
	}()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read cut by a deadline set meanwhile: %v", err)
	}
}

// A quiet connection (LISTEN) waits for the peer as long as it takes.
func TestQuietReadsWait(t *testing.T) {
	t.Parallel()
	c, peer := pair(t, nil)
	if !stall.Quiet(c, true) {
		t.Fatal("Quiet does not know a *Conn")
	}
	go func() {
		time.Sleep(3 * limit)
		peer.Write([]byte("z"))
	}()
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("quiet read: %d, %v", n, err)
	}
	stall.Quiet(c, false)
	if _, err := c.Read(make([]byte, 1)); err == nil || err.Error() != "stalled" {
		t.Errorf("read after quiet ended: %v, want the stall error", err)
	}
}

// A write to a peer that reads nothing stalls once the buffers are full.
func TestWriteStalls(t *testing.T) {
	t.Parallel()
	c, _ := pair(t, nil)
	chunk := make([]byte, 1<<20)
	for i := 0; ; i++ {
		if _, err := c.Write(chunk); err != nil {
			if err.Error() != "stalled" {
				t.Fatalf("write to a peer that does not read: %v, want the stall error", err)
			}
			return
		}
		if i > 1000 {
			t.Fatal("1 GiB written to a peer that reads nothing")
		}
	}
}

// Waits tells a wait in progress from none, and Begin's waits too.
func TestWaits(t *testing.T) {
	t.Parallel()
	var w stall.Waits
	if got := w.Longest(); got != 0 {
		t.Errorf("no wait: %s", got)
	}
	c, peer := pair(t, &w)
	stall.Quiet(c, true)
	done := make(chan struct{})
	go func() {
		c.Read(make([]byte, 1))
		close(done)
	}()
	time.Sleep(limit / 2)
	if got := w.Longest(); got != 0 {
		t.Errorf("a quiet read counts as a wait of %s", got)
	}
	stall.Quiet(c, false)
	end := w.Begin()
	time.Sleep(limit / 2)
	if got := w.Longest(); got < limit/2 {
		t.Errorf("longest wait %s, want at least %s", got, limit/2)
	}
	before := time.Now()
	end()
	peer.Write([]byte("a"))
	<-done
	if got := w.Longest(); got != 0 {
		t.Errorf("after the waits ended: %s", got)
	}
	// What was in progress at a time past is still known: a deadline
	// that ended a wait does not hide it.
	if got := w.LongestAt(before); got < limit/2 {
		t.Errorf("the wait in progress a moment ago: %s, want at least %s", got, limit/2)
	}
	var none *stall.Waits
	none.Begin()()
	if none.Longest() != 0 {
		t.Error("a nil Waits records")
	}
}

// The default error is a net.Error timeout, and it sticks: a client that
// reads again after a timeout (pgconn) gets it again, at once.
func TestDefaultError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := stall.Wrap(raw, limit, nil, nil)
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v: want a net.Error timeout", err)
	}
	start := time.Now()
	if _, again := c.Read(make([]byte, 1)); again != err || time.Since(start) > limit/2 {
		t.Errorf("the read after the stall: %v after %s, want %v at once", again, time.Since(start), err)
	}
	if _, again := c.Write([]byte("x")); again != err {
		t.Errorf("a write after the stall: %v, want %v", again, err)
	}
	if stall.Unwrap(c) != c || stall.Unwrap(raw) != nil {
		t.Error("Unwrap")
	}
}

func TestLimit(t *testing.T) {
	for _, c := range []struct{ option, want time.Duration }{
		{0, 30 * time.Second},
		{-1, 0},
		{-time.Hour, 0},
		{time.Millisecond, time.Millisecond},
	} {
		if got := stall.Limit(c.option, 30*time.Second); got != c.want {
			t.Errorf("Limit(%v, 30s) = %v, want %v", c.option, got, c.want)
		}
	}
}
