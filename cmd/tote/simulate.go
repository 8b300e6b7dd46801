package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/simulate"
)

func runSimulate(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "simulate", "", `Behaves like the live business against a seeded source: new orders with their
transactions and payments, payments flipped to paid, order edits, and now and
then a department renamed, a counterparty moved, a design or currency added;
with --deletions, a share of the changes are deletions (a payment, or a sales
order with its transaction and payment). Every change is stamped with now(),
as the real application does. Stops cleanly on Ctrl-C, after --duration, or
after --events changes.`, usesSource)
	var (
		rate     float64
		duration time.Duration
		events   int
		seedVal  uint64
		dels     float64
		asJSON   bool
	)
	b.fs.Float64Var(&rate, "rate", 10, "changes per second")
	b.fs.DurationVar(&duration, "duration", 0, "stop after this long (0: run until interrupted)")
	b.fs.IntVar(&events, "events", 0, "stop after this many changes (0: no limit)")
	b.fs.Uint64Var(&seedVal, "seed", 0, "random seed (0: a new one each run)")
	b.fs.Float64Var(&dels, "deletions", 0, "the `share` of changes that are deletions, from 0 to 1 (0: none, as the real application)")
	b.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := b.parse(args, 0, usesSource); err != nil {
		return err
	}
	defer b.close()
	if rate <= 0 {
		return b.usageErr("--rate %v: must be positive", rate)
	}
	if duration < 0 || events < 0 {
		return b.usageErr("--duration and --events must not be negative")
	}
	if !(dels >= 0 && dels <= 1) {
		return b.usageErr("--deletions %v: want a share from 0 to 1", dels)
	}
	if seedVal == 0 {
		seedVal = uint64(time.Now().UnixNano())
	}
	pool, err := b.openSource(ctx)
	if err != nil {
		return err
	}
	b.log.Info("simulating", "source", postgres.Redact(b.sourceURL), "rate", rate, "duration", duration, "seed", seedVal)
	stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: rate, Duration: duration, Events: events, Seed: seedVal,
		Deletions: dels, Logger: b.log})
	if asJSON {
		if jerr := json.NewEncoder(e.stdout).Encode(stats); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printSimulate(e.stdout, stats)
	}
	return err
}

func printSimulate(w io.Writer, s simulate.Stats) {
	kinds := make([]simulate.Event, 0, len(s.Events))
	for k := range s.Events {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-20s %8s\n", k, human.Int(int64(s.Events[k])))
	}
	fmt.Fprintf(w, "simulated %s in %s", human.Count(s.Total(), "change"), human.Duration(s.Elapsed))
	if s.Skipped > 0 {
		fmt.Fprintf(w, " (%s skipped: nothing to act on)", human.Int(s.Skipped))
	}
	fmt.Fprintln(w)
}
