package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/warehouse"
)

// event is one server-sent event.
type event struct {
	kind string // loaded or resync
	data string // JSON
}

// hub fans the load notices out to the pages listening.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]struct{}
}

func newHub() *hub { return &hub{subs: map[chan event]struct{}{}} }

func (h *hub) subscribe() (<-chan event, func()) {
	ch := make(chan event, 16)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// publish sends ev to every page; a page too slow to take it misses it
// (it would refetch everything on the next one anyway).
func (h *hub) publish(ev event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Listeners is how many pages are listening for live updates.
func (s *Server) Listeners() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.subs)
}

// Run keeps the summaries and the open pages up to date until ctx is
// done: it brings the summaries up to date (Refresh) at once, then listens
// for the load's notices (warehouse.LoadedChannel, sent at commit by a load
// in any process) on a connection of its own, refreshes after each (a burst
// of them, once) and then tells the pages, which refetch. A lost connection
// is made again, with backoff, and the pages told to refresh (they may
// have missed a load). It returns nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	refreshed := make(chan struct{})
	go func() { defer close(refreshed); s.refresher(ctx, kick) }()
	defer func() { <-refreshed }()
	again := func() {
		select {
		case kick <- struct{}{}:
		default: // one is pending: it will see this load too
		}
	}
	again()
	backoff := time.Second
	first := true
	for {
		err := s.listen(ctx, again, func() {
			backoff = time.Second
			if !first {
				again()
				s.hub.publish(event{"resync", `{}`})
			}
			first = false
		})
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("dashboard: lost the warehouse connection that listens for loads; connecting again",
			"err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// refresher brings the summaries up to date each time it is kicked, then
// tells the pages which batch they reflect.
func (s *Server) refresher(ctx context.Context, kick <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		start := time.Now()
		w, err := Refresh(ctx, s.wh)
		if ctx.Err() != nil {
			return
		}
		s.fresh.invalidate()
		if err != nil {
			s.log.Warn("dashboard: the summaries are not up to date; trying again after the next load", "err", err)
			continue
		}
		s.log.Debug("dashboard summaries up to date", "batch", w.Batch, "seq", w.Seq, "seconds", time.Since(start).Seconds())
		data, _ := json.Marshal(w)
		s.hub.publish(event{"loaded", string(data)})
	}
}

// listen takes a connection out of the pool, LISTENs, calls ready, and
// calls loaded for each notice until the connection fails or ctx ends.
func (s *Server) listen(ctx context.Context, loaded, ready func()) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // ours alone: a LISTENing session must not go back to the pool
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{warehouse.LoadedChannel}.Sanitize()); err != nil {
		return err
	}
	ready()
	for {
		if _, err := postgres.WaitForNotification(ctx, conn); err != nil { // silence is no stall here
			return err
		}
		s.fresh.invalidate()
		loaded()
	}
}

// Badge is what the freshness badge on every view shows: how far the
// warehouse is behind the source (pipeline.Freshness; without the lake, as
// of the newest load, and Basis says so), when it is stale, and which batch
// the dashboard's figures reflect.
type Badge struct {
	pipeline.Freshness
	// Basis is "source snapshot" (from the lake) or "newest load" (no lake).
	Basis string `json:"basis"`
	// Batch is the newest batch in the ledger, loaded at LoadedAt.
	Batch    string    `json:"batch,omitempty"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// StaleAfter is the lag past which the data is stale, in seconds (the
	// server's --freshness-threshold); 0: never.
	StaleAfter float64 `json:"stale_after_seconds"`
	// Summaries says which batch the figures reflect; they catch up after
	// a load commits.
	Summaries Watermark `json:"summaries"`
}

// freshCache keeps the badge between loads: working it out reads the
// lake's manifests and the ledger (pipeline.ReadFreshness), which is too
// slow for every page. A load notice or a refresh invalidates it; so does
// age, for the lag of a quiet source, which extractions that find nothing
// move on.
type freshCache struct {
	mu  sync.Mutex
	at  time.Time
	val Badge
}

const freshTTL = 30 * time.Second

func (c *freshCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

func (s *Server) freshness(ctx context.Context) (Badge, error) {
	s.fresh.mu.Lock()
	defer s.fresh.mu.Unlock()
	now := s.now()
	if s.fresh.at.IsZero() || now.Sub(s.fresh.at) > freshTTL {
		f, err := s.readFreshness(ctx, now)
		if err != nil {
			return f, err
		}
		s.fresh.val, s.fresh.at = f, now
	}
	f := s.fresh.val
	if f.Loaded() {
		f.Lag = max(now.Sub(f.AsOf), 0)
	}
	return f, nil
}

func (s *Server) readFreshness(ctx context.Context, now time.Time) (Badge, error) {
	f := Badge{Basis: "newest load", StaleAfter: s.cfg.StaleAfter.Seconds()}
	if w, err := ReadWatermark(ctx, s.wh); err == nil {
		f.Summaries = w
	}
	rows, err := s.db().query(ctx, "newest_load", nil)
	if err != nil {
		return f, err
	}
	var seq int64
	found := false
	for rows.Next() {
		if err := rows.Scan(&f.Batch, &seq, &f.LoadedAt); err != nil {
			rows.Close()
			return f, err
		}
		found = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	if !found {
		return f, nil
	}
	f.AsOf = f.LoadedAt
	if s.cfg.Lake == nil {
		return f, nil
	}
	pf, err := readFreshness(ctx, s.cfg.Lake, s.cfg.Warehouse, now)
	if err != nil {
		return f, err
	}
	if pf.Loaded() {
		f.Freshness, f.Basis = pf, "source snapshot"
	}
	return f, nil
}

// Serve serves the dashboard on ln, and its live updates, until ctx is
// done; then it stops accepting requests and returns nil. `tote serve`
// mounts the handler on its own server and calls Run instead.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	runDone := make(chan struct{})
	go func() { _ = s.Run(ctx); close(runDone) }()
	s.log.Info("dashboard serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-runDone
	if err != nil {
		return fmt.Errorf("dashboard: http shutdown: %w", err)
	}
	return nil
}

// Check reports whether the warehouse is migrated far enough for the
// dashboard's summaries (migration 0011, which any load by this tote
// applies); the dashboard makes and keeps the summaries itself.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	var ok bool
	if err := pool.QueryRow(ctx, hasGroups).Scan(&ok); err != nil {
		return fmt.Errorf("dashboard: look at the warehouse's schema: %w", err)
	}
	if !ok {
		return errors.New("dashboard: the warehouse has not been migrated by this version of tote (no tote.group_migrations, migration 0011): " +
			"load it once with this version of tote (tote load, tote run or tote serve), which migrates it")
	}
	return nil
}
