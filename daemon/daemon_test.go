package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/hooktest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/smtptest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// seededSource returns the URL of a fresh source holding seeded totesys.
func seededSource(t *testing.T) string {
	t.Helper()
	return fixture.Source(1, 1).NewDB(t)
}

// proxy forwards TCP to target until cut, which also drops open connections.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.set(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) set(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// via returns dbURL with its host replaced by the proxy's.
func (p *proxy) via(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func runs(t *testing.T, base string) []pipeline.Record {
	t.Helper()
	code, body := get(t, base+"/runs?limit=100")
	var rs []pipeline.Record
	if code != 200 || json.Unmarshal([]byte(body), &rs) != nil {
		t.Fatalf("GET /runs: %d %s", code, body)
	}
	return rs
}

func parts(t *testing.T, source, wh string) pipeline.Parts {
	lk, err := lake.Open(context.Background(), "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return pipeline.Parts{Source: pgtest.Pool(t, source), Warehouse: warehouse.New(pgtest.Pool(t, wh), nil), Lake: lk}
}

func serve(t *testing.T, d *Daemon) (base string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func TestDaemonAlertsOnceAndRecovers(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	px := startProxy(t, mustHost(t, source))
	p := parts(t, px.via(t, source), fixture.Warehouse().NewDB(t))

	mail := smtptest.Start(t)
	h := hooktest.Start(t)
	inc := &alert.Incidents{Notifiers: []alert.Named{
		{Name: "webhook", Notifier: alert.Webhook{URL: h.URL}},
		{Name: "email", Notifier: alert.SMTP{Addr: mail.Addr, User: smtptest.User, Password: smtptest.Password,
			From: "tote@example.com", To: []string{"ops@example.com"}, TLS: mail.ClientTLS}},
		{Name: "broken", Notifier: alert.Webhook{URL: "http://127.0.0.1:1/"}},
	}}
	d := New(Config{Parts: p, Schedule: Every(200 * time.Millisecond), Retries: 1,
		Backoff: 10 * time.Millisecond, Incidents: inc})
	base, stop := serve(t, d)

	eventually(t, "a successful run", func() bool {
		rs := runs(t, base)
		return len(rs) > 0 && rs[len(rs)-1].Outcome == pipeline.Success
	})
	first := runs(t, base)
	first0 := first[len(first)-1]
	if first0.Trigger != TriggerStartup || len(first0.Stages) != 3 || len(first0.Batches) < 2 || first0.Stages[2].Tables["fact_sales_order"] == 0 {
		t.Errorf("first run: %+v", first0)
	}
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}

	// The source goes away: one alert per notifier, however many runs fail.
	px.set(true)
	eventually(t, "failure alerts", func() bool {
		return h.Count("failed in extract") == 1 && len(mail.Messages()) == 1
	})
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "source") {
		t.Errorf("/readyz with the source down: %d %s", code, body)
	}
	eventually(t, "more failed runs", func() bool {
		n := 0
		for _, r := range runs(t, base) {
			if r.Outcome == pipeline.Failure {
				n++
			}
		}
		return n >= 3
	})
	if n := h.Count("failed"); n != 1 {
		t.Errorf("%d failure alerts for one incident", n)
	}
	msg := mail.Messages()[0]
	if !strings.Contains(msg.Data, "Subject: tote: run ") || !strings.Contains(msg.Data, "stage: extract") || !strings.Contains(msg.Data, "error: ") {
		t.Errorf("failure email:\n%s", msg.Data)
	}

	// It comes back: one recovery message each.
	px.set(false)
	eventually(t, "recovery", func() bool {
		ms := mail.Messages()
		return h.Count("recovered") == 1 && len(ms) == 2 && strings.Contains(ms[1].Data, "recovered")
	})

	// A deletion in the source, then a run now over HTTP.
	if _, err := pgtest.Pool(t, source).Exec(context.Background(), `DELETE FROM payment WHERE payment_id = 5`); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/runs", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /runs: %v %v", err, resp)
	}
	resp.Body.Close()
	eventually(t, "an HTTP-triggered run", func() bool {
		for _, r := range runs(t, base) {
			if r.Trigger == TriggerHTTP && r.Outcome == pipeline.Success {
				return true
			}
		}
		return false
	})

	// Metrics parse and say what happened (a run's, once it is recorded).
	eventually(t, "the deletion in the metrics", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `tote_rows_deleted_total{stage="load",table="fact_payment"} 1`)
	})
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		f, ok := fams[name]
		if !ok {
			t.Errorf("/metrics lacks %s", name)
			return 0
		}
	next:
		for _, m := range f.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.Label {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Errorf("/metrics: no %s%v", name, labels)
		return 0
	}
	if value("tote_runs_total", "outcome", "success") < 2 || value("tote_runs_total", "outcome", "failure") < 3 {
		t.Errorf("tote_runs_total wrong")
	}
	if value("tote_stage_duration_seconds", "stage", "load") < 2 {
		t.Errorf("no load durations")
	}
	if value("tote_rows_total", "stage", "load", "table", "fact_sales_order") == 0 {
		t.Errorf("no rows loaded into fact_sales_order")
	}
	if value("tote_rows_deleted_total", "stage", "extract", "table", "payment") != 1 ||
		value("tote_rows_deleted_total", "stage", "load", "table", "fact_payment") != 1 {
		t.Errorf("the deleted payment is not counted by tote_rows_deleted_total")
	}
	if ts := value("tote_last_success_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last success %v", ts)
	}
	if value("tote_newest_change_age_seconds") <= 0 || value("tote_lake_bytes") <= 0 {
		t.Errorf("newest change age or lake bytes not set")
	}
	if lag := value("tote_lag_seconds"); lag < 0 || lag > 60 {
		t.Errorf("lag %v s after a successful run", lag)
	}
	if value("tote_notifier_failures_total", "notifier", "broken") != 2 {
		t.Errorf("broken notifier failures not counted")
	}
	stop()
}

