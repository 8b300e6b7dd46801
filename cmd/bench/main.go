// Command bench measures tote against the physical floor of moving the same
// rows between two PostgreSQL databases, on a throwaway server.
//
// For each scale it is given, in one run, it seeds totesys at that scale
// and seed, then measures:
//
//  1. the floor: every source table copied with plain COPY … TO STDOUT piped
//     into COPY … FROM STDIN of same-shaped tables (with their keys) in a
//     second database, one table after another: what any pipeline must pay;
//  2. `tote run` from empty, per stage, with rows/s, MB/s and peak RSS;
//  3. each stage's own floor: extract against COPY … TO STDOUT of the source
//     tables alone, load against COPY … FROM STDIN of the star rows tote
//     loaded, into an empty warehouse of the same schema;
//  4. the dashboard's summaries built once after it, as a dashboard does
//     (`tote dashboard refresh`, outside the run: issue 18);
//  5. an incremental `tote run` after about 1,000 simulated changes, a
//     tenth of them deletions (-deletions), and the summaries caught up
//     after it; with the bytes of the raw batch's sets of live ids and
//     tombstones (what capturing deletions costs the lake);
//  6. a `tote run` with nothing new;
//  7. `tote serve` while idle: the CPU it uses between runs;
//  8. the dashboard on the loaded warehouse (cmd/dashbench: every view's
//     queries against 200 ms, the first paint against 1 s), unless
//     -dashboard=false; a dashboard that cannot be measured (an older
//     binary's warehouse) is reported and skipped.
//
// With -latency it measures only commit-to-warehouse latency under `tote
// serve` against a writer at 200 transactions a second (latency.go).
//
// Each tote run is the built binary in a child process of its own, so its
// peak RSS (wait4's ru_maxrss) is tote's alone, not the seeding's. Results
// are printed as a table per scale, then a line per scale to compare them,
// and written as JSON under cmd/bench/results/.
//
//	go run ./cmd/bench -tote bin/tote -scales "20 100"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/warehouse"
)

// Targets the issues set, checked in the report.
const (
	targetRatio       = 1.1 // at scales 20, 100 and 200 (issue 18)
	targetRSSMiB      = 200 // at every scale
	targetIncremental = 300 * time.Millisecond
	targetNoChange    = 150 * time.Millisecond
	idleWindow        = 20 * time.Second
)

// Report is what a bench run measured; it is written as JSON.
type Report struct {
	When     time.Time `json:"when"`
	Scale    int       `json:"scale"`
	Seed     uint64    `json:"seed"`
	Changes  int       `json:"changes"`
	Machine  Machine   `json:"machine"`
	Rows     int64     `json:"source_rows"`
	SeedSecs float64   `json:"seed_seconds"`
	Floor    Floor     `json:"floor"`
	Full     Run       `json:"full"`
	Incr     Run       `json:"incremental"`
	NoChange Run       `json:"no_change"`
	Ratio    float64   `json:"full_over_floor"`
	// RefreshFull and RefreshIncr are the dashboard's summaries catching
	// up (tote dashboard refresh) after the full run and after the
	// incremental one: outside the runs since issue 18.
	RefreshFull Refresh `json:"refresh_after_full"`
	RefreshIncr Refresh `json:"refresh_after_incremental"`
	// StageFloors are each stage's own floor: extract's COPY TO of the
	// source tables, load's COPY FROM of the star rows.
	StageFloors map[string]float64 `json:"stage_floor_seconds"`
	// ScanFloor is a pass over every source table's rows (a count with a
	// filter on xmin no row meets): the least an extraction that finds
	// changes by xmin pays, however few there are.
	ScanFloor float64 `json:"scan_floor_seconds"`
	// IdleCPU is the CPU time `tote serve` used over IdleSeconds between runs.
	IdleCPUMillis float64  `json:"idle_cpu_ms"`
	IdleSeconds   float64  `json:"idle_seconds"`
	Targets       []Target `json:"targets"`
	ToteBuild     string   `json:"tote_version"`

	// LoadAverage is /proc/loadavg's one-minute figure after the
	// incremental run: how busy the machine was.
	LoadAverage string `json:"load_average,omitempty"`

	// Deletions is the share of the changes that delete.
	Deletions float64 `json:"deletions"`

	// Logical is the same lake and warehouse switched to logical capture
	// (-capture logical), when measured.
	Logical *LogicalRuns `json:"logical,omitempty"`
}

