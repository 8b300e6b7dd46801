package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/warehouse"
)

// Handler serves the daemon's endpoints:
//
//	GET  /healthz  200 while the process is alive
//	GET  /readyz   200 if the source, lake and warehouse answer, else 503 naming those that do not
//	GET  /metrics  Prometheus metrics
//	GET  /runs     the run history as JSON, newest first (?limit=N, default 20)
//	POST /runs     queue a run now (202)
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /runs", d.listRuns)
	mux.HandleFunc("POST /runs", func(w http.ResponseWriter, r *http.Request) {
		queued := d.Trigger(TriggerHTTP)
		d.log.Info("run requested over HTTP", "queued", queued, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusAccepted, map[string]any{"queued": queued})
	})
	return mux
}

func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	problems := map[string]string{}
	p := d.cfg.Parts
	if err := p.Source.Ping(ctx); err != nil {
		problems["source"] = err.Error()
	}
	if err := p.Warehouse.Ping(ctx); err != nil {
		problems["warehouse"] = err.Error()
	}
	if _, err := p.Lake.Latest(ctx, lake.Raw); err != nil {
		problems["lake"] = err.Error()
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, problems)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
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
	runs, err := d.cfg.Parts.Warehouse.Runs(r.Context(), limit)
	if err != nil {
		d.log.Error("GET /runs", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if runs == nil {
		runs = []warehouse.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
