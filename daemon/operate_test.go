package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/hooktest"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/verify"
)

// webhookIncidents is alerting to one webhook, whose messages h keeps.
func webhookIncidents(t *testing.T) (*hooktest.Hook, *alert.Incidents) {
	t.Helper()
	h := hooktest.Start(t)
	return h, &alert.Incidents{Notifiers: []alert.Named{{Name: "webhook", Notifier: alert.Webhook{URL: h.URL}}}}
}

// alertingDaemon is a daemon configured as cfg over a seeded source, a new
// warehouse and a lake, alerting to one webhook whose messages h keeps.
func alertingDaemon(t *testing.T, cfg Config) (d *Daemon, p pipeline.Parts, h *hooktest.Hook) {
	t.Helper()
	h, cfg.Incidents = webhookIncidents(t)
	cfg.Parts = parts(t, seededSource(t), fixture.Warehouse().NewDB(t))
	return New(cfg), cfg.Parts, h
}

// startedDaemon is an alertingDaemon of the default configuration after
// its first run (at startup), which loaded the seeded source.
func startedDaemon(t *testing.T) (d *Daemon, p pipeline.Parts, h *hooktest.Hook) {
	t.Helper()
	d, p, h = alertingDaemon(t, Config{})
	if _, err := d.RunOnce(context.Background(), TriggerStartup); err != nil {
		t.Fatal(err)
	}
	return d, p, h
}

// sourceExec runs each statement on the source of p, in order.
func sourceExec(t *testing.T, p pipeline.Parts, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := p.Source.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// A run that quarantines rows succeeds and sends one alert naming them;
// the run's record keeps the alert's deliveries and its attempts.
func TestQuarantineAlertNamesTheRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, p, h := startedDaemon(t)
	sourceExec(t, p,
		`UPDATE sales_order SET agreed_delivery_date = 'soon', last_updated = now() WHERE sales_order_id = 7`,
		`INSERT INTO currency (currency_code, last_updated) VALUES ('XYZ', now())`,
	)
	run, err := d.RunOnce(ctx, TriggerSchedule)
	if err != nil || run.Outcome != pipeline.Success {
		t.Fatalf("the run with bad values: %v, %+v", err, run)
	}
	if n := h.Count("quarantined 2 rows"); n != 1 {
		t.Fatalf("%d quarantine alerts, want 1: %q", n, h.Texts())
	}
	for _, want := range []string{`sales_order 7: agreed_delivery_date "soon" is not a date`, `currency 4: currency_code "XYZ" is not an ISO 4217 currency code`} {
		if h.Count(want) != 1 {
			t.Errorf("the alert does not name %q: %q", want, h.Texts())
		}
	}
	recs, err := pipeline.Runs(ctx, p.Warehouse, 1)
	if err != nil || len(recs) != 1 || recs[0].Attempts != 1 || len(recs[0].Notifications) != 1 ||
		recs[0].Notifications[0].Kind != string(alert.Quarantine) || recs[0].Notifications[0].Error != "" {
		t.Errorf("the run's record: %+v (%v)", recs, err)
	}
	// A run with nothing new sends nothing more.
	if _, err := d.RunOnce(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	if n := h.Count("quarantined"); n != 1 {
		t.Errorf("%d quarantine alerts after a quiet run, want 1", n)
	}
}

// A column added to a source table does not stop the pipeline: the run
// succeeds, the warehouse gets the rows changed since, and one alert names
// each new column, once, not on every run.
func TestNewColumnAlertsOnceAndTheRunGoesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, p, h := startedDaemon(t)
	sourceExec(t, p,
		`ALTER TABLE sales_order ADD COLUMN discount numeric(5,2)`,
		`ALTER TABLE design ADD COLUMN colour text`,
		`UPDATE sales_order SET discount = 5, units_sold = 4242, last_updated = now() WHERE sales_order_id = 7`,
	)
	for i := range 2 {
		run, err := d.RunOnce(ctx, TriggerSchedule)
		if err != nil || run.Outcome != pipeline.Success {
			t.Fatalf("run %d after the new columns: %v, %+v", i, err, run)
		}
	}
	var units int
	if err := p.Warehouse.Pool().QueryRow(ctx, `SELECT units_sold FROM fact_sales_order_current WHERE sales_order_id = 7`).Scan(&units); err != nil || units != 4242 {
		t.Errorf("the warehouse has units_sold %d (%v) for the order changed with the new column, want 4242", units, err)
	}
	for _, want := range []string{"new column, design.colour text NULL:", "new column, sales_order.discount numeric(5,2) NULL:"} {
		if n := h.Count(want); n != 1 {
			t.Errorf("%d alerts naming %q, want 1: %q", n, want, h.Texts())
		}
	}
	if n := h.Count("new column"); n != 2 {
		t.Errorf("%d new column alerts, want 2: %q", n, h.Texts())
	}
}