func mustHost(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestTwoDaemonsNeverOverlap(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), fixture.Warehouse().NewDB(t)
	lk, err := lake.Open(context.Background(), "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	mk := func() *Daemon {
		return New(Config{Parts: pipeline.Parts{Source: pgtest.Pool(t, source), Warehouse: warehouse.New(pgtest.Pool(t, wh), nil), Lake: lk},
			Schedule: Every(20 * time.Millisecond)})
	}
	a, b := mk(), mk()
	baseA, stopA := serve(t, a)
	_, stopB := serve(t, b)
	// The first run loads the seed, the next ones little: each has its
	// own deadline, so a busy machine's slow first load does not eat the
	// others'.
	eventually(t, "a first run", func() bool { return len(runs(t, baseA)) >= 1 })
	eventually(t, "ten runs", func() bool { // runs that find nothing new share a row
		n := 0
		for _, r := range runs(t, baseA) {
			n += r.Coalesced
		}
		return n >= 10
	})
	stopA()
	stopB()
	rs, err := pipeline.Runs(context.Background(), warehouse.New(pgtest.Pool(t, wh), nil), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.FinishedAt == nil || (r.Outcome != pipeline.Success && r.Outcome != pipeline.Abandoned) {
			t.Fatalf("run %d: %+v", r.ID, r)
		}
		for _, s := range rs[i+1:] {
			if r.StartedAt.Before(*s.FinishedAt) && s.StartedAt.Before(*r.FinishedAt) {
				t.Errorf("runs %d and %d overlap", r.ID, s.ID)
			}
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	t.Parallel()
	d := New(Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
		for range 20 {
			if got := d.backoff(n); got < want/2 || got > want {
				t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, got, want/2, want)
			}
		}
	}
}

// With a token, /runs wants it; the probes and the metrics stay open.
func TestRunsNeedTheToken(t *testing.T) {
	t.Parallel()
	d := New(Config{Token: "s3cret"})
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	do := func(method, path, auth string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/runs", "", http.StatusUnauthorized},
		{"POST", "/runs", "Bearer wrong", http.StatusUnauthorized},
		{"POST", "/runs", "s3cret", http.StatusUnauthorized},
		{"GET", "/runs", "", http.StatusUnauthorized},
		{"POST", "/runs", "Bearer s3cret", http.StatusAccepted},
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/metrics", "", http.StatusOK},
	} {
		if got := do(c.method, c.path, c.auth); got != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.auth, got, c.want)
		}
	}
}
