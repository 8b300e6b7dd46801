package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/terrifictotes/tote/extract"
)

func runExtract(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "extract", "", `Reads the row versions of every totesys table that are new since the last
committed extraction, from one consistent snapshot, and commits them to the
lake's raw zone as one batch (nothing is committed when nothing changed).
Where to start is read from the lake, so any machine can carry on.`, usesSource|usesLake)
	defer b.close()
	margin := b.fs.Duration("margin", extract.DefaultMargin, "extra overlap below the horizon of open source transactions")
	maxTxn := b.fs.Duration("max-transaction", extract.DefaultMaxTransaction,
		"longest a source transaction is assumed to stay open, when open transactions cannot be seen (no pg_read_all_stats)")
	asJSON := b.jsonFlag("the result")
	p, err := b.start(ctx, args, 0, usesSource)
	if err != nil {
		return err
	}
	opts := extract.Options{Logger: b.log, Margin: *margin, MaxTransaction: *maxTxn}
	if !*asJSON && isTerminal(e.stderr) {
		opts.Progress = e.stderr
	}
	res, err := extract.Run(ctx, p.Source, p.Lake, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	printExtract(e.stdout, res)
	return nil
}

func printExtract(w io.Writer, res extract.Result) {
	if !res.Committed {
		fmt.Fprintf(w, "extract: nothing new in the source, no batch committed (%.2fs)\n", res.Elapsed.Seconds())
		return
	}
	secs := max(res.Elapsed.Seconds(), 1e-9)
	tables := 0
	for _, t := range res.Tables {
		if t.Rows > 0 {
			tables++
		}
	}
	fmt.Fprintf(w, "extract: batch %s: %s row versions from %d tables in %.2fs (%s rows/s); read %.1f MB (%.1f MB/s), wrote %.1f MB of Parquet\n",
		res.Batch, humanInt(res.Rows()), tables, secs, humanInt(int64(float64(res.Rows())/secs)),
		float64(res.SourceBytes())/1e6, float64(res.SourceBytes())/1e6/secs, float64(res.Bytes())/1e6)
}

// isTerminal reports whether w is a terminal (for progress output).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
