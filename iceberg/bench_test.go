package iceberg

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
)

// benchScale is the source scale the publish benchmarks load
// (TOTE_BENCH_ICEBERG_SCALE, default 4: about 200,000 source rows).
func benchScale(b *testing.B) int {
	s := os.Getenv("TOTE_BENCH_ICEBERG_SCALE")
	if s == "" {
		return 4
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("TOTE_BENCH_ICEBERG_SCALE=%q: want a scale of at least 1", s)
	}
	return n
}

// BenchmarkPublishFull publishes a loaded warehouse into empty Iceberg
// tables, as the first run does: every fact's rows appended, every
// dimension written.
func BenchmarkPublishFull(b *testing.B) {
	for _, codec := range []struct{ name, codec, level string }{
		{"zstd-1", "zstd", "1"},
	} {
		b.Run(codec.name, func(b *testing.B) {
			saved := maps.Clone(writeProperties)
			defer func() { writeProperties = saved }()
			writeProperties[table.ParquetCompressionKey] = codec.codec
			if codec.level != "" {
				writeProperties[table.ParquetCompressionLevelKey] = codec.level
			}
			benchmarkPublishFull(b)
		})
	}
}

func benchmarkPublishFull(b *testing.B) {
	dir := b.TempDir()
	bn := setupScale(b, "file://"+dir, benchScale(b))
	bn.load(b)
	ctx := context.Background()
	var rows, bytes int64
	var peak uint64
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		bn.exec(b, bn.wh, `DROP SCHEMA IF EXISTS `+CatalogSchema+` CASCADE`,
			`DELETE FROM tote.iceberg_snapshots`, `DELETE FROM tote.iceberg_batches`)
		if err := os.RemoveAll(filepath.Join(dir, "iceberg")); err != nil {
			b.Fatal(err)
		}
		p, err := Open(ctx, bn.wh, bn.lake, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		before := cpuTime(b)
		stop := samplePeak(&peak)
		stopProfile := profile(b)
		res, err := p.Publish(ctx)
		stopProfile()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
		b.StopTimer()
		rows = res.Rows()
		bytes = dataBytes(b, filepath.Join(dir, "iceberg"))
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rows), "rows/op")
	b.ReportMetric(float64(bytes)/(1<<20), "data-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// profile writes a CPU profile of what runs until stop is called to the
// file TOTE_BENCH_ICEBERG_CPUPROFILE names, if it is set: the publish
// alone, without the setup that -cpuprofile would include. Each call
// overwrites the file, so it holds the last publish.
func profile(b *testing.B) (stop func()) {
	path := os.Getenv("TOTE_BENCH_ICEBERG_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the CPU time this process has used (user and system): the
// publisher's own work, without the warehouse's, and less disturbed than
// the elapsed time by a busy machine.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// samplePeak records in peak the largest heap in use (runtime.MemStats'
// HeapInuse) seen every 5ms until stop is called: the publisher's part of
// the process's peak RSS.
func samplePeak(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// dataBytes is the size of the Parquet data files under dir.
func dataBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".parquet" {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkPublishIncremental publishes one small batch (1,000 simulated
// source changes, 10% of them deletions, as make bench's incremental run)
// into tables that hold the rest, as a run of tote serve does.
func BenchmarkPublishIncremental(b *testing.B) {
	bn := setupScale(b, "file://"+b.TempDir(), benchScale(b))
	bn.load(b)
	bn.publish(b)
	var rows int64
	var cpu time.Duration
	i := uint64(0)
	for b.Loop() {
		b.StopTimer()
		i++
		bn.simulateN(b, 100+i, 0.1, 1000)
		bn.load(b)
		b.StartTimer()
		before := cpuTime(b)
		res := bn.publish(b)
		cpu += cpuTime(b) - before
		rows += res.Rows()
	}
	b.ReportMetric(float64(rows)/float64(max(i, 1)), "rows/op")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(max(i, 1)), "cpu-ms/op")
}
