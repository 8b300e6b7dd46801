package main

// Commit-to-warehouse latency under `tote serve` (-latency, issue 22): a
// writer commits about latencyRate transactions a second to the source,
// each updating one sales_order row's last_updated (a new version of its
// fact, so a new fact_sales_order row), each row once per measurement;
// `tote serve` runs; a poller on the warehouse notes when each row's new
// version arrives. The latency of one transaction is that moment less the
// moment its COMMIT returned to the writer, so it includes up to one poll
// interval (latencyPoll) of the poller's own.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/totesys"
)

const (
	latencyRate   = 200                   // writer transactions a second
	latencyWindow = 30 * time.Second      // how long the writer writes
	latencyPoll   = 25 * time.Millisecond // the poller's interval
	latencyDrain  = 60 * time.Second      // how long the poller waits after the writer stops
	targetP99     = 2 * time.Second       // issue 22
)

// LatencyReport is what -latency measured at one scale.
type LatencyReport struct {
	When        time.Time `json:"when"`
	Scale       int       `json:"scale"`
	Seed        uint64    `json:"seed"`
	Rows        int64     `json:"source_rows"`
	Machine     Machine   `json:"machine"`
	ToteBuild   string    `json:"tote_version"`
	Rate        int       `json:"writer_transactions_per_second"`
	WindowSecs  float64   `json:"window_seconds"`
	PollMillis  float64   `json:"poll_ms"`
	Latencies   []Latency `json:"latencies"`
	FirstRunSec float64   `json:"first_run_seconds"`
	// AfterHandoff is the first logical run with a change after the
	// handoff, made before the measurements (a one-time cost).
	AfterHandoff *Run `json:"after_handoff,omitempty"`
}

// Latency is one `tote serve` configuration measured under the writer.
type Latency struct {
	Name string `json:"name"` // e.g. "logical, iceberg off"
	// Args are the arguments serve was given beyond the source, warehouse
	// and lake.
	Args      []string `json:"args"`
	Committed int      `json:"committed"` // transactions the writer committed
	Arrived   int      `json:"arrived"`   // of them, seen in the warehouse
	// AchievedRate is Committed over the writer's actual time.
	AchievedRate float64 `json:"achieved_rate"`
	MedianMillis float64 `json:"median_ms"`
	P99Millis    float64 `json:"p99_ms"`
	MaxMillis    float64 `json:"max_ms"`
	// Runs is how many serve runs finished during the measurement, and
	// SlowestRunSecs the longest of them, start to finish (of the rows of
	// the history: a quiet run taken into a later one's row is not seen,
	// and moved nothing).
	Runs           int64   `json:"runs"`
	SlowestRunSecs float64 `json:"slowest_run_seconds"`
	// SlowestRunStages is that run's stages, as tote.runs holds them.
	SlowestRunStages json.RawMessage `json:"slowest_run_stages,omitempty"`
	// SlowestAtSecs is when, after the writer started, the transaction
	// with the largest latency committed.
	SlowestAtSecs float64 `json:"slowest_at_seconds"`
	LoadAverage   string  `json:"load_average"`
}

