package tote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/terrifictotes/tote"
)

func TestErrorMessages(t *testing.T) {
	soon := "soon"
	for _, c := range []struct {
		where tote.Where
		err   error
		want  string
	}{
		{tote.Where{}, io.ErrUnexpectedEOF, "unexpected EOF"},
		{tote.Where{Stage: tote.Extract}, errors.New("server unreachable"), "extract: server unreachable"},
		{tote.Where{Stage: tote.Transform, Batch: "000000000003-x"}, errors.New("boom"), "transform raw batch 000000000003-x: boom"},
		{tote.Where{Stage: tote.Load, Batch: "7-x", Table: "dim_staff"}, errors.New("boom"), "load processed batch 7-x: dim_staff: boom"},
		{tote.Where{Batch: "7-x"}, errors.New("boom"), "batch 7-x: boom"},
		{tote.Where{Stage: tote.Transform, Batch: "1-x", Table: "sales_order", ID: 7, Version: time.Now(), Column: "agreed_delivery_date", Value: &soon},
			errors.New("is not a date (YYYY-MM-DD)"),
			`transform raw batch 1-x: sales_order 7: agreed_delivery_date "soon" is not a date (YYYY-MM-DD)`},
		{tote.Where{Table: "staff", ID: 3, Column: "first_name"}, errors.New("NULL, which the source does not allow"),
			"staff 3: column first_name: NULL, which the source does not allow"},
		{tote.Where{ID: 3}, errors.New("boom"), "id 3: boom"},
		{tote.Where{Stage: tote.Load}, nil, "load: unknown error"},
	} {
		e := &tote.Error{Where: c.where, Err: c.err}
		if got := e.Error(); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.where, got, c.want)
		}
	}
}

// Each layer adds what it knows; the message says each thing once, and
// the fields are read back with errors.As or Locate.
func TestAtAddsEachFieldOnce(t *testing.T) {
	err := tote.ValueError("currency_code", "XYZ", "is not an ISO 4217 currency code")
	err = tote.At(err, tote.Where{Table: "currency", ID: 4})
	err = tote.At(err, tote.Where{Batch: "000000000001-x", Table: "ignored: already set"})
	err = tote.At(err, tote.Where{Stage: tote.Transform})
	want := `transform raw batch 000000000001-x: currency 4: currency_code "XYZ" is not an ISO 4217 currency code`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	w := tote.Locate(err)
	if w.Stage != tote.Transform || w.Table != "currency" || w.ID != 4 || w.Batch != "000000000001-x" || w.Value == nil || *w.Value != "XYZ" {
		t.Errorf("Locate = %+v", w)
	}
	var e *tote.Error
	if !errors.As(fmt.Errorf("run 3: %w", err), &e) || e.Column != "currency_code" {
		t.Errorf("errors.As through a wrapper: %v", e)
	}
	if tote.At(nil, tote.Where{Stage: tote.Load}) != nil {
		t.Error("At(nil) is not nil")
	}
	if got := tote.Locate(io.EOF); got != (tote.Where{}) {
		t.Errorf("Locate of a plain error = %+v", got)
	}
	// A plain error is wrapped once, and still matches what it wraps.
	wrapped := tote.At(io.ErrUnexpectedEOF, tote.Where{Stage: tote.Extract, Table: "staff"})
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) || wrapped.Error() != "extract: staff: unexpected EOF" {
		t.Errorf("wrapped = %v", wrapped)
	}
}

// sqlError stands for a database driver's error (pgx's *pgconn.PgError).
type sqlError struct{ code string }

func (e *sqlError) Error() string    { return "ERROR: test (SQLSTATE " + e.code + ")" }
func (e *sqlError) SQLState() string { return e.code }

// apiError stands for an AWS SDK error (smithy.APIError).
type apiError struct{ code string }

func (e *apiError) Error() string     { return "api error " + e.code }
func (e *apiError) ErrorCode() string { return e.code }

// dialError stands for a driver's connection error that wraps both what
// the server said, if it said anything, and the way there.
type dialError struct{ errs []error }

func (e *dialError) Error() string   { return "failed to connect" }
func (e *dialError) Unwrap() []error { return e.errs }

