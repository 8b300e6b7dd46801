package web

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/warehouse"
)

// The pipeline view lists a row of runs that found nothing new once, with
// how many runs it stands for; its newest run is the last run, and an
// alert sent about one is listed against its row.
func TestPipelineViewCountsQuietRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pgtest.Pool(t, fixture.Source(1, 7).NewDB(t))
	pool := pgtest.Pool(t, fixture.Warehouse().NewDB(t))
	wh := warehouse.New(pool, nil)
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	p := pipeline.Parts{Source: src, Warehouse: wh, Lake: lk}
	var last pipeline.Record
	for range 4 { // the seed, then three runs that find nothing new
		rec, err := pipeline.Begin(ctx, p, "schedule", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rec.Pass(ctx, pipeline.Options{})
		if last, err = rec.Finish(ctx, err); err != nil {
			t.Fatal(err)
		}
	}
	if err := pipeline.RecordNotifications(ctx, wh, last.ID, []pipeline.Notification{{Notifier: "webhook", Kind: "lag", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Pool: pool, Warehouse: wh, Lake: lk})
	if err != nil {
		t.Fatal(err)
	}
	w := get(t, srv, "/api/pipeline")
	var v PipelineView
	if err := json.Unmarshal(w.Body.Bytes(), &v); w.Code != 200 || err != nil {
		t.Fatalf("/api/pipeline: %d %v %s", w.Code, err, w.Body)
	}
	if len(v.Runs) != 2 {
		t.Fatalf("the seed's run and three quiet runs make %d rows: %+v", len(v.Runs), v.Runs)
	}
	if r := v.Runs[0]; r.ID != last.ID || !r.Quiet || r.Coalesced != 3 || r.FirstID != last.ID-2 || r.FirstStartedAt == nil ||
		r.Outcome != pipeline.Success || len(r.Stages) != 3 {
		t.Errorf("the newest row: %+v", r)
	}
	if r := v.Runs[1]; r.Quiet || r.Coalesced != 1 || len(r.Batches) == 0 || r.Stages[2].Rows == 0 {
		t.Errorf("the seed's run: %+v", r)
	}
	if len(v.Alerts) != 1 || v.Alerts[0].Run != last.ID || v.Alerts[0].Kind != "lag" {
		t.Errorf("alerts: %+v", v.Alerts)
	}
}
