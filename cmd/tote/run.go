package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/transform"
	"github.com/terrifictotes/tote/warehouse"
)

func runRun(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "run", "", `Makes one pass of the pipeline: extract what is new in the source into the
lake, transform every new raw batch into the star schema, and load every new
processed batch into the warehouse. Each stage carries on from what earlier
passes committed; the exit status says whether the pass succeeded. The run
is recorded in the warehouse's history (tote.runs, trigger "manual"), and
never overlaps another run on the same warehouse.`, usesSource|usesWarehouse|usesLake)
	b.createsLake = true
	defer b.close()
	asJSON := b.jsonFlag("the result")
	strict := strictFlag(b)
	dels := deletionFlags(b)
	capture := captureModeFlags(b)
	b.icebergFlags()
	parts, err := b.start(ctx, args, 0, usesSource|usesWarehouse)
	if err != nil {
		return err
	}
	var eopts extract.Options
	if err := dels.apply(b, &eopts); err != nil {
		return err
	}
	if err := capture.apply(b, &eopts); err != nil {
		return err
	}
	rec, err := pipeline.Begin(ctx, parts, "manual", b.log)
	if err != nil {
		if !*asJSON {
			printRun(e.stdout, pipeline.Result{}, err)
		}
		return err
	}
	opts := pipeline.Options{Strict: *strict, Extract: eopts}
	if !*asJSON && isTerminal(e.stderr) {
		opts.Extract.Progress = e.stderr
	}
	res, err := rec.Pass(ctx, opts)
	err = postgres.Reword(err) // once, for the history and the message
	if _, ferr := rec.Finish(ctx, err); ferr != nil && err == nil {
		err = ferr
	}
	if *asJSON {
		if jerr := json.NewEncoder(e.stdout).Encode(res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printRun(e.stdout, res, err)
	}
	return err
}

func printRun(w io.Writer, res pipeline.Result, err error) {
	for _, s := range res.Stages {
		fmt.Fprintf(w, "  %s\n", s)
	}
	printNewColumns(w, res.Extract)
	printQuarantined(w, res.Quarantined())
	if err != nil {
		if stage := tote.Locate(err).Stage; stage != "" {
			fmt.Fprintf(w, "  %-9s failed\n", stage)
		}
		fmt.Fprintf(w, "run failed after %s\n", human.Duration(res.Elapsed))
		return
	}
	fmt.Fprintf(w, "run complete in %s\n", human.Duration(res.Elapsed))
}

func runTransform(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "transform", "", `Turns every committed raw batch not yet transformed into the star schema, as
processed batches in the lake (one per raw batch).`, usesLake)
	defer b.close()
	asJSON := b.jsonFlag("the result")
	strict := strictFlag(b)
	p, err := b.start(ctx, args, 0, 0)
	if err != nil {
		return err
	}
	res, err := transform.Run(ctx, p.Lake, transform.Options{Logger: b.log, Strict: *strict})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "transform: %s into %s, %s%s in %s\n",
		human.Count(len(res.Batches), "raw batch"), human.Count(len(res.Batches), "processed batch"), human.Count(res.Rows(), "row"),
		deletedNote(res.Deleted()), human.Duration(res.Elapsed))
	printQuarantined(e.stdout, pipeline.Result{Transform: &res}.Quarantined())
	return nil
}

// strictFlag registers --strict.
func strictFlag(b *base) *bool {
	return b.fs.Bool("strict", false, "fail on a value that cannot be transformed, instead of quarantining its row")
}

func printQuarantined(w io.Writer, rows []string) {
	for _, r := range rows {
		fmt.Fprintf(w, "  quarantined: %s\n", r)
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "%s quarantined (tote rejects ls); the rest of their batches went on\n", human.Count(len(rows), "row"))
	}
}

func runLoad(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "load", "", `Loads every processed batch not yet loaded into the warehouse, in order, each
in one transaction that also records it in the ledger (tote.load_ledger):
loading twice, or after a crash, gives the same warehouse. Creates and
migrates the warehouse schema first. A warehouse loaded from another lake
(or from this lake's processed zone before it was rewritten) is refused
unless --adopt-lake: then the old ledger moves to tote.load_ledger_history
and the lake's batches are loaded from its first, the rows already there
recognised and not doubled.`, usesWarehouse|usesLake)
	defer b.close()
	adopt := b.fs.Bool("adopt-lake", false, "follow this lake from now on, although the warehouse was loaded from another")
	asJSON := b.jsonFlag("the result")
	b.icebergFlags()
	p, err := b.start(ctx, args, 0, usesWarehouse)
	if err != nil {
		return err
	}
	if *adopt {
		if err := p.Warehouse.AdoptLake(ctx); err != nil {
			return err
		}
	}
	res, err := p.Warehouse.Load(ctx, p.Lake)
	if err := printLoad(e.stdout, "load", res, err, *asJSON); err != nil || p.Iceberg == nil {
		return err
	}
	pr, err := p.Iceberg.Publish(ctx)
	if err != nil {
		return tote.At(err, tote.Where{Stage: tote.Publish})
	}
	if !*asJSON {
		fmt.Fprintf(e.stdout, "publish: %s to the Iceberg tables, %s in %s\n", human.Count(len(pr.Batches), "batch"), human.Count(pr.Rows(), "row"), human.Duration(pr.Elapsed))
	}
	return nil
}

func runRebuild(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "rebuild", "", `Builds a fresh warehouse purely from the lake: creates the schema in an empty
database and loads every processed batch. The result matches the warehouse
that was loaded incrementally, row for row. A database that holds star
tables or tote's tables is refused, unless --replace: then they are dropped
first.`, usesWarehouse|usesLake)
	defer b.close()
	replace := b.fs.Bool("replace", false, "drop the star tables and tote's tables the database holds, then rebuild")
	asJSON := b.jsonFlag("the result")
	p, err := b.start(ctx, args, 0, usesWarehouse)
	if err != nil {
		return err
	}
	res, err := p.Warehouse.Rebuild(ctx, p.Lake, *replace)
	return printLoad(e.stdout, "rebuild", res, err, *asJSON)
}

func printLoad(w io.Writer, name string, res warehouse.Result, err error, asJSON bool) error {
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(res)
	}
	fmt.Fprintf(w, "%s: %s, %s%s in %s\n",
		name, human.Count(len(res.Batches), "processed batch"), human.Count(res.Rows(), "row"), deletedNote(res.Deleted()), human.Duration(res.Elapsed))
	return nil
}

// deletedNote says how many source rows deleted a stage carried, if any.
func deletedNote(n int64) string {
	if n == 0 {
		return ""
	}
	return " and " + human.Count(n, "deletion")
}
