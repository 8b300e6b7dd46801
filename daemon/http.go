package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
)

// Handler serves the daemon's endpoints:
//
//	GET  /healthz  200 while the process is alive
//	GET  /readyz   200 if the source, lake and warehouse answer (each within Config.ReadyTimeout),
//	               else 503 with a JSON object saying, in one line each, why those that do not
//	GET  /metrics  Prometheus metrics
//	GET  /runs     the run history as JSON, newest first (?limit=N, default 20)
//	POST /runs     queue a run now (202)
//	/              the dashboard, if Config.Dashboard is set
//
// With Config.Token set, /runs asks for it (Authorization: Bearer TOKEN):
// the history holds error messages that may quote source values, and a
// run is the one thing a request can start. The probes and the metrics
// stay open, for the orchestrator and Prometheus.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /runs", d.authorized(d.listRuns))
	mux.HandleFunc("POST /runs", d.authorized(func(w http.ResponseWriter, r *http.Request) {
		queued := d.Trigger(TriggerHTTP)
		d.log.Info("run requested over HTTP", "queued", queued, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusAccepted, map[string]any{"queued": queued})
	}))
	if d.cfg.Dashboard != nil {
		mux.Handle("/", d.cfg.Dashboard)
	}
	return mux
}

// authorized serves h only to requests that carry Config.Token, if set.
func (d *Daemon) authorized(h http.HandlerFunc) http.HandlerFunc {
	if d.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + d.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tote"`)
			http.Error(w, "this endpoint needs the token: Authorization: Bearer TOKEN (--dashboard-token)", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	if problems := d.ready(r.Context()); len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, problems)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// The parts, as /readyz and the metrics name them.
const (
	partSource    = "source"
	partWarehouse = "warehouse"
	partLake      = "lake"
)

// ready checks the parts at once, each bounded by Config.ReadyTimeout,
// and returns what is wrong with each that is not ready, in one line; it
// sets the tote_up gauges.
func (d *Daemon) ready(ctx context.Context) map[string]string {
	p, timeout := d.cfg.Parts, d.cfg.ReadyTimeout
	checks := map[string]func(context.Context) error{
		partSource:    func(ctx context.Context) error { return postgres.Ping(ctx, partSource, p.Source) },
		partWarehouse: func(ctx context.Context) error { return postgres.Ping(ctx, partWarehouse, p.Warehouse.Pool()) },
		partLake: func(ctx context.Context) error {
			if _, err := p.Lake.Latest(ctx, lake.Raw); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("lake %s: no answer within %s", p.Lake.Name(), timeout)
				}
				return err
			}
			return nil
		},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	problems := map[string]string{}
	for part, check := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := check(cctx); err != nil {
				mu.Lock()
				problems[part] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	d.metrics.up(problems)
	return problems
}

func (d *Daemon) listRuns(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			http.Error(w, "limit: want a positive whole number", http.StatusBadRequest)
			return
		}
		limit = n
	}
	runs, err := pipeline.Runs(r.Context(), d.cfg.Parts.Warehouse, limit)
	if err != nil {
		d.log.Error("GET /runs", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if runs == nil {
		runs = []pipeline.Record{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