// measureLatency seeds a source at scale, loads it with one `tote run`,
// and measures commit-to-warehouse latency under `tote serve` with xmin
// capture (--interval 1s) and, with -capture logical, logical capture
// (its default interval, 1s), each with the Iceberg tables published and
// not (--iceberg-catalog off).
func measureLatency(ctx context.Context, admin, whAdmin string, scale int, o options) (LatencyReport, error) {
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), scale)
	dbs := map[string]string{}
	for _, name := range []string{"src", "wh"} {
		server := whAdmin
		if name == "src" {
			server = admin
		}
		u, drop, err := createDatabase(ctx, server, "tote_bench_lat_"+name+suffix)
		if err != nil {
			return LatencyReport{}, err
		}
		defer drop()
		dbs[name] = u
	}
	rep := LatencyReport{When: time.Now().UTC(), Scale: scale, Seed: o.seed, Machine: machine(), Rate: latencyRate,
		WindowSecs: latencyWindow.Seconds(), PollMillis: float64(latencyPoll) / float64(time.Millisecond)}
	if out, err := exec.CommandContext(ctx, o.bin, "version").Output(); err == nil {
		rep.ToteBuild = strings.TrimSpace(string(out))
	}
	src, err := pgxpool.New(ctx, dbs["src"])
	if err != nil {
		return LatencyReport{}, err
	}
	defer src.Close()
	if err := src.QueryRow(ctx, "SHOW server_version").Scan(&rep.Machine.Postgres); err != nil {
		return LatencyReport{}, err
	}
	fmt.Printf("seeding totesys at scale %d, seed %d\n", scale, o.seed)
	sr, err := seed.Generate(ctx, src, seed.Options{Scale: scale, Seed: o.seed, Logger: o.log})
	if err != nil {
		return LatencyReport{}, err
	}
	rep.Rows = sr.Rows()
	fmt.Printf("  %d rows in %.1fs\n", rep.Rows, sr.Elapsed.Seconds())
	if _, err := src.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return LatencyReport{}, err
	}

	lakeDir, err := os.MkdirTemp("", "tote-bench-lake-")
	if err != nil {
		return LatencyReport{}, err
	}
	if !o.keepLake {
		defer os.RemoveAll(lakeDir)
	}
	base := []string{"--log-level", o.logLevel, "--source", dbs["src"], "--warehouse", dbs["wh"], "--lake", "file://" + lakeDir}
	fmt.Println("tote run from empty")
	first, err := toteRun(ctx, o.bin, append([]string{"run", "--json"}, base...), nil)
	if err != nil {
		return LatencyReport{}, err
	}
	rep.FirstRunSec = first.Seconds
	fmt.Printf("  %.2fs\n", first.Seconds)

	// Distinct rows for every measurement: a row written twice between
	// two runs keeps only its last version, and the first write's would
	// never arrive.
	var ids []int64
	rows, err := src.Query(ctx, "SELECT sales_order_id FROM sales_order ORDER BY sales_order_id")
	if err != nil {
		return LatencyReport{}, err
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return LatencyReport{}, err
	}
	perRun := latencyRate * int(latencyWindow/time.Second) * 5 / 4
	next := func() ([]int64, error) {
		if len(ids) < perRun {
			return nil, fmt.Errorf("%d sales orders left, fewer than the %d a measurement writes: use a larger scale", len(ids), perRun)
		}
		out := ids[:perRun]
		ids = ids[perRun:]
		return out, nil
	}

	type config struct {
		name string
		args []string
	}
	configs := []config{
		{"xmin (--interval 1s), Iceberg off", []string{"--interval", "1s", "--iceberg-catalog", "off"}},
		{"xmin (--interval 1s), Iceberg on", []string{"--interval", "1s"}},
	}
	if o.logical {
		if err := logicalHandoff(ctx, src, o, base); err != nil {
			return LatencyReport{}, err
		}
		// The first logical run with changes after the handoff costs once
		// what later ones do not: run it before the measurements, and
		// report it on its own.
		batch, err := next()
		if err != nil {
			return LatencyReport{}, err
		}
		if _, err := src.Exec(ctx, "UPDATE sales_order SET last_updated = clock_timestamp() WHERE sales_order_id = ANY($1)", batch[:10]); err != nil {
			return LatencyReport{}, err
		}
		fmt.Println("tote run --capture logical: the first run after the handoff with a change (10 sales orders)")
		r, err := toteRun(ctx, o.bin, append([]string{"run", "--json", "--capture", "logical"}, base...), nil)
		if err != nil {
			return LatencyReport{}, err
		}
		rep.AfterHandoff = &r
		fmt.Printf("  %.2fs, stages %v\n", r.Seconds, r.Stages)
		defer func() {
			_, _ = src.Exec(context.WithoutCancel(ctx), "SELECT pg_drop_replication_slot('tote') FROM pg_replication_slots WHERE slot_name = 'tote'")
		}()
		// Logical first: the lake is in logical mode after the handoff,
		// and an xmin run after it is a full re-read (0016).
		configs = append([]config{
			{"logical (interval 1s by default), Iceberg off", []string{"--capture", "logical", "--iceberg-catalog", "off"}},
			{"logical (interval 1s by default), Iceberg on", []string{"--capture", "logical"}},
		}, configs...)
	}
	for _, c := range configs {
		batch, err := next()
		if err != nil {
			return LatencyReport{}, err
		}
		fmt.Printf("commit-to-warehouse latency, tote serve %s, a writer at %d transactions/s for %s\n", strings.Join(c.args, " "), latencyRate, latencyWindow)
		args := append(append([]string{"serve", "--addr", "127.0.0.1:0"}, base...), c.args...)
		l, err := serveLatency(ctx, o.bin, args, dbs["src"], dbs["wh"], batch)
		if err != nil {
			return LatencyReport{}, fmt.Errorf("%s: %w", c.name, err)
		}
		l.Name, l.Args = c.name, c.args
		fmt.Printf("  median %.0f ms, p99 %.0f ms, max %.0f ms (committed %.1fs in); %d of %d arrived; %d runs, the slowest %.2fs; load average %s\n",
			l.MedianMillis, l.P99Millis, l.MaxMillis, l.SlowestAtSecs, l.Arrived, l.Committed, l.Runs, l.SlowestRunSecs, l.LoadAverage)
		if l.SlowestRunSecs > targetP99.Seconds() {
			fmt.Printf("  the slowest run's stages: %s\n", l.SlowestRunStages)
		}
		rep.Latencies = append(rep.Latencies, l)
	}
	return rep, nil
}

