package daemon

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/replication"
)

// metricLines returns the lines of /metrics that start with prefix.
func metricLines(t *testing.T, d *Daemon, prefix string) string {
	t.Helper()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The slot's health after each check: metrics, and one alert per problem
// with one message when it is healthy again.
func TestSlotHealthMetricsAndAlerts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: map[string]string{"wal_level": "logical"}})
	source := pgtest.Pool(t, c.URL())
	lk, err := lake.Open(ctx, "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	// The lake's last extraction read the source a minute ago: the lag in
	// time counts from then.
	if err := lk.PutStatus(ctx, extract.StatusName, extract.Status{ReadAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	h, inc := webhookIncidents(t)
	d := New(Config{Parts: pipeline.Parts{Source: source, Lake: lk}, Incidents: inc,
		Slot: &replication.Config{SlotName: "tote_d"}, SlotLagThreshold: 1 << 20})

	if xmin := New(Config{}); metricLines(t, xmin, "tote_slot_") != "" {
		t.Error("a daemon without a slot shows slot metrics")
	}

	check := func(wantProblem string) {
		t.Helper()
		hl, err := d.CheckSlot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if hl.Problem != wantProblem {
			t.Fatalf("problem %q, want %q: %+v", hl.Problem, wantProblem, hl)
		}
	}
	check(replication.ProblemMissing)
	check(replication.ProblemMissing)
	if n := h.Count("replication slot tote_d: missing"); n != 1 || !strings.Contains(metricLines(t, d, "tote_slot_wal_status"), `tote_slot_wal_status{status="missing"} 1`) {
		t.Fatalf("%d missing alerts; metrics %s", n, metricLines(t, d, "tote_slot_"))
	}

	if _, err := source.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote_d', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	check("")
	if h.Count("replication slot tote_d is healthy again") != 1 {
		t.Fatalf("no recovery: %q", h.Texts())
	}
	m := metricLines(t, d, "tote_slot_")
	for _, want := range []string{`tote_slot_wal_status{status="reserved"} 1`, `tote_slot_wal_status{status="missing"} 0`,
		"tote_slot_safe_wal_bytes -1", "tote_slot_active 0", "tote_slot_lag_seconds 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}

	// Over the threshold: one lag alert, however many checks.
	if _, err := source.Exec(ctx, `CREATE TABLE filler AS SELECT g, repeat('x', 900) AS pad FROM generate_series(1, 3000) g; CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	check(replication.ProblemLag)
	check(replication.ProblemLag)
	if n := h.Count("replication slot tote_d: lag"); n != 1 || h.Count("of WAL unconfirmed") != 1 {
		t.Errorf("%d lag alerts: %q", n, h.Texts())
	}
	if m := metricLines(t, d, "tote_slot_lag_bytes"); !strings.HasPrefix(m, "tote_slot_lag_bytes 2.") && !strings.HasPrefix(m, "tote_slot_lag_bytes 3.") {
		t.Errorf("lag bytes: %s", m)
	}
	if hl := d.LastSlot(); hl == nil || hl.Lag < time.Minute || hl.LagFrom != replication.LagByLastConfirmed {
		t.Errorf("lag in time: %+v", hl)
	}
}

// A slot the server invalidates (past max_slot_wal_keep_size) is one
// "lost" alert and gauge; replaced (as the extraction's fallback does),
// one recovery.
func TestSlotLostAlertsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := pgtest.Cluster(t, pgcluster.Options{Settings: map[string]string{"wal_level": "logical", "max_slot_wal_keep_size": "1MB"}})
	source := pgtest.Pool(t, c.URL())
	h, inc := webhookIncidents(t)
	d := New(Config{Parts: pipeline.Parts{Source: source}, Incidents: inc, Slot: &replication.Config{}})
	if _, err := source.Exec(ctx, `SELECT pg_create_logical_replication_slot('tote', 'pgoutput');
		CREATE TABLE filler (g int, pad text)`); err != nil {
		t.Fatal(err)
	}
	var hl replication.SlotHealth
	var err error
	for i := 0; i < 20 && hl.WALStatus != "lost"; i++ {
		if _, err := source.Exec(ctx, `INSERT INTO filler SELECT g, repeat('x', 900) FROM generate_series(1, 10000) g;
			SELECT pg_switch_wal(); CHECKPOINT`); err != nil {
			t.Fatal(err)
		}
		if hl, err = d.CheckSlot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.CheckSlot(ctx); err != nil {
		t.Fatal(err)
	}
	if hl.Problem != replication.ProblemLost || h.Count("replication slot tote: lost") != 1 || h.Count("full extraction") != 1 ||
		!strings.Contains(metricLines(t, d, "tote_slot_wal_status"), `tote_slot_wal_status{status="lost"} 1`) {
		t.Fatalf("lost slot: %+v\nalerts %q\n%s", hl, h.Texts(), metricLines(t, d, "tote_slot_"))
	}
	if _, err := source.Exec(ctx, `SELECT pg_drop_replication_slot('tote'); SELECT pg_create_logical_replication_slot('tote', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CheckSlot(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Count("replication slot tote is healthy again") != 1 {
		t.Errorf("after the slot is replaced: %q", h.Texts())
	}
}
