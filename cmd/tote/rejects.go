package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/terrifictotes/tote/internal/human"
)

func runRejects(ctx context.Context, e *env, args []string) error {
	args = subcommandFirst(args, "ls")
	if len(args) == 0 || args[0] != "ls" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: tote rejects ls [flags]\n\n  ls   list the quarantined rows (open ones unless --all)")
			return nil
		}
		fmt.Fprintln(e.stderr, "Usage: tote rejects ls [flags]")
		return errUsage
	}
	b := newBase(e, "rejects ls", "", `Lists the source row versions the transform quarantined because a value
could not be transformed (an unparseable date, an unknown currency code, ...):
table, id, version, column, value, reason and the batches involved. A later
version of the row that transforms resolves its reject. Open rejects only,
unless --all.`, usesWarehouse)
	defer b.close()
	all := b.fs.Bool("all", false, "list resolved rejects too")
	limit := b.fs.Int("limit", 100, "number of rejects to show")
	asJSON := b.jsonFlag("the rejects")
	p, err := b.start(ctx, args[1:], 0, usesWarehouse)
	if err != nil {
		return err
	}
	rejects, err := p.Warehouse.Rejects(ctx, *all, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rejects)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "id\ttable\tsource id\tversion\tcolumn\tvalue\treason\tbatch\tresolved by")
	for _, r := range rejects {
		version, value := "", "NULL"
		if !r.Version.IsZero() {
			version = r.Version.Format("2006-01-02 15:04:05.000")
		}
		if r.Value != nil {
			value = fmt.Sprintf("%q", *r.Value)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Table, r.SourceID, version, r.Column, value, r.Reason,
			r.Batch, r.ResolvedBy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	what := "open reject"
	if *all {
		what = "open or resolved reject"
	}
	fmt.Fprintf(e.stdout, "%s (as of %s)\n", human.Count(len(rejects), what), time.Now().UTC().Format(time.RFC3339))
	return nil
}
