package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/pipeline"
)

func runIceberg(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, `Usage: tote iceberg tables|publish|maintain [flags]

  tables     list the star's Iceberg tables, their snapshots and the batches they hold
  publish    bring the Iceberg tables up to the loaded batches (run, serve and load do it after each load)
  maintain   compact the tables' small files and expire the snapshots older than --retain

Run 'tote iceberg SUBCOMMAND --help' for flags.
`)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "tables":
		return runIcebergTables(ctx, e, args[1:])
	case "publish":
		return runIcebergPublish(ctx, e, args[1:])
	case "maintain":
		return runIcebergMaintain(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "tote iceberg: unknown subcommand %q (want tables, publish or maintain)\n", args[0])
	return errUsage
}

// openIceberg parses an iceberg subcommand's command line and opens the
// warehouse, the lake and the publisher; publishing turned off is a
// mistake on the command line here.
func openIceberg(ctx context.Context, b *base, args []string) (pipeline.Parts, error) {
	p, err := b.start(ctx, args, 0, usesWarehouse)
	if err != nil {
		return p, err
	}
	if p.Iceberg == nil {
		return p, b.usageErr("the Iceberg tables are off (--iceberg-catalog off, or a mem:// lake)")
	}
	return p, nil
}

func runIcebergTables(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "iceberg tables", "", `Lists the star's Iceberg tables: where each is, and its snapshots (those
expiry kept), oldest first, each with the newest batch it holds (tote.batch
in its summary), its operation and rows. A snapshot made by maintenance
names it instead of a batch. To read a table as of batch B, read the newest
snapshot whose batch is B or earlier.`, usesWarehouse|usesLake)
	defer b.close()
	asJSON := b.jsonFlag("the tables")
	b.icebergFlags()
	p, err := openIceberg(ctx, b, args)
	if err != nil {
		return err
	}
	tables, err := p.Iceberg.Tables(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(tables)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, t := range tables {
		if t.Location == "" {
			fmt.Fprintf(w, "%s\t(not created yet)\n", t.Identifier)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\n", t.Identifier, t.Location)
		fmt.Fprintf(w, "  snapshot\ttime\toperation\tbatch\trows\tadded\t\n")
		for _, s := range t.Snapshots {
			batch := s.Batch
			if batch == "" {
				batch = "(" + s.Maintenance + ")"
			}
			current := ""
			if s.Current {
				current = "current"
			}
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%d\t%d\t%s\n", s.ID, s.Time.Format(time.RFC3339), s.Operation, batch, s.Rows, s.Added, current)
		}
	}
	return w.Flush()
}

func runIcebergPublish(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "iceberg publish", "", `Publishes every loaded batch not yet published to the star's Iceberg tables,
in order, exactly once (tote run, serve and load do this after each load).`, usesWarehouse|usesLake)
	defer b.close()
	asJSON := b.jsonFlag("the result")
	b.icebergFlags()
	p, err := openIceberg(ctx, b, args)
	if err != nil {
		return err
	}
	res, err := p.Iceberg.Publish(ctx)
	if err != nil {
		return tote.At(err, tote.Where{Stage: tote.Publish})
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "publish: %s to the Iceberg tables, %s in %s\n", human.Count(len(res.Batches), "batch"), human.Count(res.Rows(), "row"), human.Duration(res.Elapsed))
	return nil
}

func runIcebergMaintain(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "iceberg maintain", "", `Compacts each Iceberg table's small data files into fewer (a replace
snapshot), then expires the snapshots older than --retain and deletes the
files only they used. Time travel reaches back as far as --retain.`, usesWarehouse|usesLake)
	defer b.close()
	asJSON := b.jsonFlag("the result")
	b.icebergFlags()
	retain := retainFlag(b)
	minFiles := b.fs.Uint("min-files", 5, "rewrite a partition's small files only if it has at least this many")
	p, err := openIceberg(ctx, b, args)
	if err != nil {
		return err
	}
	res, err := p.Iceberg.Maintain(ctx, iceberg.MaintainOptions{Retain: *retain, MinInputFiles: *minFiles})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	for _, t := range res.Tables {
		fmt.Fprintf(e.stdout, "  %-20s %d files rewritten into %d, %d snapshots expired\n", t.Table, t.FilesRewritten, t.FilesWritten, t.SnapshotsExpired)
	}
	return nil
}

// retainFlag registers --iceberg-retain.
func retainFlag(b *base) *time.Duration {
	var d time.Duration
	b.envDuration(&d, "iceberg-retain", "TOTE_ICEBERG_RETAIN", iceberg.DefaultRetain,
		"keep Iceberg snapshots this long after a newer one replaces them: time travel reaches this far back (negative: keep all)")
	return &d
}
