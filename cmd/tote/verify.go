package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/verify"
)

// errDifferent says verify found differences; the message is printed already.
var errDifferent = errors.New("the warehouse differs from the source")

func runVerify(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "verify", "", `Compares the warehouse with the source without copying whole tables: every
dimension, and the current version of every fact (its <fact>_current view),
computed from the source as the transform makes it, by checksums over ranges
of ids narrowed down to the rows that differ. Prints the rows missing from the
warehouse, those it has live that the source no longer does, and those that
differ, by table and id, and exits 1 if there are any. A deleted row the
warehouse carries as deleted is no difference. Rows changed or deleted since
the last extraction the warehouse holds, and rows quarantined, are left out: a
busy source raises no false alarm. With --repair, the missing and differing
rows are sent through the pipeline again, and tombstones for the rows the
source no longer has, as a corrective batch, and the comparison is made again.`, usesSource|usesWarehouse|usesLake)
	defer b.close()
	repair := b.fs.Bool("repair", false, "send the missing and differing rows through the pipeline again, and tombstones for the rows "+
		"the source no longer has, then compare again")
	asJSON := b.jsonFlag("the result")
	p, err := b.start(ctx, args, 0, usesSource|usesWarehouse)
	if err != nil {
		return err
	}
	res, err := verify.Run(ctx, p, verify.Options{Logger: b.log})
	if err != nil {
		return err
	}
	if *repair && res.Differences() > 0 {
		release, err := pipeline.LockRun(ctx, p.Warehouse) // not alongside a run
		if err != nil {
			return err
		}
		pr, err := verify.Repair(ctx, p, res, b.log)
		release()
		if err != nil {
			return err
		}
		if pr.Extract != nil && pr.Extract.Committed {
			fmt.Fprintf(e.stdout, "repair: sent %s again and %s in corrective batch %s\n",
				human.Count(pr.Extract.Rows(), "row"), human.Count(pr.Extract.Deleted(), "tombstone"), pr.Extract.Batch)
		}
		if res, err = verify.Run(ctx, p, verify.Options{Logger: b.log}); err != nil {
			return err
		}
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(res); err != nil {
			return err
		}
	} else {
		printVerify(e.stdout, res)
	}
	if n := res.Differences(); n > 0 {
		fmt.Fprintf(e.stderr, "tote verify: %s between the warehouse and the source\n", differ(n))
		return errDifferent
	}
	return nil
}

func printVerify(w io.Writer, res verify.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\tmissing\textra\tdifferent\tin flight\tquarantined\t")
	for _, t := range res.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Table, human.Int(t.Rows), human.Int(len(t.Missing)), human.Int(len(t.Extra)),
			human.Int(len(t.Different)), human.Int(t.InFlight), human.Int(t.Quarantined))
	}
	_ = tw.Flush()
	for _, t := range res.Tables {
		for _, d := range []struct {
			what string
			ids  []int64
		}{{"missing from the warehouse", t.Missing}, {"in the warehouse, not in the source", t.Extra}, {"different", t.Different}} {
			if len(d.ids) > 0 {
				fmt.Fprintf(w, "%s: %s: %s ids %s\n", t.Table, d.what, t.Source, idList(d.ids, 20))
			}
		}
	}
	fmt.Fprintf(w, "verified in %s: %s\n", human.Duration(res.Elapsed), differ(res.Differences()))
}

// differ says how many rows differ, agreeing in number.
func differ[N ~int | ~int64](n N) string {
	if n == 1 {
		return "1 row differs"
	}
	return human.Count(n, "row") + " differ"
}

// idList formats at most n ids, saying how many more there are.
func idList(ids []int64, n int) string {
	s := fmt.Sprint(ids[:min(n, len(ids))])
	if len(ids) > n {
		s += " and " + human.Int(len(ids)-n) + " more"
	}
	return s
}
