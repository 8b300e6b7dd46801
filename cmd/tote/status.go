package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/terrifictotes/tote/warehouse"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "status", "", `Prints the recent runs from the warehouse's history, the data's freshness
(the age of the newest source change loaded) and the lake's size.`, usesWarehouse|usesLake)
	defer b.close()
	limit := b.fs.Int("limit", 10, "number of runs to show")
	asJSON := b.jsonFlag("the status")
	p, err := b.start(ctx, args, 0, usesWarehouse)
	if err != nil {
		return err
	}
	wh, lk := p.Warehouse, p.Lake
	runs, err := wh.Runs(ctx, *limit)
	if err != nil {
		return err
	}
	newest, loaded, err := wh.NewestChange(ctx)
	if err != nil {
		return err
	}
	objects, bytes, err := lk.Size(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		st := struct {
			Runs         []warehouse.Run `json:"runs"`
			NewestChange *time.Time      `json:"newest_change,omitempty"`
			LakeObjects  int             `json:"lake_objects"`
			LakeBytes    int64           `json:"lake_bytes"`
		}{Runs: runs, LakeObjects: objects, LakeBytes: bytes}
		if loaded {
			st.NewestChange = &newest
		}
		return json.NewEncoder(e.stdout).Encode(st)
	}
	w := e.stdout
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
		if r.Error != "" {
			fmt.Fprintf(w, "  %s", r.Error)
		}
		fmt.Fprintln(w)
	}
	if loaded {
		fmt.Fprintf(w, "freshness: newest source change loaded %s, %s ago\n",
			newest.UTC().Format(time.RFC3339), time.Since(newest).Round(time.Second))
	} else {
		fmt.Fprintf(w, "freshness: nothing loaded yet\n")
	}
	fmt.Fprintf(w, "lake: %s objects, %s bytes\n", humanInt(int64(objects)), humanInt(bytes))
	return nil
}
