// Package web owns tote's dashboard: the business view of the star schema
// (KPI cards, charts, filters, cross-filters, drill-down to the fact rows,
// an order's version history, the view as of a past time) and the pipeline
// view (runs, stage timings, failures, lag, lake size, rejects, alerts, run
// now), served as Go templates, one hand-written ES module and a vendored
// Apache ECharts, all embedded; and its live updates: it LISTENs for the
// load's tote_loaded notices and pushes them to open pages as server-sent
// events.
//
// It owns the summaries it reads: the schema tote_dash, a warehouse
// migration group of its own (Summaries) rendered from the star model by
// one template (summaries.go, summaries.sql), which Refresh brings up to
// the ledger's newest batch after loads commit (Server.Run does, at start
// and on each notice); see docs/decisions/0011. It reads the warehouse
// only through the named SQL of queries.go (the browser sends filter
// values, never SQL; parameters by name, one struct per query family) and
// through the warehouse package's readers (runs, rejects). It does not
// load or run anything, nor migrate the warehouse's own schema: run now
// calls Config.RunNow, which `tote serve` wires to its daemon, and `tote
// dashboard` leaves nil.
package web

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/warehouse"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// TokenEnv is the environment variable that holds the dashboard token.
const TokenEnv = "TOTE_DASHBOARD_TOKEN"

// Config is what a dashboard serves.
type Config struct {
	// Pool is the warehouse database, the dashboard's own pool (its
	// queries never wait behind a load). Required.
	Pool *pgxpool.Pool
	// Warehouse reads the run history and the rejects. Required.
	Warehouse *warehouse.Warehouse
	// Lake, if set, gives the lag (the time since the source snapshot of
	// the newest loaded batch) and the lake's size. Nil: the freshness
	// badge says when the newest batch was loaded, and says so.
	Lake *lake.Lake
	// RunNow queues a pipeline run and reports whether one was queued.
	// Nil makes the dashboard read-only: no run-now button.
	RunNow func() bool
	// Token, if set, is asked of every page and API call (a cookie set by
	// visiting any page with ?token=, or an X-Tote-Token header). Required
	// when the dashboard is reachable beyond the loopback (CheckBind).
	Token string
	// Logger logs errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observe, if set, is told how long each named query took.
	Observe func(query string, d time.Duration)
	// StaleAfter is the lag past which the badge says the data is stale
	// (tote serve's --freshness-threshold); zero: never.
	StaleAfter time.Duration
	// Slot, if set, returns logical capture's replication slot health as
	// last read (tote serve's), nil if not yet: the pipeline view shows
	// it. Nil with capture by xmin.
	Slot func() *replication.SlotHealth
}

// Server is the dashboard's HTTP handler.
type Server struct {
	cfg      Config
	pool     *pgxpool.Pool
	wh       *warehouse.Warehouse // the warehouse through the dashboard's pool, for Refresh
	log      *slog.Logger
	tmpl     *template.Template
	mux      *http.ServeMux
	hub      *hub
	fresh    freshCache
	lags     lagCache
	lakeSize struct {
		sync.Mutex
		at      time.Time
		objects int
		bytes   int64
	}
	assets map[string]asset
}

// New returns the dashboard for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Pool == nil || cfg.Warehouse == nil {
		return nil, errors.New("web: a dashboard needs the warehouse's pool and the warehouse")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"dict": func(kv ...string) map[string]string {
			m := map[string]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		},
		"has": func(list []string, v any) bool {
			s := fmt.Sprint(v)
			for _, x := range list {
				if x == s {
					return true
				}
			}
			return false
		},
	}).ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pool: cfg.Pool, wh: warehouse.New(cfg.Pool, cfg.Logger), log: cfg.Logger, tmpl: tmpl,
		hub: newHub(), assets: assets}
	s.routes()
	return s, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) observe(name string, d time.Duration) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(name, d)
	}
}

