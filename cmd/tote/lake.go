package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/lake"
)

func runLake(ctx context.Context, e *env, args []string) error {
	args = subcommandFirst(args, "ls", "show", "clean", "move-source")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, `Usage: tote lake ls|show|clean [flags]

  ls           list the committed batches of a zone
  show BATCH   print a batch's manifest (BATCH is its id or sequence number)
  clean        delete files that no committed batch lists, and temporary files (left by crashes)
  move-source  accept a moved source (dump and restore, a new cluster)

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
	case "move-source":
		return runLakeMoveSource(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "tote lake: unknown subcommand %q (want ls, show, clean or move-source)\n", args[0])
	return errUsage
}

// newLakeCommand starts a lake subcommand: the lake and logging flags,
// and --zone, whose value it returns once parsed.
func newLakeCommand(e *env, cmd, args, summary string) (*base, *string) {
	b := newBase(e, cmd, args, summary, usesLake)
	zone := b.fs.String("zone", string(lake.Raw), "lake zone: `raw` or processed")
	return b, zone
}

// openZone parses the command line and opens the lake, checking --zone.
func openZone(ctx context.Context, b *base, zone *string, args []string, want int) (*lake.Lake, lake.Zone, error) {
	if err := b.parse(args, want, 0); err != nil {
		return nil, "", err
	}
	z := lake.Zone(*zone)
	if z != lake.Raw && z != lake.Processed {
		return nil, "", b.usageErr("--zone %q: want raw or processed", *zone)
	}
	lk, err := b.openLake(ctx)
	return lk, z, err
}

func runLakeLs(ctx context.Context, e *env, args []string) error {
	b, zoneFlag := newLakeCommand(e, "lake ls", "", "Lists the committed batches of a lake zone, oldest first.")
	asJSON := b.fs.Bool("json", false, "print the manifests as JSON")
	defer b.close()
	lk, zone, err := openZone(ctx, b, zoneFlag, args, 0)
	if err != nil {
		return err
	}
	batches, err := lk.Batches(ctx, zone)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(batches)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seq\tbatch\tcreated\tfiles\trows\tbytes\t")
	for _, m := range batches {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t\n", m.Seq, m.ID, m.CreatedAt.UTC().Format(time.DateTime),
			len(m.Files), human.Int(m.Rows()), human.Int(m.Bytes()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s in %s\n", human.Count(len(batches), "committed "+string(zone)+" batch"), lk.URL())
	return nil
}

func runLakeShow(ctx context.Context, e *env, args []string) error {
	b, zoneFlag := newLakeCommand(e, "lake show", "BATCH", "Prints the manifest of one batch, by id or sequence number.")
	defer b.close()
	lk, zone, err := openZone(ctx, b, zoneFlag, args, 1)
	if err != nil {
		return err
	}
	m, err := lk.Batch(ctx, zone, b.arg(0))
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
	b := newBase(e, "lake clean", "", `Deletes what crashed or lost writes left in the lake: the files of batches
no committed manifest lists (a crash, a lost race) and the temporary files of
every kind (beside data files, manifests and status objects), older than
--grace, so that a batch still being written is spared.`, usesLake)
	zoneFlag := b.fs.String("zone", "all", "lake zone: raw, processed or `all`")
	grace := b.fs.Duration("grace", time.Hour, "spare files younger than this")
	defer b.close()
	if err := b.parse(args, 0, 0); err != nil {
		return err
	}
	zones := []lake.Zone{lake.Raw, lake.Processed}
	switch z := lake.Zone(*zoneFlag); z {
	case "all":
	case lake.Raw, lake.Processed:
		zones = []lake.Zone{z}
	default:
		return b.usageErr("--zone %q: want raw, processed or all", *zoneFlag)
	}
	lk, err := b.openLake(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, zone := range zones {
		removed, err := lk.Clean(ctx, zone, *grace)
		for _, key := range removed {
			fmt.Fprintln(e.stdout, "removed", key)
		}
		if err != nil {
			return err
		}
		total += len(removed)
	}
	fmt.Fprintf(e.stdout, "removed %s from %s\n", human.Count(total, "orphaned or temporary file"), lk.URL())
	return nil
}

func runLakeMoveSource(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "lake move-source", "", `Accepts a new source for the lake: the same data moved to another database or
cluster (a dump and restore, a new primary made from a dump), which extraction
refuses because its system identifier or database differs from the one the
lake was extracted from. It commits a raw batch with no rows that declares the
source's current rows extracted already, and extraction carries on from there.
That is right if nothing was written to the old source after its last
extraction; check with tote verify (and --repair) afterwards. First it
compares a sample of ids per table: the lake's latest version of each with
the source's row; a source that holds other values (another database), or
lacks most of the rows, is refused unless --force.`, usesSource|usesLake)
	force := b.fs.Bool("force", false, "accept the source even if a sample of its rows differs from the lake's")
	defer b.close()
	p, err := b.start(ctx, args, 0, usesSource)
	if err != nil {
		return err
	}
	res, err := extract.MoveSource(ctx, p.Source, p.Lake, extract.Options{Logger: b.log, Force: *force})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lake %s now follows database %q of system %s, from raw batch %s; run tote verify to check\n",
		p.Lake.URL(), res.Source.Database, res.Source.SystemID, res.Batch)
	return nil
}
