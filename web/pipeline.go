package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/transform"
)

// readFreshness is pipeline.ReadFreshness: the lag as tote status and
// the daemon's alerts count it.
var readFreshness = pipeline.ReadFreshness

// Load is one batch of the ledger, with the lag it brought the warehouse
// to: the time from the source snapshot it holds to its load (with the
// lake; nil without).
type Load struct {
	Batch      string    `json:"batch"`
	Seq        int64     `json:"seq"`
	LoadedAt   time.Time `json:"loaded_at"`
	Rows       int64     `json:"rows"`
	Deleted    int64     `json:"deleted"` // source rows deleted: deletion versions and flagged dimension rows
	LagSeconds *float64  `json:"lag_seconds,omitempty"`
}

// Alert is one alert sent about a run.
type Alert struct {
	Run int64 `json:"run"`
	pipeline.Notification
}

// PipelineView is the pipeline view's data.
type PipelineView struct {
	Runs    []pipeline.Record `json:"runs"`
	Loads   []Load            `json:"loads"`
	Rejects []tote.Reject     `json:"rejects"`
	Alerts  []Alert           `json:"alerts"`
	Lake    *LakeSize         `json:"lake,omitempty"`
	// Slot is logical capture's replication slot health, as tote serve
	// last read it; absent with capture by xmin.
	Slot      *replication.SlotHealth `json:"slot,omitempty"`
	Freshness Badge                   `json:"freshness"`
	RunNow    bool                    `json:"run_now"`
	Timings   map[string]float64      `json:"timings_ms"`
}

// LakeSize is how much the lake holds.
type LakeSize struct {
	Objects int   `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// Runs, loads and rejects the pipeline view shows.
const (
	viewRuns    = 50
	viewLoads   = 200
	viewRejects = 100
)

func (s *Server) apiPipeline(w http.ResponseWriter, r *http.Request) {
	v, err := s.pipelineView(r.Context())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) pipelineView(ctx context.Context) (PipelineView, error) {
	v := PipelineView{RunNow: s.cfg.RunNow != nil, Timings: map[string]float64{}}
	var mu sync.Mutex
	timed := func(name string, fn func() error) func() error {
		return func() error {
			start := time.Now()
			err := fn()
			mu.Lock()
			v.Timings[name] = float64(time.Since(start).Microseconds()) / 1000
			mu.Unlock()
			s.observe(name, time.Since(start))
			return err
		}
	}
	wh := s.cfg.Warehouse
	g, gctx := errgroup.WithContext(ctx)
	g.Go(timed("runs", func() (err error) { v.Runs, err = pipeline.Runs(gctx, wh, viewRuns); return }))
	g.Go(timed("rejects", func() (err error) { v.Rejects, err = wh.Rejects(gctx, true, viewRejects); return }))
	g.Go(func() (err error) {
		v.Loads, err = collect(gctx, s.db(), "recent_loads", pgx.NamedArgs{"limit": viewLoads}, func(r pgx.CollectableRow) (Load, error) {
			var l Load
			return l, r.Scan(&l.Batch, &l.Seq, &l.LoadedAt, &l.Rows, &l.Deleted)
		})
		return
	})
	g.Go(timed("freshness", func() (err error) { v.Freshness, err = s.freshness(gctx); return }))
	if s.cfg.Lake != nil {
		g.Go(timed("lake_size", func() error {
			objects, bytes, err := s.lakeSizeOf(gctx)
			v.Lake = &LakeSize{Objects: objects, Bytes: bytes}
			return err
		}))
	}
	if err := g.Wait(); err != nil {
		return v, err
	}
	if s.cfg.Slot != nil {
		v.Slot = s.cfg.Slot()
	}
	if v.Runs == nil {
		v.Runs = []pipeline.Record{}
	}
	if v.Rejects == nil {
		v.Rejects = []tote.Reject{}
	}
	v.Alerts = []Alert{}
	for _, r := range v.Runs {
		for _, n := range r.Notifications {
			v.Alerts = append(v.Alerts, Alert{Run: r.ID, Notification: n})
		}
	}
	if s.cfg.Lake != nil {
		start := time.Now()
		s.lags.fill(ctx, s.cfg.Lake, v.Loads, s.log.Warn)
		v.Timings["lag"] = float64(time.Since(start).Microseconds()) / 1000
	}
	return v, nil
}

// lakeSizeOf is the lake's size, listed at most once a minute.
func (s *Server) lakeSizeOf(ctx context.Context) (int, int64, error) {
	ls := &s.lakeSize
	ls.Lock()
	defer ls.Unlock()
	if time.Since(ls.at) < time.Minute {
		return ls.objects, ls.bytes, nil
	}
	objects, bytes, err := s.cfg.Lake.Size(ctx)
	if err != nil {
		return 0, 0, err
	}
	ls.objects, ls.bytes, ls.at = objects, bytes, time.Now()
	return objects, bytes, nil
}

// lagCache remembers, per processed batch, when the source was read for
// it (its raw batch's snapshot): manifests never change, so each is read
// once.
type lagCache struct {
	mu     sync.Mutex
	readAt map[int64]time.Time
}

// fill sets the lag of each load from the lake's manifests.
func (c *lagCache) fill(ctx context.Context, lk *lake.Lake, loads []Load, warn func(string, ...any)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readAt == nil {
		c.readAt = map[int64]time.Time{}
	}
	for i := range loads {
		l := &loads[i]
		t, ok := c.readAt[l.Seq]
		if !ok {
			var err error
			if t, err = sourceReadAt(ctx, lk, l.Seq); err != nil {
				warn("dashboard: lag of a load", "batch", l.Batch, "err", err)
				continue
			}
			c.readAt[l.Seq] = t
		}
		if !t.IsZero() {
			lag := l.LoadedAt.Sub(t).Seconds()
			l.LagSeconds = &lag
		}
	}
}

// sourceReadAt is when the source was read for processed batch seq.
func sourceReadAt(ctx context.Context, lk *lake.Lake, seq int64) (time.Time, error) {
	pm, err := lk.Batch(ctx, lake.Processed, strconv.FormatInt(seq, 10))
	if err != nil {
		return time.Time{}, err
	}
	ps, err := transform.LoadState(pm)
	if err != nil {
		return time.Time{}, err
	}
	rm, err := lk.Batch(ctx, lake.Raw, strconv.FormatUint(ps.RawSeq, 10))
	if err != nil {
		return time.Time{}, err
	}
	rs, err := extract.LoadState(rm)
	if err != nil {
		return time.Time{}, err
	}
	if rs.ReadAt.IsZero() {
		return rm.CreatedAt, nil
	}
	return rs.ReadAt, nil
}
