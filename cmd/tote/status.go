package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/replication"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "status", "", `Prints the recent runs from the warehouse's history (attempts, the source rows
deleted that they carried, where a run failed, the alerts sent; runs in a row
that found nothing new share one line, which counts them), the batches
loaded, how far the warehouse is behind the source (lag: the time since the
source was last read in a state the warehouse holds whole), the age of the
newest source change loaded (by its last_updated stamp), and the lake's size.
It reads the warehouse alone when no lake is given and ./data/lake does not
exist; the lag and the lake's size then need --lake. With --capture logical,
also the replication slot's health, read from the source: wal_status,
safe_wal_size, the WAL unconfirmed (lag, in bytes and in time) and the WAL it
holds.`, usesSource|usesWarehouse|usesLake)
	defer b.close()
	limit := b.fs.Int("limit", 10, "number of runs to show (a line of runs that found nothing new counts as one)")
	asJSON := b.jsonFlag("the status")
	capture := captureModeFlags(b)
	if err := b.parse(args, 0, usesWarehouse); err != nil {
		return err
	}
	slot, err := capture.slot(b)
	if err != nil {
		return err
	}
	wh, err := b.openWarehouse(ctx)
	if err != nil {
		return err
	}
	lk, err := b.openLake(ctx)
	if err != nil && !b.lakeGiven() {
		lk, err = nil, nil // the default lake is not here: the warehouse alone
	}
	if err != nil {
		return err
	}
	runs, err := pipeline.Runs(ctx, wh, *limit)
	if err != nil {
		return err
	}
	ledger, err := wh.Loaded(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	fresh, err := pipeline.ReadFreshness(ctx, lk, wh, now)
	if err != nil {
		return err
	}
	var size *lakeSize
	if lk != nil {
		objects, bytes, err := lk.Size(ctx)
		if err != nil {
			return err
		}
		size = &lakeSize{lk.Name(), objects, bytes}
	}
	var health *replication.SlotHealth
	if slot != nil {
		var st extract.Status // when the lake's last extraction read the source
		if lk != nil {
			if _, err := lk.Status(ctx, extract.StatusName, &st); err != nil {
				return err
			}
		}
		source, err := b.openSource(ctx)
		if err != nil {
			return err
		}
		h, err := replication.Health(ctx, source, *slot, st.ReadAt, 0)
		if err != nil {
			return err
		}
		health = &h
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			Runs      []pipeline.Record       `json:"runs"`
			Loaded    int                     `json:"batches_loaded"`
			Freshness pipeline.Freshness      `json:"freshness"`
			Lake      *lakeSize               `json:"lake,omitempty"`
			Slot      *replication.SlotHealth `json:"slot,omitempty"`
		}{runs, len(ledger), fresh, size, health})
	}
	w := e.stdout
	printRuns(w, runs, now)
	if n := len(ledger); n > 0 {
		last := ledger[n-1]
		fmt.Fprintf(w, "loaded: %s, the newest %s at %s, %s\n", human.Count(n, "processed batch"), last.Batch,
			last.LoadedAt.UTC().Format(time.RFC3339), human.Ago(last.LoadedAt, now))
	} else {
		fmt.Fprintln(w, "loaded: nothing yet")
	}
	switch {
	case lk == nil:
		fmt.Fprintln(w, "lag: unknown without the lake (give --lake or TOTE_LAKE_URL)")
	case fresh.Loaded():
		fmt.Fprintf(w, "lag: %s (the warehouse holds the source as of %s", human.Duration(fresh.Lag), fresh.AsOf.UTC().Format(time.RFC3339))
		if fresh.PendingRaw > 0 {
			fmt.Fprintf(w, "; %s not yet loaded", human.Count(fresh.PendingRaw, "raw batch"))
		}
		fmt.Fprintln(w, ")")
	default:
		fmt.Fprintln(w, "lag: nothing loaded yet")
	}
	if !fresh.NewestChange.IsZero() {
		fmt.Fprintf(w, "freshness: newest source change loaded %s, %s (by its last_updated stamp)\n",
			fresh.NewestChange.UTC().Format(time.RFC3339), human.Ago(fresh.NewestChange, now))
	}
	if size != nil {
		fmt.Fprintf(w, "lake: %s, %s bytes (%s)\n", human.Count(size.Objects, "object"), human.Int(size.Bytes), size.URL)
	}
	if health != nil {
		printSlot(w, *health)
	}
	return nil
}

// lakeSize is how much the lake holds, as status reports it.
type lakeSize struct {
	URL     string `json:"url"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
}

func printRuns(w io.Writer, runs []pipeline.Record, now time.Time) {
	fmt.Fprintf(w, "recent runs:\n")
	if len(runs) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, r := range runs {
		dur, outcome := "", r.Outcome
		if r.FinishedAt != nil {
			dur = human.Duration(r.FinishedAt.Sub(r.StartedAt))
		}
		if outcome == "" {
			outcome = "running"
		}
		fmt.Fprintf(w, "  %6d  %s  %-9s %-9s %8s  %s", r.ID, r.StartedAt.UTC().Format(time.RFC3339), r.Trigger, outcome, dur, human.Count(len(r.Batches), "batch"))
		for _, s := range r.Stages {
			if n := s.DeletedRows(); s.Stage == string(tote.Load) && n > 0 {
				fmt.Fprintf(w, ", %s", human.Count(n, "deletion"))
			}
		}
		if r.Attempts > 1 {
			fmt.Fprintf(w, ", %s", human.Count(r.Attempts, "attempt"))
		}
		switch { // quiet runs in a row share one line (pipeline.QuietSpan)
		case r.Quiet && r.Coalesced > 1 && r.FirstStartedAt != nil:
			fmt.Fprintf(w, ", nothing new in %s since %s (from run %d)", human.Count(r.Coalesced, "run"),
				r.FirstStartedAt.UTC().Format(time.RFC3339), r.FirstID)
		case r.Quiet:
			fmt.Fprintf(w, ", nothing new")
		}
		if r.Error != "" {
			fmt.Fprintf(w, "\n          failed: %s", r.Error)
		}
		var alerts []string
		for _, n := range r.Notifications {
			a := n.Kind + " by " + n.Notifier
			if n.Error != "" {
				a += " FAILED (" + n.Error + ")"
			}
			alerts = append(alerts, a)
		}
		if len(alerts) > 0 {
			fmt.Fprintf(w, "\n          alerts: %s", strings.Join(alerts, "; "))
		}
		fmt.Fprintln(w)
	}
}
