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
	Stale    Kind = "stale"    // the warehouse is older than the threshold
	Fresh    Kind = "fresh"    // the warehouse is fresh again
)

// Alert is one message about the pipeline.
type Alert struct {
	Kind Kind
	Run  int64 // the run that raised or resolved it; 0 if none
	// Where says where a Failure happened: its stage, batch, table, row,
	// column and value, as far as the error says.
	Where tote.Where
	Error string
	// Age and Threshold are the warehouse's freshness, for Stale and Fresh.
	Age, Threshold time.Duration
	Time           time.Time
}

// Subject is a one-line summary of the alert.
func (a Alert) Subject() string {
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
		return fmt.Sprintf("tote: warehouse data is %s old (threshold %s)", a.Age.Round(time.Second), a.Threshold)
	case Fresh:
		return fmt.Sprintf("tote: warehouse data is fresh again (%s old)", a.Age.Round(time.Second))
	}
	return "tote: " + string(a.Kind)
}

// Text is the alert's full message.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.Subject())
	fmt.Fprintf(&b, "\nrun: %d", a.Run)
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
// with a recovery message, and likewise stale data. A notifier that fails
// is logged and counted, and does not stop the others.
type Incidents struct {
	Notifiers []Named
	Logger    *slog.Logger
	// Failed, if set, is called with a notifier's name each time it fails.
	Failed func(notifier string)

	mu             sync.Mutex
	failing, stale bool
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

// Freshness reports the warehouse's age after run; it alerts when the age
// first exceeds threshold, and again when it is back under it.
func (in *Incidents) Freshness(ctx context.Context, run int64, age, threshold time.Duration, now time.Time) error {
	stale := age > threshold
	if !in.transition(&in.stale, stale) {
		return nil
	}
	k := Fresh
	if stale {
		k = Stale
	}
	return in.send(ctx, Alert{Kind: k, Run: run, Age: age, Threshold: threshold, Time: now})
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

func (in *Incidents) send(ctx context.Context, a Alert) error {
	log := in.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, n := range in.Notifiers {
		if err := n.Notify(ctx, a); err != nil {
			log.Error("alert not delivered", "notifier", n.Name, "alert", a.Kind, "run", a.Run, "err", err)
			if in.Failed != nil {
				in.Failed(n.Name)
			}
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		log.Info("alert sent", "notifier", n.Name, "alert", a.Kind, "run", a.Run)
	}
	return errors.Join(errs...)
}

func idText(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}