// LogicalRuns are the runs with --capture logical, after the xmin ones.
type LogicalRuns struct {
	// Handoff is the run that creates the slot and reads a full batch in
	// its snapshot (adding nothing the warehouse holds).
	Handoff  Run `json:"handoff"`
	Incr     Run `json:"incremental"`
	NoChange Run `json:"no_change"`
	// WALRetainedIdle is the WAL the slot holds back (current position
	// less its restart_lsn) after a minute of no change and a drain.
	WALRetainedIdle int64 `json:"wal_retained_idle_bytes"`
}

// Machine describes where the bench ran.
type Machine struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	MemMiB   int64  `json:"mem_mib,omitempty"`
	Postgres string `json:"postgres"`
	Go       string `json:"go"`
}

// Floor is the plain COPY-to-COPY baseline.
type Floor struct {
	Seconds float64      `json:"seconds"`
	Rows    int64        `json:"rows"`
	Bytes   int64        `json:"bytes"` // COPY text piped
	Tables  []FloorTable `json:"tables"`
}

// FloorTable is one table of the floor.
type FloorTable struct {
	Table   string  `json:"table"`
	Rows    int64   `json:"rows"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// Run is one `tote run` child process.
type Run struct {
	Seconds     float64            `json:"seconds"` // wall clock of the child, start to exit
	PassSeconds float64            `json:"pass_seconds"`
	Stages      map[string]float64 `json:"stage_seconds"`
	Rows        int64              `json:"rows"`         // extracted
	SourceBytes int64              `json:"source_bytes"` // read from the source
	RowsPerSec  float64            `json:"rows_per_second"`
	MBPerSec    float64            `json:"mb_per_second"`
	PeakRSSMiB  float64            `json:"peak_rss_mib"`

	// Deleted counts the deletions extracted; IDSetBytes and
	// DeletedBytes are the sizes of the raw batch's sets of live ids and
	// tombstones (tote_ids, tote_deleted).
	Deleted      int64 `json:"deleted"`
	IDSetBytes   int64 `json:"id_set_bytes"`
	DeletedBytes int64 `json:"deleted_bytes"`
}

// Refresh is one `tote dashboard refresh` child process.
type Refresh struct {
	Seconds    float64 `json:"seconds"` // wall clock of the child, start to exit
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var (
		scale     = flag.Int("scale", 20, "seed scale (1 ≈ the real system, ~50,000 rows)")
		scales    = flag.String("scales", "", "several scales, measured one after another (\"20 100 400\"); overrides -scale")
		seedN     = flag.Uint64("seed", 1, "seed for the generated rows and the simulated changes")
		changes   = flag.Int("changes", 1000, "simulated changes before the incremental run")
		deletions = flag.Float64("deletions", 0.1, "the share of the simulated changes that delete")
		toteBin   = flag.String("tote", "bin/tote", "the tote binary to measure")
		outDir    = flag.String("out", "cmd/bench/results", "directory for the JSON results")
		adminURL  = flag.String("database", os.Getenv("TOTE_BENCH_DATABASE_URL"), "server `URL` to create the source database on (env TOTE_BENCH_DATABASE_URL; default: a throwaway server)")
		whURL     = flag.String("warehouse-database", os.Getenv("TOTE_BENCH_WAREHOUSE_URL"), "server `URL` to create the warehouse databases on (env TOTE_BENCH_WAREHOUSE_URL; default: -database if given, else a second throwaway server)")
		cpuprof   = flag.String("cpuprofile", "", "pass to the full run: write its CPU profile to `FILE`")
		memprof   = flag.String("memprofile", "", "pass to the full run: write its heap profile to `FILE`")
		keepLake  = flag.Bool("keep-lake", false, "keep the lake directory")
		loadFloor = flag.Bool("load-floor", true, "measure the load's floor (COPY of the star rows into a warehouse with its keys and triggers: minutes at scale 100)")
		logLevel  = flag.String("log-level", "warn", "log level")
		debugLogs = flag.Bool("v", false, "log progress")
		dashboard = flag.Bool("dashboard", true, "measure the dashboard on each loaded warehouse (cmd/dashbench)")
		latency   = flag.Bool("latency", false, "measure only commit-to-warehouse latency under tote serve, a writer at 200 transactions/s (with -capture logical, in both modes)")
		capture   = flag.String("capture", "xmin", "xmin, or logical: also switch each lake to logical capture and measure its incremental and no-change runs (the throwaway source server gets wal_level=logical)")
	)
	flag.Parse()
	list := []int{*scale}
	if *scales != "" {
		list = nil
		for _, f := range strings.Fields(*scales) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("-scales: %q is not a scale", f)
			}
			list = append(list, n)
		}
	}
	for _, n := range list {
		if err := seed.CheckScale(n); err != nil {
			return err
		}
	}
	bin, err := filepath.Abs(*toteBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no tote binary (build it with make build): %w", err)
	}
	lvl := slog.LevelWarn
	if *debugLogs {
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	// The source and the warehouse on servers of their own, as they are in
	// production: on one server, the warehouse's own transactions would
	// look like activity on the source to a no-change extraction.
	admin, whAdmin := *adminURL, *whURL
	if admin != "" && whAdmin == "" {
		whAdmin = admin
	}
	if *capture != "xmin" && *capture != "logical" {
		return fmt.Errorf("-capture %q: want xmin or logical", *capture)
	}
	for _, u := range []*string{&admin, &whAdmin} {
		if *u != "" {
			continue
		}
		fmt.Println("starting a throwaway PostgreSQL server")
		var settings map[string]string
		if *capture == "logical" && u == &admin {
			settings = map[string]string{"wal_level": "logical"}
		}
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log, Settings: settings})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		*u = cluster.URL()
	}
	o := options{bin: bin, seed: *seedN, changes: *changes, deletions: *deletions, logLevel: *logLevel, cpuprof: *cpuprof,
		memprof: *memprof, keepLake: *keepLake, loadFloor: *loadFloor, dashboard: *dashboard, log: log, logical: *capture == "logical"}
	if *latency {
		for _, n := range list {
			rep, err := measureLatency(ctx, admin, whAdmin, n, o)
			if err != nil {
				return fmt.Errorf("scale %d: %w", n, err)
			}
			printLatency(os.Stdout, rep)
			path, err := saveJSON(*outDir, fmt.Sprintf("latency-scale%d-%s.json", rep.Scale, rep.When.Format("20060102T150405Z")), rep)
			if err != nil {
				return err
			}
			fmt.Printf("results: %s\n", path)
		}
		return nil
	}
	var reps []Report
	for _, n := range list {
		rep, err := measure(ctx, admin, whAdmin, n, o)
		if err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
		printReport(os.Stdout, rep)
		path, err := save(*outDir, rep)
		if err != nil {
			return err
		}
		fmt.Printf("results: %s\n", path)
		reps = append(reps, rep)
	}
	if len(reps) > 1 {
		printScales(os.Stdout, reps)
	}
	return nil
}

// options are the bench's settings for one scale.
type options struct {
	bin              string
	seed             uint64
	changes          int
	deletions        float64
	logLevel         string
	cpuprof, memprof string
	keepLake         bool
	loadFloor        bool
	dashboard        bool
	logical          bool
	log              *slog.Logger
}

// measure seeds a source at scale on the server at admin and measures the
// floors and tote's runs from it into databases on the server at whAdmin.
func measure(ctx context.Context, admin, whAdmin string, scale int, o options) (Report, error) {
	bin, log := o.bin, o.log
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), scale)
	dbs := map[string]string{}
	for _, name := range []string{"src", "floor", "wh", "whfloor"} {
		server := whAdmin
		if name == "src" {
			server = admin
		}
		u, drop, err := createDatabase(ctx, server, "tote_bench_"+name+suffix)
		if err != nil {
			return Report{}, err
		}
		defer drop()
		dbs[name] = u
	}

	rep := Report{When: time.Now().UTC(), Scale: scale, Seed: o.seed, Changes: o.changes, Deletions: o.deletions, Machine: machine(),
		StageFloors: map[string]float64{}}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		rep.ToteBuild = strings.TrimSpace(string(out))
	}
	src, err := postgres.Open(ctx, "source", dbs["src"])
	if err != nil {
		return Report{}, err
	}
	defer src.Close()
	if err := src.QueryRow(ctx, "SHOW server_version").Scan(&rep.Machine.Postgres); err != nil {
		return Report{}, err
	}

	fmt.Printf("seeding totesys at scale %d, seed %d\n", scale, o.seed)
	sr, err := seed.Generate(ctx, src, seed.Options{Scale: scale, Seed: o.seed, Logger: log})
	if err != nil {
		return Report{}, err
	}
	rep.Rows, rep.SeedSecs = sr.Rows(), sr.Elapsed.Seconds()
	fmt.Printf("  %d rows in %.1fs\n", rep.Rows, rep.SeedSecs)
	// Settle the server after the seed, as the floor and tote both read
	// the same freshly written tables.
	if _, err := src.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return Report{}, fmt.Errorf("vacuum source: %w", err)
	}
	checkpoint := func() error {
		if _, err := src.Exec(ctx, "CHECKPOINT"); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		return nil
	}
	if err := checkpoint(); err != nil {
		return Report{}, err
	}

	fmt.Println("floor: COPY TO STDOUT | COPY FROM STDIN, table by table")
	if rep.Floor, err = floor(ctx, dbs["src"], dbs["floor"]); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.Floor.Seconds)
	fmt.Println("extract's floor: COPY TO STDOUT of the source tables")
	if rep.StageFloors[string(tote.Extract)], err = copyOutFloor(ctx, dbs["src"]); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.StageFloors[string(tote.Extract)])
	if err := checkpoint(); err != nil {
		return Report{}, err
	}

	lakeDir, err := os.MkdirTemp("", "tote-bench-lake-")
	if err != nil {
		return Report{}, err
	}
	if !o.keepLake {
		defer os.RemoveAll(lakeDir)
	}
	args := []string{"run", "--json", "--log-level", o.logLevel,
		"--source", dbs["src"], "--warehouse", dbs["wh"], "--lake", "file://" + lakeDir}

	fmt.Println("tote run from empty")
	var prof []string
	if o.cpuprof != "" {
		prof = append(prof, "TOTE_CPUPROFILE="+o.cpuprof)
	}
	if o.memprof != "" {
		prof = append(prof, "TOTE_MEMPROFILE="+o.memprof)
	}
	if rep.Full, err = toteRun(ctx, bin, args, prof); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.Full.Seconds)

	if o.loadFloor {
		fmt.Println("load's floor: COPY FROM STDIN of the star rows into an empty warehouse")
		if rep.StageFloors[string(tote.Load)], err = copyInFloor(ctx, dbs["wh"], dbs["whfloor"]); err != nil {
			return Report{}, err
		}
		fmt.Printf("  %.2fs\n", rep.StageFloors[string(tote.Load)])
	}

	fmt.Println("scan floor: a pass over every source table's rows, as finding new versions by xmin takes")
	if rep.ScanFloor, err = scanFloor(ctx, dbs["src"]); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.ScanFloor)

	refreshArgs := []string{"dashboard", "refresh", "--log-level", o.logLevel, "--warehouse", dbs["wh"]}
	fmt.Println("the dashboard's summaries built after the full run (tote dashboard refresh)")
	if rep.RefreshFull, err = toteRefresh(ctx, bin, refreshArgs); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.RefreshFull.Seconds)

	fmt.Printf("simulating %d changes, a share of %.2f of them deletions\n", o.changes, o.deletions)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 1e6, Events: o.changes, Seed: o.seed, Deletions: o.deletions, Logger: log}); err != nil {
		return Report{}, err
	}
	fmt.Println("tote run, incremental")
	if rep.Incr, err = toteRun(ctx, bin, args, nil); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.Incr.Seconds)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAverage = strings.Fields(string(b))[0]
	}
	fmt.Println("the dashboard's summaries caught up after the incremental run")
	if rep.RefreshIncr, err = toteRefresh(ctx, bin, refreshArgs); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.RefreshIncr.Seconds)
	fmt.Println("tote run, nothing new")
	if rep.NoChange, err = toteRun(ctx, bin, args, nil); err != nil {
		return Report{}, err
	}
	fmt.Printf("  %.2fs\n", rep.NoChange.Seconds)

	fmt.Printf("tote serve, idle for %s\n", idleWindow)
	serveArgs := append([]string{"serve", "--interval", "1h", "--addr", "127.0.0.1:0"}, args[2:]...)
	if rep.IdleCPUMillis, err = idleCPU(ctx, bin, serveArgs, dbs["wh"]); err != nil {
		return Report{}, err
	}
	rep.IdleSeconds = idleWindow.Seconds()
	fmt.Printf("  %.0f ms of CPU\n", rep.IdleCPUMillis)
	if o.dashboard {
		fmt.Println("the dashboard on this warehouse (cmd/dashbench)")
		if err := dashbench(ctx, dbs["wh"], "file://"+lakeDir); err != nil {
			fmt.Printf("  not measured: %v\n", err)
		}
	}

	if o.logical {
		if rep.Logical, err = measureLogical(ctx, src, bin, args, o); err != nil {
			return Report{}, fmt.Errorf("logical capture: %w", err)
		}
	}

	if rep.Floor.Seconds > 0 {
		rep.Ratio = rep.Full.Seconds / rep.Floor.Seconds
	}
	peak := max(rep.Full.PeakRSSMiB, rep.Incr.PeakRSSMiB, rep.NoChange.PeakRSSMiB)
	rep.Targets = []Target{
		{"full load / floor", fmt.Sprintf("≤ %.1f× (at scales 20, 100 and 200)", targetRatio), fmt.Sprintf("%.2f×", rep.Ratio), rep.Ratio <= targetRatio},
		{"peak RSS", fmt.Sprintf("< %d MiB at every scale", targetRSSMiB), fmt.Sprintf("%.0f MiB", peak), peak < targetRSSMiB},
		{fmt.Sprintf("incremental (%d changes)", o.changes), fmt.Sprintf("< %s (at scale 100)", targetIncremental), fmt.Sprintf("%.2fs", rep.Incr.Seconds), rep.Incr.Seconds < targetIncremental.Seconds()},
		{"Iceberg publish, full run", "≤ 10% of the run without it", fmt.Sprintf("%.1f%%", 100*publishShare(rep.Full)), publishShare(rep.Full) <= 0.10},
		{"Iceberg publish, incremental run", "≤ 50 ms", fmt.Sprintf("%.0f ms", 1000*rep.Incr.Stages[string(tote.Publish)]), rep.Incr.Stages[string(tote.Publish)] <= 0.050},
		{"no-change run", fmt.Sprintf("< %s", targetNoChange), fmt.Sprintf("%.2fs", rep.NoChange.Seconds), rep.NoChange.Seconds < targetNoChange.Seconds()},
		{"idle daemon", "no measurable CPU", fmt.Sprintf("%.0f ms in %s", rep.IdleCPUMillis, idleWindow), rep.IdleCPUMillis < 50},
	}
	return rep, nil
}

// measureLogical switches the lake to logical capture (a publication of
// the totesys tables, then a handoff run) and measures an incremental run
// after the same number of changes as xmin's, a no-change run, and the WAL
// the slot holds after an idle minute.
func measureLogical(ctx context.Context, src *pgxpool.Pool, bin string, args []string, o options) (*LogicalRuns, error) {
	var level string
	if err := src.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, err
	}
	if level != "logical" {
		return nil, fmt.Errorf("the source server's wal_level is %s, not logical", level)
	}
	if _, err := src.Exec(ctx, "CREATE PUBLICATION tote FOR TABLE "+strings.Join(totesys.TableNames(), ", ")); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = src.Exec(context.WithoutCancel(ctx), "SELECT pg_drop_replication_slot('tote') FROM pg_replication_slots WHERE slot_name = 'tote'")
	}()
	largs := append(slices.Clone(args), "--capture", "logical")
	var r LogicalRuns
	var err error
	fmt.Println("tote run --capture logical: the handoff (a full batch in the slot's snapshot)")
	if r.Handoff, err = toteRun(ctx, bin, largs, nil); err != nil {
		return nil, err
	}
	fmt.Printf("  %.2fs\n", r.Handoff.Seconds)
	fmt.Printf("simulating %d changes, a share of %.2f of them deletions\n", o.changes, o.deletions)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 1e6, Events: o.changes, Seed: o.seed + 1, Deletions: o.deletions, Logger: o.log}); err != nil {
		return nil, err
	}
	// The throwaway server commits asynchronously: a drain takes what
	// was written when it starts, so write every change first, as
	// synchronous commits (PostgreSQL's default) would have.
	if _, err := src.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, err
	}
	fmt.Println("tote run --capture logical, incremental")
	if r.Incr, err = toteRun(ctx, bin, largs, nil); err != nil {
		return nil, err
	}
	fmt.Printf("  %.2fs\n", r.Incr.Seconds)
	fmt.Println("tote run --capture logical, nothing new")
	if r.NoChange, err = toteRun(ctx, bin, largs, nil); err != nil {
		return nil, err
	}
	fmt.Printf("  %.2fs\n", r.NoChange.Seconds)
	fmt.Println("WAL the slot holds after an idle minute and a drain")
	time.Sleep(time.Minute)
	if _, err := toteRun(ctx, bin, largs, nil); err != nil {
		return nil, err
	}
	if err := src.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'tote'`).Scan(&r.WALRetainedIdle); err != nil {
		return nil, err
	}
	fmt.Printf("  %d bytes\n", r.WALRetainedIdle)
	return &r, nil
}