// TestKindOf: an error's kind comes from what it says of itself, then the
// server's word, then the way there; anything else is Fatal. The cases are
// each tried bare, as a stage returns them (in a *tote.Error, wrapped below
// and above), and joined with an error of no kind.
func TestKindOf(t *testing.T) {
	busy := tote.Sentinel(tote.Busy, "another run holds the lock")
	corrupt := tote.Sentinel(tote.Fatal, "object does not match its manifest")
	for _, c := range []struct {
		name string
		err  error
		want tote.Kind
	}{
		{"a sentinel", busy, tote.Busy},
		{"a sentinel wrapped with its context", fmt.Errorf("raw/x.parquet: %w: 3 rows, the manifest says 4", corrupt), tote.Fatal},
		{"corruption found while the network failed too", errors.Join(corrupt, syscall.ECONNRESET), tote.Fatal},
		{"a bad value", tote.ValueError("agreed_delivery_date", "soon", "is not a date (YYYY-MM-DD)"), tote.Fatal},
		{"an Error that says its kind over a transient cause", &tote.Error{Kind: tote.Fatal, Err: context.DeadlineExceeded}, tote.Fatal},
		{"serialization failure", &sqlError{"40001"}, tote.Transient},
		{"deadlock", &sqlError{"40P01"}, tote.Transient},
		{"lock not available", &sqlError{"55P03"}, tote.Transient},
		{"server shutting down", &sqlError{"57P01"}, tote.Transient},
		{"server starting up", &sqlError{"57P03"}, tote.Transient},
		{"too many connections", &sqlError{"53300"}, tote.Transient},
		{"connection failure", &sqlError{"08006"}, tote.Transient},
		{"wrong password", &sqlError{"28P01"}, tote.Fatal},
		{"no such role", &sqlError{"28000"}, tote.Fatal},
		{"undefined table", &sqlError{"42P01"}, tote.Fatal},
		{"a wrong password, said while connecting", &dialError{[]error{&sqlError{"28P01"}, io.ErrUnexpectedEOF}}, tote.Fatal},
		{"a connection dropped while connecting", &dialError{[]error{io.ErrUnexpectedEOF}}, tote.Transient},
		{"throttled", &apiError{"SlowDown"}, tote.Transient},
		{"the service failed", &apiError{"InternalError"}, tote.Transient},
		{"access denied", &apiError{"AccessDenied"}, tote.Fatal},
		{"deadline", context.DeadlineExceeded, tote.Transient},
		{"cancelled downstream", context.Canceled, tote.Transient},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, tote.Transient},
		{"DNS", &net.DNSError{Err: "no such host", Name: "db.example", IsNotFound: true}, tote.Transient},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), tote.Transient},
		{"a full disk", fmt.Errorf("write: %w", syscall.ENOSPC), tote.Fatal},
		{"anything else", errors.New("the totesys tables are missing"), tote.Fatal},
	} {
		staged := fmt.Errorf("%w (noted)", tote.At(fmt.Errorf("query: %w", c.err), tote.Where{Stage: tote.Load, Table: "fact_sales_order"}))
		joined := errors.Join(errors.New("and then"), c.err)
		for _, err := range []error{c.err, staged, joined} {
			if got := tote.KindOf(err); got != c.want {
				t.Errorf("%s: KindOf(%v) = %v, want %v", c.name, err, got, c.want)
			}
			if got, want := tote.Retryable(err), c.want != tote.Fatal; got != want {
				t.Errorf("%s: Retryable(%v) = %v, want %v", c.name, err, got, want)
			}
		}
	}
	if k := tote.KindOf(nil); k != 0 || tote.Retryable(nil) {
		t.Errorf("KindOf(nil) = %v, Retryable(nil) = %v", k, tote.Retryable(nil))
	}
	// At keeps the kind of the Error it fills in.
	if err := tote.At(tote.ValueError("c", "v", "is bad"), tote.Where{Stage: tote.Transform}); tote.KindOf(err) != tote.Fatal {
		t.Errorf("KindOf(%v) = %v after At", err, tote.KindOf(err))
	}
}