func (s *Server) db() *db { return &db{pool: s.pool, observe: s.observe} }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /static/", s.static)
	m.HandleFunc("GET /{$}", s.authed(s.page("business")))
	m.HandleFunc("GET /pipeline", s.authed(s.page("pipeline")))
	m.HandleFunc("GET /api/business", s.authed(s.apiBusiness))
	m.HandleFunc("GET /api/freshness", s.authed(s.apiFreshness))
	m.HandleFunc("GET /api/pipeline", s.authed(s.apiPipeline))
	m.HandleFunc("GET /api/drill", s.authed(s.apiDrill))
	m.HandleFunc("GET /api/drill.csv", s.authed(s.apiDrillCSV))
	m.HandleFunc("GET /api/history", s.authed(s.apiHistory))
	m.HandleFunc("GET /api/designs", s.authed(s.apiDesigns))
	m.HandleFunc("GET /api/options", s.authed(s.apiOptions))
	m.HandleFunc("GET /events", s.authed(s.events))
	m.HandleFunc("POST /api/run", s.runNow)
	// For a load balancer or an orchestrator: 200 while the process is
	// alive, without the token (tote serve answers it the same way).
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: the dashboard is at / and /pipeline", http.StatusNotFound)
	})
	s.mux = m
}

// ServeHTTP serves the dashboard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Nothing on the page may come from, or go to, another host.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "+
		"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// CheckBind refuses to serve the dashboard on an address beyond the
// loopback without a token: anyone who can reach it could read the
// business's figures and start runs.
func CheckBind(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("the dashboard on %s would be reachable beyond this machine: give --dashboard-token (or %s), "+
		"or bind a loopback address such as 127.0.0.1", addr, TokenEnv)
}

const tokenCookie = "tote_dashboard"

// authorized reports whether r carries the token, if one is configured.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	given := r.Header.Get("X-Tote-Token")
	if given == "" {
		if c, err := r.Cookie(tokenCookie); err == nil {
			given = c.Value
		}
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(s.cfg.Token)) == 1
}

// authed asks for the token before h. A page visited with ?token= sets
// the cookie and comes back without it in the address.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" {
			if t := r.URL.Query().Get("token"); t != "" {
				if subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.Token)) == 1 {
					http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true,
						SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
					q := r.URL.Query()
					q.Del("token")
					u := *r.URL
					u.RawQuery = q.Encode()
					http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
					return
				}
				s.unauthorized(w, r, "That token is not right.")
				return
			}
		}
		if !s.authorized(r) {
			s.unauthorized(w, r, "")
			return
		}
		h(w, r)
	}
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/events" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the dashboard token is required"})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_ = s.tmpl.ExecuteTemplate(w, "login.html", map[string]any{"Message": msg, "Path": r.URL.Path})
}

// sameOrigin reports whether a browser says r comes from a page of this
// dashboard: Sec-Fetch-Site same-origin, or an Origin of this host.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// runNow queues a pipeline run: only with the token (if configured) and
// from a page of this dashboard.
func (s *Server) runNow(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RunNow == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "this dashboard is read-only: run now is tote serve's"})
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "run now needs the dashboard token"})
		return
	}
	if !sameOrigin(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "run now is accepted only from the dashboard's own pages"})
		return
	}
	queued := s.cfg.RunNow()
	s.log.Info("run requested from the dashboard", "queued", queued, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": queued})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers a request that failed: a bad request names what is wrong,
// any other failure is logged and reported without detail beyond its text.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		if r.Context().Err() != nil {
			return // the page went away
		}
		s.log.Error("dashboard request failed", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// page renders a view's page: the frame, the filters and an empty place
// for every chart, which the ES module fills from the API.
func (s *Server) page(view string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data := map[string]any{"View": view, "ReadOnly": s.cfg.RunNow == nil, "HasLake": s.cfg.Lake != nil,
			"Presets": Presets, "Grains": Grains}
		if view == "business" {
			st, err := ParseState(r.URL.Query())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			opts, err := s.options(r.Context(), st)
			if err != nil {
				s.log.Error("dashboard filter lists", "err", err)
				http.Error(w, "the warehouse did not answer: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			data["State"], data["Options"] = st, opts
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.tmpl.ExecuteTemplate(w, view+".html", data); err != nil {
			s.log.Error("render page", "view", view, "err", err)
		}
	}
}

// Options are the values the filters offer.
type Options struct {
	Countries      []string  `json:"countries"`
	Cities         []string  `json:"cities"`
	Staff          []NamedID `json:"staff"`
	Departments    []string  `json:"departments"`
	Currencies     []NamedID `json:"currencies"`
	Counterparties []NamedID `json:"counterparties"`
	Designs        []NamedID `json:"designs"` // the selected ones
}

// NamedID is an entity a filter can pick.
type NamedID struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Note string `json:"note,omitempty"`
}