// dashbench runs cmd/dashbench against the warehouse at whURL, its report
// on standard output. The first paint needs Chromium and web/e2e's
// packages: without them only the queries are measured.
func dashbench(ctx context.Context, whURL, lakeURL string) error {
	args := []string{"run", "./cmd/dashbench", "-warehouse", whURL, "-lake", lakeURL, "-runs", "3"}
	if _, err := os.Stat(filepath.Join("web", "e2e", "node_modules", "playwright-core")); err != nil {
		fmt.Println("  (no web/e2e/node_modules: queries only; npm ci there for the first paint)")
		args = append(args, "-paint=false")
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// toteRefresh runs `tote dashboard refresh` in a child process and times it.
func toteRefresh(ctx context.Context, bin string, args []string) (Refresh, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return Refresh{}, fmt.Errorf("tote dashboard refresh: %w", err)
	}
	r := Refresh{Seconds: time.Since(start).Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024
	}
	return r, nil
}

// save writes rep as JSON under dir and returns the file's path.
func save(dir string, rep Report) (string, error) {
	return saveJSON(dir, fmt.Sprintf("scale%d-%s.json", rep.Scale, rep.When.Format("20060102T150405Z")), rep)
}

// saveJSON writes v as JSON to dir/name and returns the file's path.
func saveJSON(dir, name string, v any) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// createDatabase creates database name on the server at admin and returns
// its URL and a function that drops it.
func createDatabase(ctx context.Context, admin, name string) (string, func(), error) {
	u, err := postgres.CreateDatabase(ctx, admin, name)
	if err != nil {
		return "", nil, err
	}
	return u, func() { _ = postgres.DropDatabase(context.WithoutCancel(ctx), admin, name) }, nil
}

// floor copies every source table into same-shaped, keyed tables of the
// floor database, COPY TO STDOUT piped into COPY FROM STDIN, and times it.
func floor(ctx context.Context, srcURL, dstURL string) (Floor, error) {
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return Floor{}, err
	}
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		return Floor{}, err
	}
	defer dst.Close(ctx)
	if err := totesys.CreateTables(ctx, dst); err != nil {
		return Floor{}, err
	}
	if err := totesys.AddKeys(ctx, dst); err != nil {
		return Floor{}, err
	}
	var f Floor
	start := time.Now()
	for _, name := range totesys.TableNames() {
		t0 := time.Now()
		id := pgx.Identifier{name}.Sanitize()
		pr, pw := io.Pipe()
		cr := &countingReader{r: pr}
		errc := make(chan error, 1)
		go func() {
			_, err := src.PgConn().CopyTo(ctx, pw, "COPY "+id+" TO STDOUT")
			pw.CloseWithError(err)
			errc <- err
		}()
		tag, err := dst.PgConn().CopyFrom(ctx, cr, "COPY "+id+" FROM STDIN")
		pr.CloseWithError(errors.New("copy into the floor stopped"))
		if rerr := <-errc; rerr != nil {
			return Floor{}, fmt.Errorf("floor: copy %s out: %w", name, rerr)
		}
		if err != nil {
			return Floor{}, fmt.Errorf("floor: copy %s in: %w", name, err)
		}
		ft := FloorTable{Table: name, Rows: tag.RowsAffected(), Bytes: cr.n, Seconds: time.Since(t0).Seconds()}
		f.Tables = append(f.Tables, ft)
		f.Rows += ft.Rows
		f.Bytes += ft.Bytes
	}
	f.Seconds = time.Since(start).Seconds()
	return f, nil
}

