// Package alert owns telling people about the pipeline: what an alert says,
// the notifiers that deliver it (email over SMTP, a Slack-compatible
// webhook, Amazon SNS), and the incident state that sends one alert per
// incident and one recovery message when it ends.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/terrifictotes/tote"
)

// Kind says what an alert reports.
type Kind string

// Alert kinds. A Failure or Stale alert opens an incident; Recovery and
// Fresh close it.
const (
	Failure  Kind = "failure"  // a run failed after its retries
	Recovery Kind = "recovery" // a run succeeded after failures
	Stale    Kind = "stale"    // the warehouse is further behind the source than the threshold
	Fresh    Kind = "fresh"    // the warehouse has caught up again
	// Quarantine reports rows a run quarantined: values that cannot be
	// transformed. Each run that quarantines rows is an incident of its own.
	Quarantine Kind = "quarantine"
	// NewColumn reports a column added to a source table, which the star
	// schema does not read and the raw zone carries: one alert per column,
	// when the first batch carries it.
	NewColumn Kind = "new_column"
	// Difference opens an incident when tote verify finds rows that differ
	// between the warehouse and the source; Match closes it.
	Difference Kind = "difference"
	Match      Kind = "match"
	// SlotProblem opens an incident when logical capture's replication
	// slot lags past the threshold, is at risk (wal_status unreserved),
	// lost or missing; a different problem is a new incident. SlotHealthy
	// closes it.
	SlotProblem Kind = "slot"
	SlotHealthy Kind = "slot_ok"
)

// Alert is one message about the pipeline.
type Alert struct {
	Kind Kind
	Run  int64 // the run that raised or resolved it; 0 if none
	// Where says where a Failure happened: its stage, batch, table, row,
	// column and value, as far as the error says.
	Where tote.Where
	Error string
	// Lag and Threshold are how far the warehouse is behind the source, for
	// Stale and Fresh.
	Lag, Threshold time.Duration
	// Rows names the rows quarantined, for Quarantine: table, id, column,
	// value and reason each; for Difference, the differences by table.
	Rows []string
	// Differences is the number of rows that differ, for Difference.
	Differences int
	// Column is the new column, for NewColumn: table.column and its type.
	Column string
	// Slot and Problem name the replication slot and what is wrong with
	// it (lag, unreserved, lost, missing), for SlotProblem and
	// SlotHealthy; Detail says it in words.
	Slot, Problem, Detail string
	Time                  time.Time
	// Environment names the deployment the alert comes from, on AWS (dev,
	// prod: TOTE_ENVIRONMENT), so that environments sharing a mailbox are
	// told apart; "" for none. Run is 0 there: a Lambda stage is not a run.
	Environment string
}

// Subject is a one-line summary of the alert.
func (a Alert) Subject() string {
	s := a.subject()
	if a.Environment != "" {
		s = "tote " + a.Environment + ":" + strings.TrimPrefix(s, "tote:")
	}
	return s
}

func (a Alert) subject() string {
	switch a.Kind {
	case Failure:
		s := fmt.Sprintf("tote: run %d failed", a.Run)
		if a.Where.Stage != "" {
			s += " in " + string(a.Where.Stage)
		}
		if a.Where.Table != "" {
			s += " (" + a.Where.Table + ")"
		}
		return s
	case Recovery:
		return fmt.Sprintf("tote: recovered, run %d succeeded", a.Run)
	case Stale:
		return fmt.Sprintf("tote: the warehouse is %s behind the source (threshold %s)", a.Lag.Round(time.Second), a.Threshold)
	case Fresh:
		return fmt.Sprintf("tote: the warehouse has caught up with the source (%s behind)", a.Lag.Round(time.Second))
	case Difference:
		return fmt.Sprintf("tote: verify found %d rows that differ between the warehouse and the source", a.Differences)
	case Match:
		return "tote: the warehouse matches the source again"
	case NewColumn:
		return fmt.Sprintf("tote: the source has a new column, %s: the raw zone carries it, the star schema does not read it", a.Column)
	case Quarantine:
		if a.Run == 0 {
			return fmt.Sprintf("tote: quarantined %d rows whose values cannot be transformed", len(a.Rows))
		}
		return fmt.Sprintf("tote: run %d quarantined %d rows whose values cannot be transformed", a.Run, len(a.Rows))
	case SlotProblem:
		return fmt.Sprintf("tote: replication slot %s: %s", a.Slot, a.Problem)
	case SlotHealthy:
		return fmt.Sprintf("tote: replication slot %s is healthy again", a.Slot)
	}
	return "tote: " + string(a.Kind)
}