// A freshly seeded source, whose newest change is years old, is not stale:
// lag is measured from the last read of the source, not from stamps. When
// extraction keeps failing past the threshold, one stale alert is sent,
// then one recovery when it works again.
func TestLagIsNotAge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	source, wh := seededSource(t), fixture.Warehouse().NewDB(t)
	h, inc := webhookIncidents(t)
	px := startProxy(t, mustHost(t, source))
	p := parts(t, px.via(t, source), wh)
	// The clock jumps ahead while the source is away, rather than the test
	// waiting out the threshold.
	var ahead atomic.Int64
	d := New(Config{Parts: p, LagThreshold: time.Minute, Retries: 0,
		Incidents: inc,
		Now:       func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	if _, err := d.RunOnce(ctx, TriggerStartup); err != nil {
		t.Fatal(err)
	}
	if len(h.Texts()) != 0 {
		t.Fatalf("alerts after a first run on an old seed: %q", h.Texts())
	}
	px.set(true) // the source goes away: extraction fails
	ahead.Store(int64(2 * time.Minute))
	for range 2 {
		if _, err := d.RunOnce(ctx, TriggerSchedule); err == nil {
			t.Fatal("a run succeeded without its source")
		}
	}
	if h.Count("behind the source") != 1 || h.Count("run 2 failed") != 1 {
		t.Fatalf("want one stale and one failure alert: %q", h.Texts())
	}
	px.set(false)
	ahead.Store(0)
	if _, err := d.RunOnce(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	if h.Count("caught up with the source") != 1 || h.Count("recovered") != 1 {
		t.Errorf("want one catch-up and one recovery: %q", h.Texts())
	}
}

// The daemon's verify alerts once when the warehouse differs from the
// source, and once more when they match again.
func TestVerifyAlertsOnADifference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, p, h := startedDaemon(t)
	if res, err := d.VerifyOnce(ctx); err != nil || res.Differences() != 0 {
		t.Fatalf("verify after a run: %d differences (%v)", res.Differences(), err)
	}
	// By hand, past the foreign keys that would refuse it.
	if _, err := p.Warehouse.Pool().Exec(ctx, `SET session_replication_role = replica;
		DELETE FROM dim_staff WHERE staff_id = 2; RESET session_replication_role`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if res, err := d.VerifyOnce(ctx); err != nil || res.Differences() != 1 {
			t.Fatalf("verify after a deletion: %d differences (%v)", res.Differences(), err)
		}
	}
	if h.Count("verify found 1 rows that differ") != 1 || h.Count("dim_staff: 1 missing") != 1 {
		t.Fatalf("want one difference alert naming dim_staff: %q", h.Texts())
	}
	res, _ := d.VerifyOnce(ctx)
	if _, err := verify.Repair(ctx, p, res, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := d.VerifyOnce(ctx); err != nil || res.Differences() != 0 {
		t.Fatalf("verify after the repair: %d differences (%v)", res.Differences(), err)
	}
	if h.Count("matches the source again") != 1 {
		t.Errorf("want one match alert: %q", h.Texts())
	}
}

// A drifted source schema is not retried with backoff (trying again cannot
// help): the run fails after one attempt and alerts at once, and the next
// scheduled run, failing the same way, sends nothing more.
func TestDriftIsNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, p, h := alertingDaemon(t, Config{Retries: 3, Backoff: 10 * time.Millisecond})
	if _, err := p.Source.Exec(ctx, `ALTER TABLE staff RENAME COLUMN email_address TO email`); err != nil {
		t.Fatal(err)
	}
	for _, trigger := range []string{TriggerStartup, TriggerSchedule} {
		run, err := d.RunOnce(ctx, trigger)
		var drift *extract.DriftError
		if !errors.As(err, &drift) || run.Outcome != pipeline.Failure || run.Attempts != 1 {
			t.Fatalf("%s run: %v, outcome %q after %d attempts; want the drift, a failure, 1 attempt", trigger, err, run.Outcome, run.Attempts)
		}
	}
	if n := h.Count("failed in extract"); n != 1 {
		t.Errorf("%d failure alerts for one drift, want 1: %q", n, h.Texts())
	}
	if n := h.Count("staff.email_address: column dropped"); n != 1 {
		t.Errorf("the alert does not name the dropped column: %q", h.Texts())
	}
}
