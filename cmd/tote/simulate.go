package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/simulate"
)

func runSimulate(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "simulate", "", `Behaves like the live business against a seeded source: new orders with their
transactions and payments, payments flipped to paid, order edits, and now and
then a department renamed, a counterparty moved, a design or currency added.
Every change is stamped with now(), as the real application does. Stops
cleanly on Ctrl-C, after --duration, or after --events changes.`)
	var (
		source   string
		rate     float64
		duration time.Duration
		events   int
		seedVal  uint64
		asJSON   bool
		logs     logConfig
	)
	f.sourceFlag(&source)
	f.fs.Float64Var(&rate, "rate", 10, "changes per second")
	f.fs.DurationVar(&duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.fs.IntVar(&events, "events", 0, "stop after this many changes (0: no limit)")
	f.fs.Uint64Var(&seedVal, "seed", 0, "random seed (0: a new one each run)")
	f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	if source == "" {
		return f.usageErr("no source database: give --source URL or set TOTE_SOURCE_URL")
	}
	if rate <= 0 {
		return f.usageErr("--rate %v: must be positive", rate)
	}
	if duration < 0 || events < 0 {
		return f.usageErr("--duration and --events must not be negative")
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}
	if seedVal == 0 {
		seedVal = uint64(time.Now().UnixNano())
	}
	pool, err := postgres.Open(ctx, "source", source)
	if err != nil {
		return err
	}
	defer pool.Close()
	log.Info("simulating", "source", postgres.Redact(source), "rate", rate, "duration", duration, "seed", seedVal)
	stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: rate, Duration: duration, Events: events, Seed: seedVal, Logger: log})
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
		fmt.Fprintf(w, "  %-20s %8s\n", k, humanInt(int64(s.Events[k])))
	}
	fmt.Fprintf(w, "simulated %s changes in %.1fs (%d skipped: nothing to act on)\n",
		humanInt(int64(s.Total())), s.Elapsed.Seconds(), s.Skipped)
}
