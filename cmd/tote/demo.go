package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
by month from the warehouse.

The demo writes made-up changes into its source: it refuses a database whose
totesys tables tote seed did not write (real data, perhaps), unless --force.
Without --lake the lake is a temporary directory, removed at the end with the
throwaway server; give --lake to keep it.`, usesSource|usesWarehouse)
	b.createsLake = true
	var (
		lakeURL        string
		scale, changes int
		force          bool
	)
	b.envString(&lakeURL, "lake", "TOTE_LAKE_URL", "", "data lake `URL`, kept after the demo (default: a new temporary directory, removed at the end)")
	b.fs.IntVar(&scale, "scale", 1, "size of the seeded source as a multiple of the real system")
	b.fs.IntVar(&changes, "changes", 200, "live changes to simulate after seeding")
	b.fs.BoolVar(&force, "force", false, "make changes in a source whose totesys tables tote seed did not write")
	if err := b.parse(args, 0, 0); err != nil {
		return err
	}
	defer b.close()
	if err := seed.CheckScale(scale); err != nil {
		return b.usageErr("--scale %d: want a whole number from 1 to %d", scale, seed.MaxScale)
	}
	if changes < 0 {
		return b.usageErr("--changes %d: want 0 or more", changes)
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
	if err := demoSource(ctx, w, b, pool, scale, changes, force); err != nil {
		return err
	}
	keep := lakeURL != ""
	if !keep {
		dir, err := os.MkdirTemp("", "tote-demo-lake-")
		if err != nil {
			return err
		}
		b.closers = append(b.closers, func() { _ = os.RemoveAll(dir) })
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
	if keep {
		fmt.Fprintf(w, "inspect the lake with: %s lake ls --lake %s\n", invokedAs(), lk.URL())
	} else {
		fmt.Fprintf(w, "the lake %s is removed now; give --lake file://DIR to keep one, then: %s lake ls --lake file://DIR\n",
			lk.URL(), invokedAs())
	}
	return ctx.Err()
}

// invokedAs is the command as the user typed it, for hints: bin/tote
// when run from the source tree (make demo runs ./bin/tote), else tote.
func invokedAs() string {
	if arg0 := os.Args[0]; filepath.Base(arg0) == "tote" && !filepath.IsAbs(arg0) && strings.Contains(arg0, "/") {
		return strings.TrimPrefix(arg0, "./")
	}
	return "tote"
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

// demoSource seeds the source unless it holds totesys already (then only
// if tote seeded it, or force), simulates changes and prints the row counts.
func demoSource(ctx context.Context, w io.Writer, b *base, pool *pgxpool.Pool, scale, changes int, force bool) error {
	existing, err := totesys.Existing(ctx, pool)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		seeded, err := seed.Seeded(ctx, pool)
		if err != nil {
			return err
		}
		if !seeded && !force {
			return fmt.Errorf("demo: source %s holds totesys tables that tote seed did not write (real data?), and the demo "+
				"would write made-up changes into them: give the demo an empty database, or none (a throwaway server), or --force",
				postgres.Redact(b.sourceURL))
		}
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
		fmt.Fprintf(w, "simulating %s\n", human.Count(changes, "live change"))
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
	fmt.Fprintf(w, "after %s more, an incremental pass:\n", human.Count(changes/2, "live change"))
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", m.Month, m.Currency, human.Int(m.Orders), human.Int(m.Units), human.Decimal(m.Value))
	}
	return tw.Flush()
}
