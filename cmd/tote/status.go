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
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/replication"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "status", "", `Prints the recent runs from the warehouse's history (attempts, the source rows
deleted that they carried, where a run failed, the alerts sent), how far the warehouse is behind the source (lag: the
time since the source was last read in a state the warehouse holds whole), the
age of the newest source change loaded (by its last_updated stamp), and the
lake's size. With --capture logical, also the replication slot's health, read
from the source: wal_status, safe_wal_size, the WAL unconfirmed (lag, in
bytes and in time) and the WAL it holds.`, usesSource|usesWarehouse|usesLake)
	defer b.close()
	limit := b.fs.Int("limit", 10, "number of runs to show")
	asJSON := b.jsonFlag("the status")
	capture := captureModeFlags(b)
	if err := b.parse(args, 0, usesWarehouse); err != nil {
		return err
	}
	slot, err := capture.slot(b)
	if err != nil {
		return err
	}
	if slot == nil {
		b.uses &^= usesSource // the source is read only for the slot
	}
	p, err := b.open(ctx)
	if err != nil {
		return err
	}
	runs, err := pipeline.Runs(ctx, p.Warehouse, *limit)
	if err != nil {
		return err
	}
	now := time.Now()
	fresh, err := pipeline.ReadFreshness(ctx, p.Lake, p.Warehouse, now)
	if err != nil {
		return err
	}
	objects, bytes, err := p.Lake.Size(ctx)
	if err != nil {
		return err
	}
	var health *replication.SlotHealth
	if slot != nil {
		var st extract.Status // when the lake's last extraction read the source
		if _, err := p.Lake.Status(ctx, extract.StatusName, &st); err != nil {
			return err
		}
		h, err := replication.Health(ctx, p.Source, *slot, st.ReadAt, 0)
		if err != nil {
			return err
		}
		health = &h
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			Runs        []pipeline.Record       `json:"runs"`
			Freshness   pipeline.Freshness      `json:"freshness"`
			LakeObjects int                     `json:"lake_objects"`
			LakeBytes   int64                   `json:"lake_bytes"`
			Slot        *replication.SlotHealth `json:"slot,omitempty"`
		}{runs, fresh, objects, bytes, health})
	}
	w := e.stdout
	printRuns(w, runs)
	if fresh.Loaded() {
		fmt.Fprintf(w, "lag: %s (the warehouse holds the source as of %s", fresh.Lag.Round(time.Second), fresh.AsOf.UTC().Format(time.RFC3339))
		if fresh.PendingRaw > 0 {
			fmt.Fprintf(w, "; %d raw batches not yet loaded", fresh.PendingRaw)
		}
		fmt.Fprintln(w, ")")
	} else {
		fmt.Fprintln(w, "lag: nothing loaded yet")
	}
	if !fresh.NewestChange.IsZero() {
		fmt.Fprintf(w, "freshness: newest source change loaded %s, %s ago (by its last_updated stamp)\n",
			fresh.NewestChange.UTC().Format(time.RFC3339), now.Sub(fresh.NewestChange).Round(time.Second))
	}
	fmt.Fprintf(w, "lake: %s objects, %s bytes\n", humanInt(int64(objects)), humanInt(bytes))
	if health != nil {
		printSlot(w, *health)
	}
	return nil
}

func printRuns(w io.Writer, runs []pipeline.Record) {
	fmt.Fprintf(w, "recent runs:\n")
	if len(runs) == 0 {
		fmt.Fprintf(w, "  none\n")
	}
	for _, r := range runs {
		dur, outcome := "", r.Outcome
		if r.FinishedAt != nil {
			dur = fmt.Sprintf("%.2fs", r.FinishedAt.Sub(r.StartedAt).Seconds())
		}
		if outcome == "" {
			outcome = "running"
		}
		fmt.Fprintf(w, "  %6d  %s  %-9s %-9s %8s  %d batches", r.ID, r.StartedAt.UTC().Format(time.RFC3339), r.Trigger, outcome, dur, len(r.Batches))
		for _, s := range r.Stages {
			if n := s.DeletedRows(); s.Stage == string(tote.Load) && n > 0 {
				fmt.Fprintf(w, ", %s deletions", humanInt(n))
			}
		}
		if r.Attempts > 1 {
			fmt.Fprintf(w, ", %d attempts", r.Attempts)
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
