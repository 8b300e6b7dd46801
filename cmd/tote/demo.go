package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/warehouse"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "demo", "", `Shows the pipeline end to end on a small source. Without --source it starts a
throwaway PostgreSQL server (removed at exit) and seeds a totesys database in
it; with --source it seeds that database, or uses the totesys tables already
there. Then it simulates some live changes, runs the pipeline (extract,
transform, load) into the warehouse (a database on the throwaway server, or
--warehouse), makes more changes, runs an incremental pass, and prints sales
by month from the warehouse.`, usesSource|usesWarehouse)
	var (
		lakeURL        string
		scale, changes int
	)
	b.envString(&lakeURL, "lake", "TOTE_LAKE_URL", "", "data lake `URL` (default: a new temporary directory, kept after the demo)")
	b.fs.IntVar(&scale, "scale", 1, "size of the seeded source as a multiple of the real system")
	b.fs.IntVar(&changes, "changes", 200, "live changes to simulate after seeding")
	if err := b.parse(args, 0, 0); err != nil {
		return err
	}
	defer b.close()
	if err := seed.CheckScale(scale); err != nil {
		return err
	}
	w := e.stdout
	if b.sourceURL == "" {
		if err := b.throwawayServer(ctx, w); err != nil {
			return err
		}
	}
	pool, err := b.openSource(ctx)
	if err != nil {
		return err
	}
	if err := demoSource(ctx, w, b, pool, scale, changes); err != nil {
		return err
	}
	if lakeURL == "" {
		dir, err := os.MkdirTemp("", "tote-demo-lake-")
		if err != nil {
			return err
		}
		lakeURL = "file://" + dir
	}
	lk, err := b.openLakeAt(ctx, lakeURL)
	if err != nil {
		return err
	}
	if b.warehouseURL == "" {
		fmt.Fprintf(w, "no --warehouse given: extracting into %s only\n", lk.URL())
		res, err := extract.Run(ctx, pool, lk, extract.Options{Logger: b.log})
		if err != nil {
			return err
		}
		printExtract(w, res)
		return ctx.Err()
	}
	wh, err := b.openWarehouse(ctx)
	if err != nil {
		return err
	}
	parts := pipeline.Parts{Source: pool, Warehouse: wh, Lake: lk}
	fmt.Fprintf(w, "running the pipeline: lake %s, warehouse %s\n", lk.URL(), postgres.Redact(b.warehouseURL))
	if err := demoPasses(ctx, w, b, parts, changes); err != nil {
		return err
	}
	if err := printSales(ctx, w, wh); err != nil {
		return err
	}
	fmt.Fprintf(w, "inspect the lake with: tote lake ls --lake %s\n", lk.URL())
	return ctx.Err()
}

// throwawayServer starts a private PostgreSQL server, stopped when the
// demo ends, with a totesys database and, unless one is given, a
// warehouse database.
func (b *base) throwawayServer(ctx context.Context, w io.Writer) error {
	fmt.Fprintln(w, "no --source given: starting a throwaway PostgreSQL server")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: b.log})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { _ = cluster.Stop() })
	if b.sourceURL, err = postgres.CreateDatabase(ctx, cluster.URL(), "totesys"); err != nil {
		return err
	}
	if b.warehouseURL == "" {
		b.warehouseURL, err = postgres.CreateDatabase(ctx, cluster.URL(), "warehouse")
	}
	return err
}

// demoSource seeds the source unless it holds totesys already, simulates
// changes and prints the row counts.
func demoSource(ctx context.Context, w io.Writer, b *base, pool *pgxpool.Pool, scale, changes int) error {
	existing, err := totesys.Existing(ctx, pool)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		fmt.Fprintf(w, "source %s already holds totesys: using it as it is\n", postgres.Redact(b.sourceURL))
	} else {
		fmt.Fprintf(w, "seeding %s at scale %d\n", postgres.Redact(b.sourceURL), scale)
		res, err := seed.Generate(ctx, pool, seed.Options{Scale: scale, Seed: 1, Logger: b.log})
		if err != nil {
			return err
		}
		printSeed(w, res)
	}
	if changes > 0 {
		fmt.Fprintf(w, "simulating %d live changes\n", changes)
		stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: 1000, Events: changes, Seed: uint64(time.Now().UnixNano()), Logger: b.log})
		if err != nil {
			return err
		}
		printSimulate(w, stats)
	}
	counts, err := seed.Count(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "source row counts now:")
	for _, c := range counts {
		fmt.Fprintf(w, "  %-15s %12s\n", c.Table, human.Int(c.Rows))
	}
	return nil
}

// demoPasses runs a first pass, then simulates more changes and runs an
// incremental one.
func demoPasses(ctx context.Context, w io.Writer, b *base, parts pipeline.Parts, changes int) error {
	res, err := pipeline.Run(ctx, parts, pipeline.Options{Logger: b.log})
	printRun(w, res, err)
	if err != nil || changes == 0 {
		return err
	}
	if _, err := simulate.Run(ctx, parts.Source, simulate.Options{Rate: 1000, Events: changes / 2, Seed: 7, Logger: b.log}); err != nil {
		return err
	}
	fmt.Fprintf(w, "after %d more live changes, an incremental pass:\n", changes/2)
	res, err = pipeline.Run(ctx, parts, pipeline.Options{Logger: b.log})
	printRun(w, res, err)
	return err
}

// printSales prints the latest three months of sales from the warehouse.
func printSales(ctx context.Context, w io.Writer, wh *warehouse.Warehouse) error {
	sales, err := wh.SalesByMonth(ctx, 3)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "sales in the warehouse, latest three months:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  month\tcurrency\torders\tunits\tvalue\t")
	for _, m := range sales {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", m.Month, m.Currency, human.Int(m.Orders), human.Int(m.Units), m.Value)
	}
	return tw.Flush()
}