// copyOutFloor times COPY … TO STDOUT of every source table, the output
// discarded: what any extraction must pay to read them.
func copyOutFloor(ctx context.Context, srcURL string) (float64, error) {
	return eachTable(ctx, srcURL, func(conn *pgx.Conn, table string) error {
		_, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY "+table+" TO STDOUT")
		return err
	})
}

// scanFloor times a pass over every source table's rows, as ScanFloor
// says, one table after another.
func scanFloor(ctx context.Context, srcURL string) (float64, error) {
	return eachTable(ctx, srcURL, func(conn *pgx.Conn, table string) error {
		var n int64
		return conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE xmin = '1'::xid").Scan(&n)
	})
}

// eachTable times fn on every source table (named quoted) of the database
// at srcURL, one after another.
func eachTable(ctx context.Context, srcURL string, fn func(conn *pgx.Conn, table string) error) (float64, error) {
	conn, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	start := time.Now()
	for _, name := range totesys.TableNames() {
		if err := fn(conn, pgx.Identifier{name}.Sanitize()); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return time.Since(start).Seconds(), nil
}

// copyInFloor times COPY … FROM STDIN, from files, of every star table's
// rows in the warehouse at whURL (surrogate keys included) into an empty
// warehouse of the same schema at floorURL: what any load of those rows
// must pay. Writing the files is not timed.
func copyInFloor(ctx context.Context, whURL, floorURL string) (float64, error) {
	wh, err := warehouse.Open(ctx, floorURL, nil)
	if err != nil {
		return 0, err
	}
	err = wh.Migrate(ctx)
	wh.Close()
	if err != nil {
		return 0, err
	}
	from, err := pgx.Connect(ctx, whURL)
	if err != nil {
		return 0, err
	}
	defer from.Close(ctx)
	to, err := pgx.Connect(ctx, floorURL)
	if err != nil {
		return 0, err
	}
	defer to.Close(ctx)
	dir, err := os.MkdirTemp("", "tote-bench-star-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	var took time.Duration
	for _, t := range star.Tables {
		id := pgx.Identifier{t.Name}.Sanitize()
		f, err := os.Create(filepath.Join(dir, t.Name))
		if err != nil {
			return 0, err
		}
		if _, err := from.PgConn().CopyTo(ctx, f, "COPY "+id+" TO STDOUT"); err != nil {
			f.Close()
			return 0, fmt.Errorf("copy %s out: %w", t.Name, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return 0, err
		}
		start := time.Now()
		_, err = to.PgConn().CopyFrom(ctx, f, "COPY "+id+" FROM STDIN")
		took += time.Since(start)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("copy %s in: %w", t.Name, err)
		}
	}
	return took.Seconds(), nil
}

// idleCPU starts `tote serve` with args, waits for its first run to finish
// (in tote.runs at whURL), and returns the CPU time, in milliseconds, it
// uses over idleWindow after that.
func idleCPU(ctx context.Context, bin string, args []string, whURL string) (float64, error) {
	db, err := pgx.Connect(ctx, whURL)
	if err != nil {
		return 0, err
	}
	defer db.Close(ctx)
	var before int64
	if err := db.QueryRow(ctx, finishedRunsSQL).Scan(&before); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Minute); ; {
		var n int64
		if err := db.QueryRow(ctx, finishedRunsSQL).Scan(&n); err != nil {
			return 0, err
		}
		if n > before {
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("tote serve did not finish its first run in 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // the run's last writes and logs
	c0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(idleWindow):
	}
	c1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Millisecond), nil
}

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 a second).
	_, rest, ok := bytes.Cut(b, []byte(") "))
	fields := strings.Fields(string(rest))
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	user, err1 := strconv.ParseInt(fields[11], 10, 64)
	sys, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(user+sys) * 10 * time.Millisecond, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// toteRun runs `tote run --json` in a child process and measures it.
func toteRun(ctx context.Context, bin string, args, env []string) (Run, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return Run{}, fmt.Errorf("tote run: %w", err)
	}
	var res pipeline.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return Run{}, fmt.Errorf("tote run printed no JSON result: %w", err)
	}
	r := Run{Seconds: wall.Seconds(), PassSeconds: res.Elapsed.Seconds(), Stages: map[string]float64{}}
	for _, s := range res.Stages {
		r.Stages[string(s.Stage)] = s.Elapsed.Seconds()
	}
	if res.Extract != nil {
		r.Rows, r.SourceBytes = res.Extract.Rows(), res.Extract.SourceBytes()
		r.Deleted, r.IDSetBytes, r.DeletedBytes = res.Extract.Deleted(), res.Extract.IDSetBytes, res.Extract.DeletedBytes
	}
	if wall > 0 {
		r.RowsPerSec = float64(r.Rows) / wall.Seconds()
		r.MBPerSec = float64(r.SourceBytes) / 1e6 / wall.Seconds()
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return r, nil
}

