package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/terrifictotes/tote/extract"
)

func runExtract(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "extract", "", `Reads the row versions of every totesys table that are new since the last
committed extraction, from one consistent snapshot, and commits them to the
lake's raw zone as one batch (nothing is committed when nothing changed).
Where to start is read from the lake, so any machine can carry on.`, usesSource|usesLake)
	defer b.close()
	maxDelay := b.fs.Duration("max-replica-delay", extract.DefaultMaxReplicaDelay,
		"warn when a hot standby source's replay trails the WAL it has received by more than this")
	asJSON := b.jsonFlag("the result")
	p, err := b.start(ctx, args, 0, usesSource)
	if err != nil {
		return err
	}
	opts := extract.Options{Logger: b.log, MaxReplicaDelay: *maxDelay}
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
	fmt.Fprintf(w, "extract: read %s\n", describeSource(res.Source))
	switch {
	case res.Behind:
		fmt.Fprintf(w, "extract: the source is behind the last extraction, nothing extracted (%.2fs)\n", res.Elapsed.Seconds())
		return
	case !res.Committed:
		fmt.Fprintf(w, "extract: nothing new in the source, no batch committed (%.2fs)\n", res.Elapsed.Seconds())
		return
	}
	secs := max(res.Elapsed.Seconds(), 1e-9)
	tables := 0
	for _, t := range res.Tables {
		if t.Rows > 0 {
			tables++
		}
		if t.Late > 0 {
			fmt.Fprintf(w, "extract: %s: %s versions stamped up to %s before the last extraction read the source (see the log)\n",
				t.Table, humanInt(t.Late), t.MaxLate.Round(time.Millisecond))
		}
	}
	fmt.Fprintf(w, "extract: batch %s: %s row versions from %d tables in %.2fs (%s rows/s); read %.1f MB (%.1f MB/s), wrote %.1f MB of Parquet\n",
		res.Batch, humanInt(res.Rows()), tables, secs, humanInt(int64(float64(res.Rows())/secs)),
		float64(res.SourceBytes())/1e6, float64(res.SourceBytes())/1e6/secs, float64(res.Bytes())/1e6)
}

// describeSource says which server an extraction read.
func describeSource(s extract.Source) string {
	if s.Role != extract.Standby {
		return "the primary (" + s.Database + ")"
	}
	d := "a hot standby (" + s.Database + ")"
	switch {
	case s.ReplayPaused:
		d += ", replay paused"
	case s.ReplayDelay > 0:
		d += fmt.Sprintf(", replay %s behind what it has received", s.ReplayDelay.Round(time.Second))
	default:
		d += ", caught up with what it has received"
	}
	return d
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
