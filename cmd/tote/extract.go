package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/totesys"
)

func runExtract(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "extract", "", `Reads the row versions of every totesys table that are new since the last
committed extraction, and the rows deleted since, from one consistent
snapshot, and commits them to the lake's raw zone as one batch (nothing is
committed when nothing changed). Where to start is read from the lake, so any
machine can carry on. A batch that would delete more than
--max-delete-fraction of a table, or all of it, is held back until accepted
with --accept-deletes TABLE. --full reads every row instead, and tombstones
the rows the lake holds that the source does not (after a restore, or to
re-baseline).`, usesSource|usesLake)
	b.createsLake = true
	defer b.close()
	maxDelay := b.fs.Duration("max-replica-delay", extract.DefaultMaxReplicaDelay,
		"warn when a hot standby source's replay trails the WAL it has received by more than this")
	full := b.fs.Bool("full", false, "read every row of every table into one batch, and tombstone the rows the lake holds that the source does not")
	dels := deletionFlags(b)
	capture := captureModeFlags(b)
	asJSON := b.jsonFlag("the result")
	p, err := b.start(ctx, args, 0, usesSource)
	if err != nil {
		return err
	}
	opts := extract.Options{Logger: b.log, MaxReplicaDelay: *maxDelay, Full: *full}
	if err := dels.apply(b, &opts); err != nil {
		return err
	}
	if err := capture.apply(b, &opts); err != nil {
		return err
	}
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

// deletions are the flags that govern how many deletions an extraction
// applies.
type deletions struct {
	accept   []string
	fraction *float64
}

// deletionFlags registers --accept-deletes and --max-delete-fraction.
func deletionFlags(b *base) *deletions {
	d := &deletions{}
	b.fs.Func("accept-deletes", "apply the deletions held back from `TABLE`s (a comma list, or the flag repeated)", func(v string) error {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				d.accept = append(d.accept, t)
			}
		}
		return nil
	})
	d.fraction = b.fs.Float64("max-delete-fraction", extract.DefaultMaxDeleteFraction,
		"hold back a batch that would delete more than this share of a table's rows (a whole table is always held back)")
	return d
}

// apply checks the flags and sets them in opts.
func (d *deletions) apply(b *base, opts *extract.Options) error {
	for _, t := range d.accept {
		if _, err := totesys.Lookup(t); err != nil {
			return b.usageErr("--accept-deletes: %v", err)
		}
	}
	if f := *d.fraction; !(f > 0 && f <= 1) {
		return b.usageErr("--max-delete-fraction %v: want a share above 0 and at most 1", f)
	}
	opts.AcceptDeletes, opts.MaxDeleteFraction = d.accept, *d.fraction
	return nil
}

// captureMode is the flags that choose how an extraction finds changes.
type captureMode struct {
	mode string
	cfg  replication.Config
}

// captureModeFlags registers --capture, --slot and --publication.
func captureModeFlags(b *base) *captureMode {
	c := &captureMode{}
	b.envString(&c.mode, "capture", "TOTE_CAPTURE", extract.CaptureXmin,
		"how changes are found: `xmin` (transaction ids, a pass over each table; SELECT is enough) or logical (a replication slot; see tote capture setup)")
	b.envString(&c.cfg.SlotName, "slot", "TOTE_SLOT", replication.DefaultSlotName, "logical capture's replication `slot`")
	b.envString(&c.cfg.Publication, "publication", "TOTE_PUBLICATION", replication.DefaultPublication, "logical capture's `publication` of the totesys tables")
	return c
}

// apply checks the flags and sets them in opts.
func (c *captureMode) apply(b *base, opts *extract.Options) error {
	if err := extract.CheckCapture(c.mode); err != nil {
		return b.usageErr("--capture: %v", err)
	}
	if err := c.cfg.Validate(); err != nil {
		return b.usageErr("%v", err)
	}
	opts.Capture, opts.Replication = c.mode, c.cfg
	return nil
}

func printExtract(w io.Writer, res extract.Result) {
	fmt.Fprintf(w, "extract: read %s\n", describeSource(res.Source))
	printNewColumns(w, &res)
	if res.Capture == extract.CaptureLogical {
		how := "streamed from the replication slot"
		if res.Full {
			how = "handed off to the replication slot: this batch reads every row in the slot's snapshot; the next ones stream"
		}
		fmt.Fprintf(w, "extract: logical capture, %s, up to WAL position %s\n", how, res.LSN)
	}
	switch {
	case res.Behind:
		fmt.Fprintf(w, "extract: the source is behind the last extraction, nothing extracted (%s)\n", human.Duration(res.Elapsed))
		return
	case !res.Committed:
		fmt.Fprintf(w, "extract: nothing new in the source, no batch committed (%s)\n", human.Duration(res.Elapsed))
		return
	}
	secs := max(res.Elapsed.Seconds(), 1e-9)
	tables := 0
	for _, t := range res.Tables {
		if t.Rows > 0 {
			tables++
		}
		if t.Reappeared > 0 {
			fmt.Fprintf(w, "extract: %s: %s back in the source without a new version (restored from a backup?): tote extract --full reads them\n",
				t.Table, human.Count(t.Reappeared, "row"))
		}
		if t.Late > 0 {
			fmt.Fprintf(w, "extract: %s: %s stamped up to %s before the last extraction read the source (see the log)\n",
				t.Table, human.Count(t.Late, "version"), t.MaxLate.Round(time.Millisecond))
		}
	}
	kind := ""
	if res.Full {
		kind = " (full: every row)"
	}
	fmt.Fprintf(w, "extract: batch %s%s: %s from %s in %s (%s rows/s); read %.1f MB (%.1f MB/s), wrote %.1f MB of Parquet\n",
		res.Batch, kind, human.Count(res.Rows(), "row version"), human.Count(tables, "table"), human.Duration(res.Elapsed), human.Int(int64(float64(res.Rows())/secs)),
		float64(res.SourceBytes())/1e6, float64(res.SourceBytes())/1e6/secs, float64(res.Bytes())/1e6)
	if res.Deleted() > 0 {
		var by []string
		for _, t := range res.Tables {
			if t.Deleted > 0 {
				by = append(by, t.Table+" "+human.Int(t.Deleted))
			}
		}
		fmt.Fprintf(w, "extract: %s deleted in the source: %s\n", human.Count(res.Deleted(), "row"), strings.Join(by, ", "))
	}
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

// printNewColumns names the source columns beyond the model that the
// extraction carries for the first time.
func printNewColumns(w io.Writer, res *extract.Result) {
	if res == nil {
		return
	}
	for _, c := range res.NewColumns {
		fmt.Fprintf(w, "extract: new column %s: the raw zone carries it as text, the star schema does not read it\n", c)
	}
}
