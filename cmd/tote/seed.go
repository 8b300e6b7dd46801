package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
)

func runSeed(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "seed", "", `Creates the totesys schema in the source database and fills it with realistic,
deterministic rows (same --seed and --scale, same rows), or with a snapshot of
the real tables (--from). Refuses a database that already holds totesys tables
unless --force.`)
	var (
		source, until, from string
		scale               int
		seedValue           uint64
		force, asJSON       bool
		logs                logConfig
	)
	f.sourceFlag(&source)
	f.fs.IntVar(&scale, "scale", 1, "size as a multiple of the real system (1 = about 50,000 rows)")
	f.fs.Uint64Var(&seedValue, "seed", 1, "random seed: the same seed gives the same rows")
	f.fs.StringVar(&until, "until", seed.DefaultUntil.Format("2006-01-02T15:04:05"), "creation `time` of the last generated order (UTC)")
	f.fs.StringVar(&from, "from", "", "load a snapshot of real totesys tables from `DIR` (one <table>.parquet each) instead of generating")
	f.fs.BoolVar(&force, "force", false, "drop existing totesys tables (and their rows) first")
	f.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	if source == "" {
		return f.usageErr("no source database: give --source URL or set TOTE_SOURCE_URL")
	}
	untilTime, err := time.Parse("2006-01-02T15:04:05", until)
	if err != nil {
		return f.usageErr("--until %q: want a time like 2024-11-15T14:40:10", until)
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}
	if err := seed.CheckScale(scale); err != nil {
		return err
	}

	pool, err := postgres.Open(ctx, "source", source)
	if err != nil {
		return err
	}
	defer pool.Close()
	log.Info("seeding", "source", postgres.Redact(source), "scale", scale, "seed", seedValue, "from", from)
	var res seed.Result
	if from != "" {
		res, err = seed.LoadSnapshot(ctx, pool, from, force, log)
	} else {
		res, err = seed.Generate(ctx, pool, seed.Options{Scale: scale, Seed: seedValue, Until: untilTime, Force: force, Logger: log})
	}
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	printSeed(e.stdout, res)
	return nil
}

func printSeed(w io.Writer, res seed.Result) {
	for _, t := range res.Tables {
		fmt.Fprintf(w, "  %-15s %12s rows\n", t.Table, humanInt(t.Rows))
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(w, "seeded %s rows into %d tables in %.1fs (%s rows/s)\n",
		humanInt(res.Rows()), len(res.Tables), secs, humanInt(int64(float64(res.Rows())/max(secs, 1e-9))))
}