// logicalHandoff creates the publication and switches the lake to
// logical capture with one `tote run --capture logical`.
func logicalHandoff(ctx context.Context, src *pgxpool.Pool, o options, base []string) error {
	var level string
	if err := src.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return err
	}
	if level != "logical" {
		return fmt.Errorf("the source server's wal_level is %s, not logical", level)
	}
	if _, err := src.Exec(ctx, "CREATE PUBLICATION tote FOR TABLE "+strings.Join(totesys.TableNames(), ", ")); err != nil {
		return err
	}
	fmt.Println("tote run --capture logical: the handoff")
	r, err := toteRun(ctx, o.bin, append([]string{"run", "--json", "--capture", "logical"}, base...), nil)
	if err != nil {
		return err
	}
	fmt.Printf("  %.2fs\n", r.Seconds)
	return nil
}

// finishedRunsSQL counts the runs tote serve has finished. A row of the
// history may stand for several quiet runs (its coalesced column, since
// migration 15); the binary measured may be older, whose rows each stand
// for one, hence the column read through to_jsonb.
const finishedRunsSQL = `SELECT coalesce(sum(coalesce((to_jsonb(r) ->> 'coalesced')::bigint, 1)), 0)::bigint
FROM tote.runs r WHERE finished_at IS NOT NULL`

