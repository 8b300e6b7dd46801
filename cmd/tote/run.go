package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

func runRun(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "run", "", `Makes one pass of the pipeline: extract what is new in the source into the
lake, transform every new raw batch into the star schema, and load every new
processed batch into the warehouse. Each stage carries on from what earlier
passes committed; the exit status says whether the pass succeeded.`)
	var (
		source, wh, lakeURL string
		asJSON              bool
		logs                logConfig
	)
	f.sourceFlag(&source)
	f.warehouseFlag(&wh)
	f.lakeFlag(&lakeURL)
	f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	if source == "" || wh == "" {
		return f.usageErr("give --source and --warehouse URLs (or TOTE_SOURCE_URL and TOTE_WAREHOUSE_URL)")
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}
	parts, closeParts, err := openParts(ctx, source, wh, lakeURL, log)
	if err != nil {
		return err
	}
	defer closeParts()
	whPool := parts.Warehouse

	// Never alongside a daemon's run (or another tote run) on this warehouse.
	release, err := warehouse.LockRun(ctx, whPool)
	if err != nil {
		return err
	}
	defer release()

	opts := pipeline.Options{Logger: log}
	if !asJSON && isTerminal(e.stderr) {
		opts.Extract.Progress = e.stderr
	}
	res, err := pipeline.Run(ctx, parts, opts)
	if asJSON {
		if jerr := json.NewEncoder(e.stdout).Encode(res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printRun(e.stdout, res, err)
	}
	return err
}

// openParts opens what a pass runs against: the lake, the source and the warehouse.
func openParts(ctx context.Context, source, wh, lakeURL string, log *slog.Logger) (pipeline.Parts, func(), error) {
	lk, err := lake.Open(ctx, lakeURL, lake.Options{Logger: log})
	if err != nil {
		return pipeline.Parts{}, nil, err
	}
	src, err := postgres.Open(ctx, "source", source)
	if err != nil {
		lk.Close()
		return pipeline.Parts{}, nil, err
	}
	whPool, err := postgres.Open(ctx, "warehouse", wh)
	if err != nil {
		src.Close()
		lk.Close()
		return pipeline.Parts{}, nil, err
	}
	return pipeline.Parts{Source: src, Warehouse: whPool, Lake: lk}, func() { whPool.Close(); src.Close(); lk.Close() }, nil
}

func printRun(w io.Writer, res pipeline.Result, err error) {
	for _, s := range res.Stages {
		fmt.Fprintf(w, "  %s\n", s)
	}
	var se *pipeline.StageError
	if errors.As(err, &se) {
		fmt.Fprintf(w, "  %-9s failed\n", se.Stage)
		fmt.Fprintf(w, "run failed after %.2fs\n", res.Elapsed.Seconds())
		return
	}
	fmt.Fprintf(w, "run complete in %.2fs\n", res.Elapsed.Seconds())
}

func runTransform(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "transform", "", `Turns every committed raw batch not yet transformed into the star schema, as
processed batches in the lake (one per raw batch).`)
	var (
		lakeURL string
		asJSON  bool
		logs    logConfig
	)
	f.lakeFlag(&lakeURL)
	f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}
	lk, err := lake.Open(ctx, lakeURL, lake.Options{Logger: log})
	if err != nil {
		return err
	}
	defer lk.Close()
	res, err := transform.Run(ctx, lk, transform.Options{Logger: log})
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "transform: %d raw batches into %d processed batches, %s rows in %.2fs\n",
		len(res.Batches), len(res.Batches), humanInt(res.Rows()), res.Elapsed.Seconds())
	return nil
}

// openWarehouse builds the logger and opens the lake and the warehouse, for
// load, rebuild and status.
func openWarehouse(ctx context.Context, f *flags, wh, lakeURL string, logs logConfig) (*lake.Lake, *pgxpool.Pool, *slog.Logger, func(), error) {
	if wh == "" {
		return nil, nil, nil, nil, f.usageErr("no warehouse database: give --warehouse URL or set TOTE_WAREHOUSE_URL")
	}
	log, err := logs.logger(f.e.stderr)
	if err != nil {
		return nil, nil, nil, nil, f.usageErr("%v", err)
	}
	lk, err := lake.Open(ctx, lakeURL, lake.Options{Logger: log})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pool, err := postgres.Open(ctx, "warehouse", wh)
	if err != nil {
		lk.Close()
		return nil, nil, nil, nil, err
	}
	return lk, pool, log, func() { pool.Close(); lk.Close() }, nil
}

func runLoad(ctx context.Context, e *env, args []string) error {
	return loadOrRebuild(ctx, e, args, "load", `Loads every processed batch not yet loaded into the warehouse, in order, each
in one transaction that also records it in the ledger (tote.load_ledger):
loading twice, or after a crash, gives the same warehouse. Creates and
migrates the warehouse schema first.`, warehouse.Load)
}

func runRebuild(ctx context.Context, e *env, args []string) error {
	return loadOrRebuild(ctx, e, args, "rebuild", `Builds a fresh warehouse purely from the lake: creates the schema in an empty
database and loads every processed batch. The result matches the warehouse
that was loaded incrementally, row for row.`, warehouse.Rebuild)
}

func loadOrRebuild(ctx context.Context, e *env, args []string, name, summary string,
	do func(context.Context, *pgxpool.Pool, *lake.Lake, warehouse.Options) (warehouse.Result, error)) error {
	f := newFlags(e, name, "", summary)
	var (
		wh, lakeURL string
		asJSON      bool
		logs        logConfig
	)
	f.warehouseFlag(&wh)
	f.lakeFlag(&lakeURL)
	f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	lk, pool, log, closeAll, err := openWarehouse(ctx, f, wh, lakeURL, logs)
	if err != nil {
		return err
	}
	defer closeAll()
	res, err := do(ctx, pool, lk, warehouse.Options{Logger: log})
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "%s: %d processed batches, %s rows in %.2fs\n",
		name, len(res.Batches), humanInt(res.Rows()), res.Elapsed.Seconds())
	return nil
}
