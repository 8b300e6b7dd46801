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

// Run listens for the load's notices (warehouse.LoadedChannel) on a
// connection of its own, and passes each to the open pages, until ctx is
// done. A lost connection is made again, with backoff, and the pages told
// to refresh (they may have missed a load). It returns nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	backoff := time.Second
	first := true
	for {
		err := s.listen(ctx, func() {
			backoff = time.Second
			if !first {
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

// listen takes a connection out of the pool, LISTENs, calls ready, and
// publishes notices until the connection fails or ctx ends.
func (s *Server) listen(ctx context.Context, ready func()) error {
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
		n, err := postgres.WaitForNotification(ctx, conn) // silence is no stall here
		if err != nil {
			return err
		}
		s.fresh.invalidate()
		data, _ := json.Marshal(map[string]string{"batch": n.Payload})
		s.hub.publish(event{"loaded", string(data)})
	}
}

// Freshness is what the badge on every view shows: the data is as of the
// source snapshot of the newest loaded batch (with the lake), or as of the
// newest load (without it, and says so).
type Freshness struct {
	AsOf time.Time `json:"as_of,omitzero"`
	// LagSeconds is the time since AsOf.
	LagSeconds float64 `json:"lag_seconds"`
	// Basis is "source snapshot" (from the lake) or "newest load" (no lake).
	Basis string `json:"basis"`
	// Batch is the newest batch in the ledger, loaded at LoadedAt.
	Batch    string    `json:"batch,omitempty"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// PendingRaw is the raw batches extracted but not yet loaded (with the lake).
	PendingRaw uint64 `json:"pending_raw_batches"`
	Loaded     bool   `json:"loaded"`
}

// freshCache keeps the freshness between loads: working it out reads the
// lake's manifests and the facts' newest change, which is too slow for
// every page (pipeline.ReadFreshness). A load notice invalidates it; so
// does age, for the lag of a quiet source, which extractions that find
// nothing move on.
type freshCache struct {
	mu  sync.Mutex
	at  time.Time
	val Freshness
}

const freshTTL = 30 * time.Second

func (c *freshCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

func (s *Server) freshness(ctx context.Context) (Freshness, error) {
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
	if f.Loaded {
		f.LagSeconds = max(now.Sub(f.AsOf).Seconds(), 0)
	}
	return f, nil
}

func (s *Server) readFreshness(ctx context.Context, now time.Time) (Freshness, error) {
	f := Freshness{Basis: "newest load"}
	rows, err := s.db().query(ctx, "newest_load")
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
	f.Loaded, f.AsOf = true, f.LoadedAt
	if s.cfg.Lake == nil {
		return f, nil
	}
	pf, err := readFreshness(ctx, s.cfg.Lake, s.cfg.Warehouse, now)
	if err != nil {
		return f, err
	}
	if pf.Loaded() {
		f.Basis, f.AsOf, f.PendingRaw = "source snapshot", pf.AsOf, pf.PendingRaw
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

// Check reports whether the warehouse has the dashboard's summaries
// (migration 0008, which any load by this tote applies).
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	var ok bool
	if err := pool.QueryRow(ctx, hasSummaries).Scan(&ok); err != nil {
		return fmt.Errorf("dashboard: look for the summaries: %w", err)
	}
	if !ok {
		return errors.New("dashboard: the warehouse has no dashboard summaries (tote.dash_state, migration 0008): " +
			"load it once with this version of tote (tote load, tote run or tote serve), which migrates it")
	}
	return nil
}
