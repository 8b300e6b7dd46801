package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/terrifictotes/tote/lake"
)

func runLake(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, `Usage: tote lake ls|show|clean [flags]

  ls           list the committed batches of a zone
  show BATCH   print a batch's manifest (BATCH is its id or sequence number)
  clean        delete files that no committed batch lists (left by crashes)

Run 'tote lake SUBCOMMAND --help' for flags.
`)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "ls":
		return runLakeLs(ctx, e, args[1:])
	case "show":
		return runLakeShow(ctx, e, args[1:])
	case "clean":
		return runLakeClean(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "tote lake: unknown subcommand %q (want ls, show or clean)\n", args[0])
	return errUsage
}

// lakeFlags are the flags every lake subcommand takes.
type lakeFlags struct {
	url, zone string
	logs      logConfig
}

func (lf *lakeFlags) register(f *flags) {
	f.lakeFlag(&lf.url)
	f.fs.StringVar(&lf.zone, "zone", string(lake.Raw), "lake zone: `raw` or processed")
	f.logFlags(&lf.logs)
}

func (lf *lakeFlags) open(ctx context.Context, f *flags) (*lake.Lake, lake.Zone, error) {
	zone := lake.Zone(lf.zone)
	if zone != lake.Raw && zone != lake.Processed {
		return nil, "", f.usageErr("--zone %q: want raw or processed", lf.zone)
	}
	log, err := lf.logs.logger(f.e.stderr)
	if err != nil {
		return nil, "", f.usageErr("%v", err)
	}
	lk, err := lake.Open(ctx, lf.url, lake.Options{Logger: log})
	return lk, zone, err
}

func runLakeLs(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "lake ls", "", "Lists the committed batches of a lake zone, oldest first.")
	var lf lakeFlags
	var asJSON bool
	lf.register(f)
	f.fs.BoolVar(&asJSON, "json", false, "print the manifests as JSON")
	if err := f.parse(args, 0); err != nil {
		return err
	}
	lk, zone, err := lf.open(ctx, f)
	if err != nil {
		return err
	}
	defer lk.Close()
	batches, err := lk.Batches(ctx, zone)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(batches)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seq\tbatch\tcreated\tfiles\trows\tbytes\t")
	for _, m := range batches {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t\n", m.Seq, m.ID, m.CreatedAt.UTC().Format(time.DateTime),
			len(m.Files), humanInt(m.Rows()), humanInt(m.Bytes()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d committed %s batches in %s\n", len(batches), zone, lk.URL())
	return nil
}

func runLakeShow(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "lake show", "BATCH", "Prints the manifest of one batch, by id or sequence number.")
	var lf lakeFlags
	lf.register(f)
	if err := f.parse(args, 1); err != nil {
		return err
	}
	lk, zone, err := lf.open(ctx, f)
	if err != nil {
		return err
	}
	defer lk.Close()
	m, err := lk.Batch(ctx, zone, f.fs.Arg(0))
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(out))
	return err
}

func runLakeClean(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "lake clean", "", `Deletes data files of a zone that no committed manifest lists (left by a crash
or a lost race) and that are older than --grace, so a batch still being
written is spared.`)
	var lf lakeFlags
	var grace time.Duration
	lf.register(f)
	f.fs.DurationVar(&grace, "grace", time.Hour, "spare files younger than this")
	if err := f.parse(args, 0); err != nil {
		return err
	}
	lk, zone, err := lf.open(ctx, f)
	if err != nil {
		return err
	}
	defer lk.Close()
	removed, err := lk.Clean(ctx, zone, grace)
	for _, key := range removed {
		fmt.Fprintln(e.stdout, "removed", key)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d orphaned files from the %s zone\n", len(removed), zone)
	return nil
}
