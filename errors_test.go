package tote_test

import (
	"errors"
	"fmt"
	"io"
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
