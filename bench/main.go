// Command bench measures tote against the physical floor of moving the same
// rows between two PostgreSQL databases, on a throwaway server.
//
// In one run it seeds totesys at a chosen scale and seed, then measures:
//
//  1. the floor: every source table copied with plain COPY … TO STDOUT piped
//     into COPY … FROM STDIN of same-shaped tables (with their keys) in a
//     second database, one table after another: what any pipeline must pay;
//  2. `tote run` from empty, per stage, with rows/s, MB/s and peak RSS;
//  3. an incremental `tote run` after about 1,000 simulated changes;
//  4. a `tote run` with nothing new.
//
// Each tote run is the built binary in a child process of its own, so its
// peak RSS (wait4's ru_maxrss) is tote's alone, not the seeding's. Results
// are printed as a table and written as JSON under bench/results/.
//
//	go run ./bench -tote bin/tote -scale 20
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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/seed"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/totesys"
)

// Targets the issue sets, checked in the report.
const (
	targetRatio       = 2.5
	targetRSSMiB      = 300
	targetIncremental = 2 * time.Second
	targetNoChange    = 1 * time.Second
)

// Report is what a bench run measured; it is written as JSON.
type Report struct {
	When      time.Time `json:"when"`
	Scale     int       `json:"scale"`
	Seed      uint64    `json:"seed"`
	Changes   int       `json:"changes"`
	Machine   Machine   `json:"machine"`
	Rows      int64     `json:"source_rows"`
	SeedSecs  float64   `json:"seed_seconds"`
	Floor     Floor     `json:"floor"`
	Full      Run       `json:"full"`
	Incr      Run       `json:"incremental"`
	NoChange  Run       `json:"no_change"`
	Ratio     float64   `json:"full_over_floor"`
	Targets   []Target  `json:"targets"`
	ToteBuild string    `json:"tote_version"`
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
		seedN     = flag.Uint64("seed", 1, "seed for the generated rows and the simulated changes")
		changes   = flag.Int("changes", 1000, "simulated changes before the incremental run")
		toteBin   = flag.String("tote", "bin/tote", "the tote binary to measure")
		outDir    = flag.String("out", "bench/results", "directory for the JSON results")
		adminURL  = flag.String("database", os.Getenv("TOTE_BENCH_DATABASE_URL"), "server `URL` to create the bench databases on (env TOTE_BENCH_DATABASE_URL; default: a throwaway server)")
		cpuprof   = flag.String("cpuprofile", "", "pass to the full run: write its CPU profile to `FILE`")
		memprof   = flag.String("memprofile", "", "pass to the full run: write its heap profile to `FILE`")
		keepLake  = flag.Bool("keep-lake", false, "keep the lake directory")
		logLevel  = flag.String("log-level", "warn", "log level")
		debugLogs = flag.Bool("v", false, "log progress")
	)
	flag.Parse()
	if err := seed.CheckScale(*scale); err != nil {
		return err
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

	admin := *adminURL
	if admin == "" {
		fmt.Println("starting a throwaway PostgreSQL server")
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log})
		if err != nil {
			return err
		}
		defer cluster.Stop()
		admin = cluster.URL()
	}
	suffix := fmt.Sprintf("_%d", os.Getpid())
	dbs := map[string]string{}
	for _, name := range []string{"src", "floor", "wh"} {
		u, drop, err := createDatabase(ctx, admin, "tote_bench_"+name+suffix)
		if err != nil {
			return err
		}
		defer drop()
		dbs[name] = u
	}

	rep := Report{When: time.Now().UTC(), Scale: *scale, Seed: *seedN, Changes: *changes, Machine: machine()}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		rep.ToteBuild = strings.TrimSpace(string(out))
	}
	src, err := postgres.Open(ctx, "source", dbs["src"])
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.QueryRow(ctx, "SHOW server_version").Scan(&rep.Machine.Postgres); err != nil {
		return err
	}

	fmt.Printf("seeding totesys at scale %d, seed %d\n", *scale, *seedN)
	sr, err := seed.Generate(ctx, src, seed.Options{Scale: *scale, Seed: *seedN, Logger: log})
	if err != nil {
		return err
	}
	rep.Rows, rep.SeedSecs = sr.Rows(), sr.Elapsed.Seconds()
	fmt.Printf("  %d rows in %.1fs\n", rep.Rows, rep.SeedSecs)
	// Settle the server after the seed, as the floor and tote both read
	// the same freshly written tables.
	if _, err := src.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("vacuum source: %w", err)
	}
	if _, err := src.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}

	fmt.Println("floor: COPY TO STDOUT | COPY FROM STDIN, table by table")
	if rep.Floor, err = floor(ctx, dbs["src"], dbs["floor"]); err != nil {
		return err
	}
	fmt.Printf("  %.2fs\n", rep.Floor.Seconds)
	if _, err := src.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}

	lakeDir, err := os.MkdirTemp("", "tote-bench-lake-")
	if err != nil {
		return err
	}
	if !*keepLake {
		defer os.RemoveAll(lakeDir)
	}
	args := []string{"run", "--json", "--log-level", *logLevel,
		"--source", dbs["src"], "--warehouse", dbs["wh"], "--lake", "file://" + lakeDir}

	fmt.Println("tote run from empty")
	var prof []string
	if *cpuprof != "" {
		prof = append(prof, "TOTE_CPUPROFILE="+*cpuprof)
	}
	if *memprof != "" {
		prof = append(prof, "TOTE_MEMPROFILE="+*memprof)
	}
	if rep.Full, err = toteRun(ctx, bin, args, prof); err != nil {
		return err
	}
	fmt.Printf("  %.2fs\n", rep.Full.Seconds)

	fmt.Printf("simulating %d changes\n", *changes)
	if _, err := simulate.Run(ctx, src, simulate.Options{Rate: 1e6, Events: *changes, Seed: *seedN, Logger: log}); err != nil {
		return err
	}
	fmt.Println("tote run, incremental")
	if rep.Incr, err = toteRun(ctx, bin, args, nil); err != nil {
		return err
	}
	fmt.Printf("  %.2fs\n", rep.Incr.Seconds)
	fmt.Println("tote run, nothing new")
	if rep.NoChange, err = toteRun(ctx, bin, args, nil); err != nil {
		return err
	}
	fmt.Printf("  %.2fs\n", rep.NoChange.Seconds)

	if rep.Floor.Seconds > 0 {
		rep.Ratio = rep.Full.Seconds / rep.Floor.Seconds
	}
	peak := max(rep.Full.PeakRSSMiB, rep.Incr.PeakRSSMiB, rep.NoChange.PeakRSSMiB)
	rep.Targets = []Target{
		{"full load / floor", fmt.Sprintf("≤ %.1f× (at scale 100)", targetRatio), fmt.Sprintf("%.2f×", rep.Ratio), rep.Ratio <= targetRatio},
		{"peak RSS", fmt.Sprintf("< %d MiB", targetRSSMiB), fmt.Sprintf("%.0f MiB", peak), peak < targetRSSMiB},
		{fmt.Sprintf("incremental (%d changes)", *changes), fmt.Sprintf("< %s (at scale 100)", targetIncremental), fmt.Sprintf("%.2fs", rep.Incr.Seconds), rep.Incr.Seconds < targetIncremental.Seconds()},
		{"no-change run", fmt.Sprintf("< %s", targetNoChange), fmt.Sprintf("%.2fs", rep.NoChange.Seconds), rep.NoChange.Seconds < targetNoChange.Seconds()},
	}
	printReport(os.Stdout, rep)

	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(*outDir, fmt.Sprintf("scale%d-%s.json", *scale, rep.When.Format("20060102T150405Z")))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("results: %s\n", path)
	return nil
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
	fmt.Fprintf(w, "\nfull load / floor: %.2f×\n\n", r.Ratio)
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
