package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
)

func runSeed(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "seed", "", `Creates the totesys schema in the source database and fills it with realistic,
deterministic rows (same --seed and --scale, same rows), or with a snapshot of
the real tables (--from). Refuses a database that already holds totesys tables
unless --force.`, usesSource)
	var (
		until, from   string
		scale         int
		seedValue     uint64
		force, asJSON bool
	)
	b.fs.IntVar(&scale, "scale", 1, "size as a multiple of the real system (1 = about 50,000 rows)")
	b.fs.Uint64Var(&seedValue, "seed", 1, "random seed: the same seed gives the same rows")
	b.fs.StringVar(&until, "until", seed.DefaultUntil.Format("2006-01-02T15:04:05"), "creation `time` of the last generated order (UTC)")
	b.fs.StringVar(&from, "from", "", "load a snapshot of real totesys tables from `DIR` (one <table>.parquet each) instead of generating")
	b.fs.BoolVar(&force, "force", false, "drop existing totesys tables (and their rows) first")
	b.fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := b.parse(args, 0, usesSource); err != nil {
		return err
	}
	defer b.close()
	untilTime, err := time.Parse("2006-01-02T15:04:05", until)
	if err != nil {
		return b.usageErr("--until %q: want a time like 2024-11-15T14:40:10", until)
	}
	if err := seed.CheckScale(scale); err != nil {
		return b.usageErr("--scale %d: want a whole number from 1 to %d", scale, seed.MaxScale)
	}
	pool, err := b.openSource(ctx)
	if err != nil {
		return err
	}
	if from != "" {
		b.log.Info("seeding", "source", postgres.Redact(b.sourceURL), "from", from)
	} else {
		b.log.Info("seeding", "source", postgres.Redact(b.sourceURL), "scale", scale, "seed", seedValue)
	}
	var res seed.Result
	if from != "" {
		res, err = seed.LoadSnapshot(ctx, pool, from, force, b.log)
	} else {
		res, err = seed.Generate(ctx, pool, seed.Options{Scale: scale, Seed: seedValue, Until: untilTime, Force: force, Logger: b.log})
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
		fmt.Fprintf(w, "  %-15s %12s rows\n", t.Table, human.Int(t.Rows))
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(w, "seeded %s into %s in %s (%s rows/s)\n",
		human.Count(res.Rows(), "row"), human.Count(len(res.Tables), "table"), human.Duration(res.Elapsed), human.Int(int64(float64(res.Rows())/max(secs, 1e-9))))
}
