package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
	whouse "github.com/terrifictotes/tote/warehouse"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "demo", "", `Shows the pipeline end to end on a small source. Without --source it starts a
throwaway PostgreSQL server (removed at exit) and seeds a totesys database in
it; with --source it seeds that database, or uses the totesys tables already
there. Then it simulates some live changes, runs the pipeline (extract,
transform, load) into the warehouse (a database on the throwaway server, or
--warehouse), makes more changes, runs an incremental pass, and prints sales
by month from the warehouse.`)
	var (
		source, warehouse, lakeURL string
		scale                      int
		changes                    int
		logs                       logConfig
	)
	f.sourceFlag(&source)
	f.warehouseFlag(&warehouse)
	f.envString(&lakeURL, "lake", "TOTE_LAKE_URL", "", "data lake `URL` (default: a new temporary directory, kept after the demo)")
	f.fs.IntVar(&scale, "scale", 1, "size of the seeded source as a multiple of the real system")
	f.fs.IntVar(&changes, "changes", 200, "live changes to simulate after seeding")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	if err := seed.CheckScale(scale); err != nil {
		return err
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}

	if source == "" {
		fmt.Fprintln(e.stdout, "no --source given: starting a throwaway PostgreSQL server")
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if source, err = createDatabase(ctx, cluster.URL(), "totesys"); err != nil {
			return err
		}
		if warehouse == "" {
			if warehouse, err = createDatabase(ctx, cluster.URL(), "warehouse"); err != nil {
				return err
			}
		}
	}
	pool, err := postgres.Open(ctx, "source", source)
	if err != nil {
		return err
	}
	defer pool.Close()

	existing, err := totesys.Existing(ctx, pool)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		fmt.Fprintf(e.stdout, "source %s already holds totesys: using it as it is\n", postgres.Redact(source))
	} else {
		fmt.Fprintf(e.stdout, "seeding %s at scale %d\n", postgres.Redact(source), scale)
		res, err := seed.Generate(ctx, pool, seed.Options{Scale: scale, Seed: 1, Logger: log})
		if err != nil {
			return err
		}
		printSeed(e.stdout, res)
	}
	if changes > 0 {
		fmt.Fprintf(e.stdout, "simulating %d live changes\n", changes)
		stats, err := simulate.Run(ctx, pool, simulate.Options{Rate: 1000, Events: changes, Seed: uint64(time.Now().UnixNano()), Logger: log})
		if err != nil {
			return err
		}
		printSimulate(e.stdout, stats)
	}
	counts, err := rowCounts(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "source row counts now:")
	for _, c := range counts {
		fmt.Fprintf(e.stdout, "  %-15s %12s\n", c.Table, humanInt(c.Rows))
	}

	if lakeURL == "" {
		dir, err := os.MkdirTemp("", "tote-demo-lake-")
		if err != nil {
			return err
		}
		lakeURL = "file://" + dir
	}
	lk, err := lake.Open(ctx, lakeURL, lake.Options{Logger: log})
	if err != nil {
		return err
	}
	defer lk.Close()
	if warehouse == "" {
		fmt.Fprintf(e.stdout, "no --warehouse given: extracting into %s only\n", lk.URL())
		res, err := extract.Run(ctx, pool, lk, extract.Options{Logger: log})
		if err != nil {
			return err
		}
		printExtract(e.stdout, res)
		return ctx.Err()
	}
	wh, err := postgres.Open(ctx, "warehouse", warehouse)
	if err != nil {
		return err
	}
	defer wh.Close()
	parts := pipeline.Parts{Source: pool, Warehouse: wh, Lake: lk}

	fmt.Fprintf(e.stdout, "running the pipeline: lake %s, warehouse %s\n", lk.URL(), postgres.Redact(warehouse))
	res, err := pipeline.Run(ctx, parts, pipeline.Options{Logger: log})
	printRun(e.stdout, res, err)
	if err != nil {
		return err
	}
	if changes > 0 {
		if _, err := simulate.Run(ctx, pool, simulate.Options{Rate: 1000, Events: changes / 2, Seed: 7, Logger: log}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "after %d more live changes, an incremental pass:\n", changes/2)
		res, err = pipeline.Run(ctx, parts, pipeline.Options{Logger: log})
		printRun(e.stdout, res, err)
		if err != nil {
			return err
		}
	}
	sales, err := whouse.SalesByMonth(ctx, wh, 3)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "sales in the warehouse, latest three months:")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  month\tcurrency\torders\tunits\tvalue\t")
	for _, m := range sales {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", m.Month, m.Currency, humanInt(m.Orders), humanInt(m.Units), m.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "inspect the lake with: tote lake ls --lake %s\n", lk.URL())
	return ctx.Err()
}

// createDatabase creates a database on the server at adminURL and returns its URL.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", postgres.Explain("demo", adminURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// rowCounts counts the rows of every totesys table.
func rowCounts(ctx context.Context, pool *pgxpool.Pool) ([]seed.TableCount, error) {
	var out []seed.TableCount
	for _, name := range totesys.TableNames() {
		var n int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", name, err)
		}
		out = append(out, seed.TableCount{Table: name, Rows: n})
	}
	return out, nil
}