// serveLatency starts `tote serve` with args, waits for its first run,
// then has a writer update each of the sales orders ids once, at
// latencyRate a second, while a poller watches fact_sales_order for their
// new versions.
func serveLatency(ctx context.Context, bin string, args []string, srcURL, whURL string, ids []int64) (Latency, error) {
	wh, err := pgx.Connect(ctx, whURL)
	if err != nil {
		return Latency{}, err
	}
	defer wh.Close(ctx)
	finished := func() (int64, error) {
		var n int64
		err := wh.QueryRow(ctx, finishedRunsSQL).Scan(&n)
		return n, err
	}
	runs0, err := finished()
	if err != nil {
		return Latency{}, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return Latency{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Minute); ; {
		n, err := finished()
		if err != nil {
			return Latency{}, err
		}
		if n > runs0 {
			break
		}
		if time.Now().After(deadline) {
			return Latency{}, errors.New("tote serve did not finish its first run in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	runs1, err := finished()
	if err != nil {
		return Latency{}, err
	}
	var lastRun int64
	if err := wh.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM tote.runs`).Scan(&lastRun); err != nil {
		return Latency{}, err
	}
	var cursor int64
	if err := wh.QueryRow(ctx, `SELECT coalesce(max(sales_record_id), 0) FROM fact_sales_order`).Scan(&cursor); err != nil {
		return Latency{}, err
	}

	// The writer, on a connection of its own, committing synchronously
	// (PostgreSQL's default; the throwaway server's is off).
	w, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return Latency{}, err
	}
	defer w.Close(context.WithoutCancel(ctx))
	if _, err := w.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return Latency{}, err
	}
	committed := make(map[int64]time.Time, len(ids))
	type commit struct {
		id int64
		at time.Time
	}
	commits := make(chan commit, len(ids))
	werr := make(chan error, 1)
	var wrote int
	writeStart := time.Now()
	var wroteFor time.Duration
	go func() {
		defer close(commits)
		start := writeStart
		step := time.Second / latencyRate
		for i, id := range ids {
			due := start.Add(time.Duration(i) * step)
			if due.Sub(start) >= latencyWindow {
				break
			}
			time.Sleep(time.Until(due))
			if _, err := w.Exec(ctx, "UPDATE sales_order SET last_updated = clock_timestamp() WHERE sales_order_id = $1", id); err != nil {
				werr <- fmt.Errorf("writer: %w", err)
				return
			}
			commits <- commit{id, time.Now()}
			wrote = i + 1
		}
		wroteFor = time.Since(start)
		werr <- nil
	}()

	// The poller: new fact rows since the cursor, every latencyPoll.
	seen := map[int64]time.Time{}
	writerDone := false
	var drainBy time.Time
	for {
		for more := true; more; {
			select {
			case c, ok := <-commits:
				if !ok {
					more = false
					break
				}
				committed[c.id] = c.at
			default:
				more = false
			}
		}
		if !writerDone {
			select {
			case err := <-werr:
				if err != nil {
					return Latency{}, err
				}
				writerDone, drainBy = true, time.Now().Add(latencyDrain)
				for c := range commits {
					committed[c.id] = c.at
				}
			default:
			}
		}
		rows, err := wh.Query(ctx, `SELECT sales_record_id, sales_order_id FROM fact_sales_order WHERE sales_record_id > $1`, cursor)
		if err != nil {
			return Latency{}, err
		}
		now := time.Now()
		var rec, id int64
		_, err = pgx.ForEachRow(rows, []any{&rec, &id}, func() error {
			cursor = max(cursor, rec)
			if _, ok := seen[id]; !ok {
				seen[id] = now
			}
			return nil
		})
		if err != nil {
			return Latency{}, err
		}
		arrived := 0
		for id := range committed {
			if _, ok := seen[id]; ok {
				arrived++
			}
		}
		if writerDone && (arrived == len(committed) || now.After(drainBy)) {
			break
		}
		select {
		case <-ctx.Done():
			return Latency{}, ctx.Err()
		case <-time.After(latencyPoll):
		}
	}
	runs2, err := finished()
	if err != nil {
		return Latency{}, err
	}
	l := Latency{Committed: len(committed), Runs: runs2 - runs1, AchievedRate: float64(wrote) / wroteFor.Seconds()}
	err = wh.QueryRow(ctx, `SELECT extract(epoch FROM finished_at - started_at)::float8, coalesce(stages, 'null')
		FROM tote.runs WHERE id > $1 AND finished_at IS NOT NULL ORDER BY finished_at - started_at DESC LIMIT 1`, lastRun).
		Scan(&l.SlowestRunSecs, &l.SlowestRunStages)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Latency{}, err
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		l.LoadAverage = strings.Fields(string(b))[0]
	}
	var ds []time.Duration
	var slowest time.Duration
	for id, at := range committed {
		if s, ok := seen[id]; ok {
			d := s.Sub(at)
			ds = append(ds, d)
			if d > slowest {
				slowest, l.SlowestAtSecs = d, at.Sub(writeStart).Seconds()
			}
		}
	}
	l.Arrived = len(ds)
	if len(ds) == 0 {
		return l, errors.New("no committed change arrived in the warehouse")
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	l.MedianMillis = ms(ds[len(ds)/2])
	l.P99Millis = ms(ds[min(len(ds)-1, len(ds)*99/100)])
	l.MaxMillis = ms(ds[len(ds)-1])
	return l, nil
}

// printLatency prints a table of the latencies measured.
func printLatency(w io.Writer, r LatencyReport) {
	fmt.Fprintf(w, "\ntote bench -latency: scale %d (%d source rows), %d CPUs, PostgreSQL %s; a writer at %d transactions/s for %.0fs, polled every %.0f ms\n\n",
		r.Scale, r.Rows, r.Machine.CPUs, r.Machine.Postgres, r.Rate, r.WindowSecs, r.PollMillis)
	for _, l := range r.Latencies {
		met := "no"
		if l.Arrived == l.Committed && l.P99Millis < float64(targetP99/time.Millisecond) {
			met = "yes"
		}
		fmt.Fprintf(w, "%-48s median %6.0f ms  p99 %6.0f ms  max %6.0f ms  arrived %d/%d  writer %.0f/s  runs %d (slowest %.2fs)  load %s  p99 < %s: %s\n",
			l.Name, l.MedianMillis, l.P99Millis, l.MaxMillis, l.Arrived, l.Committed, l.AchievedRate, l.Runs, l.SlowestRunSecs, l.LoadAverage, targetP99, met)
	}
}
