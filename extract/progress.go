package extract

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress writes a line per table to a terminal: the table being read,
// redrawn in place, and a line for each table done. Tables read at once
// take turns at the line.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// table starts a table and returns the function to call as rows are read.
func (p *progress) table(name string) func(rows, bytes int64) {
	if p.w == nil {
		return func(int64, int64) {}
	}
	start := time.Now()
	return func(rows, bytes int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if time.Since(p.last) < 200*time.Millisecond {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r  %-15s %12d rows %8.1f MB/s", name, rows, mbps(bytes, time.Since(start)))
	}
}

func (p *progress) tableDone(name string, rows, bytes int64, took time.Duration) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r  %-15s %12d rows %8.1f MB/s %6.2fs\n", name, rows, mbps(bytes, took), took.Seconds())
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}
