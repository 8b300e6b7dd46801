package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
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
	dir := b.TempDir()
	bn := setupScale(b, "file://"+dir, benchScale(b))
	bn.load(b)
	ctx := context.Background()
	var rows int64
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
		res, err := p.Publish(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rows = res.Rows()
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rows), "rows/op")
}

// BenchmarkPublishIncremental publishes one small batch (200 simulated
// source changes, some deletions) into tables that hold the rest, as a
// run of tote serve does.
func BenchmarkPublishIncremental(b *testing.B) {
	bn := setupScale(b, "file://"+b.TempDir(), benchScale(b))
	bn.load(b)
	bn.publish(b)
	var rows int64
	i := uint64(0)
	for b.Loop() {
		b.StopTimer()
		i++
		bn.simulate(b, 100+i, 0.1)
		bn.load(b)
		b.StartTimer()
		res := bn.publish(b)
		rows += res.Rows()
	}
	b.ReportMetric(float64(rows)/float64(max(i, 1)), "rows/op")
}