// publishShare is what publishing to the Iceberg tables added to a run:
// its publish stage over the rest of the run (the run without it).
func publishShare(r Run) float64 {
	p := r.Stages[string(tote.Publish)]
	if r.Seconds-p <= 0 {
		return 0
	}
	return p / (r.Seconds - p)
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "\ntote bench: scale %d (%d source rows), seed %d, %d CPUs, PostgreSQL %s\n\n",
		r.Scale, r.Rows, r.Seed, r.Machine.CPUs, r.Machine.Postgres)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tseconds\textract\ttransform\tload\trows\trows/s\tMB/s\tpeak RSS MiB\t× floor\t")
	fmt.Fprintf(tw, "floor (COPY→COPY)\t%.2f\t\t\t\t%d\t%.0f\t%.1f\t\t1.00\t\n",
		r.Floor.Seconds, r.Floor.Rows, float64(r.Floor.Rows)/r.Floor.Seconds, float64(r.Floor.Bytes)/1e6/r.Floor.Seconds)
	for _, x := range []struct {
		name string
		run  Run
	}{{"tote run, from empty", r.Full}, {"tote run, incremental", r.Incr}, {"tote run, no change", r.NoChange}} {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.1f\t%.0f\t%.2f\t\n", x.name, x.run.Seconds,
			x.run.Stages[string(tote.Extract)], x.run.Stages[string(tote.Transform)], x.run.Stages[string(tote.Load)],
			x.run.Rows, x.run.RowsPerSec, x.run.MBPerSec, x.run.PeakRSSMiB, x.run.Seconds/r.Floor.Seconds)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nfull load / floor: %.2f×\n", r.Ratio)
	fmt.Fprintf(w, "per stage, against its own floor:")
	for _, st := range []tote.Stage{tote.Extract, tote.Load} {
		if f := r.StageFloors[string(st)]; f > 0 {
			fmt.Fprintf(w, "  %s %.2fs / %.2fs = %.2f×", st, r.Full.Stages[string(st)], f, r.Full.Stages[string(st)]/f)
		}
	}
	fmt.Fprintf(w, "  (transform has none: it is tote's own work)\n")
	fmt.Fprintf(w, "incremental extract %.2fs against the scan floor %.2fs = %.2f×\n",
		r.Incr.Stages[string(tote.Extract)], r.ScanFloor, r.Incr.Stages[string(tote.Extract)]/r.ScanFloor)
	fmt.Fprintf(w, "deletions: the incremental run carried %d; the lake's sets of live ids %d bytes (first run, every table), "+
		"%d bytes (incremental, the tables that changed), its tombstones %d bytes\n",
		r.Incr.Deleted, r.Full.IDSetBytes, r.Incr.IDSetBytes, r.Incr.DeletedBytes)
	fmt.Fprintf(w, "dashboard summaries caught up (tote dashboard refresh): after the full run %.2fs, after the incremental run %.2fs\n",
		r.RefreshFull.Seconds, r.RefreshIncr.Seconds)
	fmt.Fprintf(w, "Iceberg publish (SQL catalog, lake directory): full run %.2fs = %.1f%% of the run without it; incremental %.0f ms = %.1f%%; no change %.0f ms (load average %s)\n",
		r.Full.Stages[string(tote.Publish)], 100*publishShare(r.Full), 1000*r.Incr.Stages[string(tote.Publish)], 100*publishShare(r.Incr),
		1000*r.NoChange.Stages[string(tote.Publish)], r.LoadAverage)
	fmt.Fprintf(w, "idle daemon: %.0f ms of CPU in %.0fs\n", r.IdleCPUMillis, r.IdleSeconds)
	if l := r.Logical; l != nil {
		fmt.Fprintf(w, "logical capture: handoff %.2fs; incremental %.2fs (extract %.2fs) against xmin's %.2fs (extract %.2fs) = %.2f×; "+
			"no change %.2fs against %.2fs; WAL held while idle %d bytes\n",
			l.Handoff.Seconds, l.Incr.Seconds, l.Incr.Stages[string(tote.Extract)], r.Incr.Seconds, r.Incr.Stages[string(tote.Extract)],
			l.Incr.Seconds/r.Incr.Seconds, l.NoChange.Seconds, r.NoChange.Seconds, l.WALRetainedIdle)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tgot\tmet")
	for _, t := range r.Targets {
		met := "no"
		if t.Met {
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Got, met)
	}
	_ = tw.Flush()
}

// printScales prints a line per scale, so that what grows with the data
// shows at a glance.
func printScales(w io.Writer, reps []Report) {
	fmt.Fprintf(w, "\nby scale\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scale\tsource rows\tfloor s\ttote run s\t× floor\textract ×\tload ×\tpeak RSS MiB\tincremental s\tno change s\trefresh full s\trefresh incr s\t")
	for _, r := range reps {
		ratio := func(st tote.Stage) string { // "-" where the floor was not measured (-load-floor=false)
			if f := r.StageFloors[string(st)]; f > 0 {
				return fmt.Sprintf("%.2f", r.Full.Stages[string(st)]/f)
			}
			return "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.2f\t%.2f\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", r.Scale, r.Rows, r.Floor.Seconds,
			r.Full.Seconds, r.Ratio, ratio(tote.Extract), ratio(tote.Load),
			max(r.Full.PeakRSSMiB, r.Incr.PeakRSSMiB, r.NoChange.PeakRSSMiB), r.Incr.Seconds, r.NoChange.Seconds,
			r.RefreshFull.Seconds, r.RefreshIncr.Seconds)
	}
	_ = tw.Flush()
}

// machine describes this machine.
func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemMiB = kb / 1024
		}
	}
	return m
}