// Text is the alert's full message.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.Subject())
	if a.Run != 0 {
		fmt.Fprintf(&b, "\nrun: %d", a.Run)
	}
	w := a.Where
	for _, f := range []struct{ name, value string }{
		{"stage", string(w.Stage)}, {"batch", w.Batch}, {"table", w.Table}, {"id", idText(w.ID)}, {"column", w.Column},
	} {
		if f.value != "" {
			fmt.Fprintf(&b, "\n%s: %s", f.name, f.value)
		}
	}
	if w.Value != nil {
		fmt.Fprintf(&b, "\nvalue: %q", *w.Value)
	}
	if a.Error != "" {
		fmt.Fprintf(&b, "\nerror: %s", a.Error)
	}
	if a.Detail != "" {
		fmt.Fprintf(&b, "\n%s", a.Detail)
	}
	const shown = 20
	for i, r := range a.Rows {
		if i == shown {
			fmt.Fprintf(&b, "\n... and %d more (tote rejects ls)", len(a.Rows)-shown)
			break
		}
		if a.Kind == Difference {
			fmt.Fprintf(&b, "\n%s", r)
		} else {
			fmt.Fprintf(&b, "\nquarantined: %s", r)
		}
	}
	if a.Kind == Difference {
		b.WriteString("\nsee tote verify; tote verify --repair sends the missing and different rows again")
	} else if len(a.Rows) > 0 {
		b.WriteString("\nthe rest of each batch was loaded; a fixed version of a row resolves its reject")
	}
	fmt.Fprintf(&b, "\ntime: %s", a.Time.UTC().Format(time.RFC3339))
	return b.String()
}

// Notifier delivers an alert somewhere.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// Named is a notifier with the name that logs and metrics give it.
type Named struct {
	Name string
	Notifier
}

// Incidents sends alerts through every notifier, once per incident: a
// failed run opens a failure incident that the next successful run closes
// with a recovery message, and likewise stale data. The notifiers deliver
// each alert at once, each bounded by Timeout: one that fails or stalls is
// logged and counted, and neither stops nor delays the others, nor holds
// up its caller for longer than Timeout.
type Incidents struct {
	Notifiers []Named
	Logger    *slog.Logger
	// Delivered, if set, is called with the outcome of each notifier's
	// attempt to deliver each alert, one call at a time.
	Delivered func(Delivery)
	// Timeout bounds each notifier's delivery of each alert. Default 10s.
	Timeout time.Duration

	mu                        sync.Mutex
	failing, stale, different bool
	slotProblem               string // the open slot incident's problem; empty if none
}

// RunFailed reports a failed run; it alerts only if no failure incident is open.
func (in *Incidents) RunFailed(ctx context.Context, a Alert) error {
	a.Kind = Failure
	if !in.transition(&in.failing, true) {
		return nil
	}
	return in.send(ctx, a)
}

// RunSucceeded reports a successful run; it sends a recovery message if a
// failure incident was open.
func (in *Incidents) RunSucceeded(ctx context.Context, run int64, now time.Time) error {
	if !in.transition(&in.failing, false) {
		return nil
	}
	return in.send(ctx, Alert{Kind: Recovery, Run: run, Time: now})
}

// Lag reports how far the warehouse is behind the source after run; it
// alerts when the lag first exceeds threshold, and again when it is back
// under it.
func (in *Incidents) Lag(ctx context.Context, run int64, lag, threshold time.Duration, now time.Time) error {
	stale := lag > threshold
	if !in.transition(&in.stale, stale) {
		return nil
	}
	k := Fresh
	if stale {
		k = Stale
	}
	return in.send(ctx, Alert{Kind: k, Run: run, Lag: lag, Threshold: threshold, Time: now})
}

// NewColumns reports the source columns beyond the model that run's
// extraction carries for the first time, one alert each.
func (in *Incidents) NewColumns(ctx context.Context, run int64, columns []string, now time.Time) error {
	var errs []error
	for _, c := range columns {
		errs = append(errs, in.send(ctx, Alert{Kind: NewColumn, Run: run, Column: c, Time: now}))
	}
	return errors.Join(errs...)
}

// Quarantined reports the rows run quarantined, in one alert.
func (in *Incidents) Quarantined(ctx context.Context, run int64, rows []string, now time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	return in.send(ctx, Alert{Kind: Quarantine, Run: run, Rows: rows, Time: now})
}

// Verified reports what tote verify found: it alerts when rows first
// differ, and again when they match.
func (in *Incidents) Verified(ctx context.Context, differences int, summary []string, now time.Time) error {
	different := differences > 0
	if !in.transition(&in.different, different) {
		return nil
	}
	if !different {
		return in.send(ctx, Alert{Kind: Match, Time: now})
	}
	return in.send(ctx, Alert{Kind: Difference, Differences: differences, Rows: summary, Time: now})
}

// Slot reports the replication slot's health: problem is empty when it is
// healthy, else what is wrong (lag, unreserved, lost, missing), which
// detail says in words. It alerts when a problem appears or changes, and
// once when the slot is healthy again.
func (in *Incidents) Slot(ctx context.Context, slot, problem, detail string, now time.Time) error {
	in.mu.Lock()
	was := in.slotProblem
	in.slotProblem = problem
	in.mu.Unlock()
	switch {
	case problem == was:
		return nil
	case problem == "":
		return in.send(ctx, Alert{Kind: SlotHealthy, Slot: slot, Problem: was, Detail: detail, Time: now})
	}
	return in.send(ctx, Alert{Kind: SlotProblem, Slot: slot, Problem: problem, Detail: detail, Time: now})
}

// transition sets *state to v and reports whether it changed.
func (in *Incidents) transition(state *bool, v bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if *state == v {
		return false
	}
	*state = v
	return true
}

// Delivery is one notifier's attempt to deliver one alert.
type Delivery struct {
	Notifier string    `json:"notifier"`
	Kind     Kind      `json:"kind"`
	Run      int64     `json:"run,omitempty"`
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"` // empty if delivered
}

// DefaultTimeout bounds a notifier's delivery of an alert, by default.
const DefaultTimeout = 10 * time.Second

func (in *Incidents) send(ctx context.Context, a Alert) error {
	log := in.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	type result struct {
		i   int
		err error
		at  time.Time
	}
	results := make(chan result, len(in.Notifiers))
	for i, n := range in.Notifiers {
		go func() {
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := n.Notify(nctx, a)
			if err != nil && ctx.Err() == nil && errors.Is(nctx.Err(), context.DeadlineExceeded) {
				err = &timeoutError{timeout}
			}
			results <- result{i, err, time.Now().UTC()}
		}()
	}
	// A notifier that ignores its context is not waited for past its
	// bound: it is reported as not answering, and left to finish alone.
	giveUp := time.NewTimer(timeout + time.Second)
	defer giveUp.Stop()
	got := make([]*result, len(in.Notifiers))
	for waiting := len(in.Notifiers); waiting > 0; waiting-- {
		select {
		case r := <-results:
			got[r.i] = &r
		case <-giveUp.C:
			waiting = 0
		}
	}
	var errs []string
	for i, n := range in.Notifiers {
		r := got[i]
		if r == nil {
			r = &result{i, &timeoutError{timeout}, time.Now().UTC()}
		}
		d := Delivery{Notifier: n.Name, Kind: a.Kind, Run: a.Run, At: r.at}
		if r.err != nil {
			d.Error = r.err.Error()
			log.Error("alert not delivered", "notifier", n.Name, "alert", a.Kind, "run", a.Run, "err", r.err)
			errs = append(errs, n.Name+": "+r.err.Error())
		} else {
			log.Info("alert sent", "notifier", n.Name, "alert", a.Kind, "run", a.Run)
		}
		if in.Delivered != nil {
			in.Delivered(d)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// timeoutError is a notifier that did not deliver within the timeout.
type timeoutError struct{ timeout time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer within %s, the alert timeout", e.timeout)
}

func idText(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}
