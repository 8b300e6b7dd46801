package awslambda_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrifictotes/tote/awslambda"
	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/lambdatest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/totesys"
	"github.com/terrifictotes/tote/warehouse"
)

// TestLambda runs the built bootstrap under the Lambda Runtime Interface
// Emulator against real PostgreSQL and the in-process S3 server. The
// subtests run in parallel; each has a deployment (stack) of its own.
func TestLambda(t *testing.T) {
	b := setup(t)
	t.Run("pipeline", func(t *testing.T) { t.Parallel(); testPipeline(t, b) })
	t.Run("timeout", func(t *testing.T) { t.Parallel(); testTimeout(t, b) })
	t.Run("hang", func(t *testing.T) { t.Parallel(); testHang(t, b) })
	t.Run("errors", func(t *testing.T) { t.Parallel(); testErrors(t, b) })
	t.Run("commit race", func(t *testing.T) { t.Parallel(); testCommitRace(t, b) })
	t.Run("warehouse", func(t *testing.T) { t.Parallel(); testWarehouse(t, b) })
	t.Run("state machine", func(t *testing.T) { t.Parallel(); testStateMachine(t, b) })
	t.Run("quarantine alert", func(t *testing.T) { t.Parallel(); testQuarantineAlert(t, b) })
	t.Run("verify", func(t *testing.T) { t.Parallel(); testVerify(t, b) })
}

// testPipeline: extract, transform and load through the handlers build the
// warehouse tote run builds; each invoked twice adds nothing.
func testPipeline(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)
	ext := s.start(t, "extract", time.Minute, nil)
	tr := s.start(t, "transform", time.Minute, nil)
	ld := s.start(t, "load", time.Minute, nil)
	var timings []string
	timed := func(what string, r lambdatest.Result) {
		timings = append(timings, fmt.Sprintf("%s %v (cold %v)", what, r.Duration.Round(time.Millisecond), r.Cold))
	}

	r, e1 := mustInvoke(t, ext, `{"trigger":"schedule"}`)
	timed("extract", r)
	if !r.Cold || !e1.New || len(e1.Batches) != 1 || e1.RowsTotal == 0 || e1.Trigger != "schedule" || e1.Stage != "extract" {
		t.Fatalf("first extract: cold %v, %s", r.Cold, r.Payload)
	}
	checkLogs(t, r)
	r, e2 := mustInvoke(t, ext, string(r.Payload))
	timed("extract again", r)
	if r.Cold || len(e2.Batches) != 0 || e2.RowsTotal != 0 || !e2.New || e2.Pending == nil || e2.Pending.Raw != 1 || e2.LagSeconds != nil {
		t.Errorf("second extract: cold %v, %s; want a warm start, no batch, new because raw batch 1 is not transformed", r.Cold, r.Payload)
	}

	r, t1 := mustInvoke(t, tr, string(r.Payload))
	timed("transform", r)
	if !t1.New || len(t1.Batches) != 1 || t1.RowsTotal == 0 || t1.Trigger != "schedule" {
		t.Fatalf("transform: %s", r.Payload)
	}
	checkLogs(t, r)
	r, t2 := mustInvoke(t, tr, string(r.Payload))
	timed("transform again", r)
	if len(t2.Batches) != 0 || t2.RowsTotal != 0 || !t2.New || t2.Pending == nil || t2.Pending.Processed != 1 {
		t.Errorf("second transform: %s; want no batch, new because processed batch 1 is not loaded", r.Payload)
	}

	r, l1 := mustInvoke(t, ld, string(r.Payload))
	timed("load", r)
	if !l1.New || len(l1.Batches) != 1 || l1.RowsTotal != t1.RowsTotal || l1.LagSeconds == nil {
		t.Fatalf("load: %s", r.Payload)
	}
	checkLogs(t, r)
	wantLag(t, r, "load")
	r, l2 := mustInvoke(t, ld, string(r.Payload))
	timed("load again", r)
	if l2.New || len(l2.Batches) != 0 || l2.RowsTotal != 0 || l2.LagSeconds == nil {
		t.Errorf("second load: %s; want nothing loaded, and the lag", r.Payload)
	}

	got := pgtest.Pool(t, s.warehouseURL)
	sameWarehouse(t, got, s.reference(t))

	// The publish function brings the star's Iceberg tables (SQL catalog in
	// the warehouse, files in the S3 lake) up to the load, once.
	pub := s.start(t, "publish", time.Minute, nil)
	r, p1 := mustInvoke(t, pub, string(r.Payload))
	timed("publish", r)
	if !p1.New || len(p1.Batches) != 1 || p1.Batches[0] != l1.Batches[0] || p1.RowsTotal != starRows(t, got) {
		t.Errorf("publish: %s; want batch %s and the warehouse's %d rows", r.Payload, l1.Batches[0], starRows(t, got))
	}
	checkLogs(t, r)
	r, p2 := mustInvoke(t, pub, `{"trigger":"maintain"}`)
	timed("publish again, and maintain", r)
	if p2.New || len(p2.Batches) != 0 || p2.RowsTotal != 0 || !strings.Contains(r.Logs, "maintained iceberg table") {
		t.Errorf("second publish, trigger maintain: %s; want nothing published, and the tables maintained", r.Payload)
	}
	var snapshots int
	if err := got.QueryRow(t.Context(), `SELECT count(*) FROM tote.iceberg_snapshots WHERE batch_id = $1`, l1.Batches[0]).Scan(&snapshots); err != nil || snapshots != 11 {
		t.Errorf("%d Iceberg snapshots recorded for batch %s (%v), want one per star table", snapshots, l1.Batches[0], err)
	}

	// Everything is loaded now: extract says there is nothing new, and
	// publishes the lag itself, since the state machine stops after it.
	r, e3 := mustInvoke(t, ext, `{}`)
	timed("extract, nothing new", r)
	if e3.New || e3.Pending != nil || e3.LagSeconds == nil || len(e3.Batches) != 0 {
		t.Errorf("extract after the load: %s; want new false, no batch, the lag", r.Payload)
	}
	wantLag(t, r, "extract")
	r, t3 := mustInvoke(t, tr, `{}`)
	timed("transform, nothing new", r)
	if t3.New {
		t.Errorf("transform after the load: %s; want new false", r.Payload)
	}
	var ledger int
	if err := got.QueryRow(t.Context(), `SELECT count(*) FROM tote.load_ledger`).Scan(&ledger); err != nil || ledger != 1 {
		t.Errorf("%d batches in the ledger (%v), want 1", ledger, err)
	}
	var st awslambda.LoadStatus
	if ok, err := s.lake(t).Status(t.Context(), awslambda.LoadStatusName, &st); !ok || err != nil || st.Seq != 1 {
		t.Errorf("load status %+v (found %v, %v), want seq 1", st, ok, err)
	}
	t.Logf("invocations under the emulator (scale 1): %s", strings.Join(timings, "; "))
}

// checkLogs checks one invocation's log: every tote line is JSON with the
// stage and request id, no line shows a password, and the metrics are
// Embedded Metric Format documents in namespace Tote.
func checkLogs(t *testing.T, r lambdatest.Result) {
	t.Helper()
	if strings.Contains(r.Logs, password) {
		t.Errorf("the log shows a database password:\n%s", r.Logs)
	}
	lines := logLines(t, r.Logs)
	if len(lines) == 0 {
		t.Errorf("no JSON log lines in\n%s", r.Logs)
	}
	for _, l := range lines {
		if l["request_id"] != r.RequestID || l["stage"] == nil || l["msg"] == nil || l["level"] == nil {
			t.Errorf("log line %v: want msg, level, stage and request_id %s", l, r.RequestID)
		}
	}
	docs := emf(t, r.Logs)
	if len(docs) == 0 {
		t.Fatalf("no EMF line in\n%s", r.Logs)
	}
	d := docs[0]
	aws, _ := d["_aws"].(map[string]any)
	cw, _ := aws["CloudWatchMetrics"].([]any)
	if len(cw) != 1 {
		t.Fatalf("EMF document %v", d)
	}
	directive, _ := cw[0].(map[string]any)
	metrics, _ := json.Marshal(directive["Metrics"])
	dims, _ := json.Marshal(directive["Dimensions"])
	if directive["Namespace"] != "Tote" || string(dims) != `[["Environment","Stage"]]` ||
		string(metrics) != `[{"Name":"Rows","Unit":"Count"},{"Name":"Deleted","Unit":"Count"},{"Name":"StageSeconds","Unit":"Seconds"},{"Name":"Batches","Unit":"Count"}]` {
		t.Errorf("EMF directive %v", directive)
	}
	if d["Environment"] != "dev" {
		t.Errorf("EMF document's Environment is %v, want the function's TOTE_ENVIRONMENT, dev", d["Environment"])
	}
	for _, k := range []string{"Stage", "Rows", "Deleted", "StageSeconds", "Batches", "Tables"} {
		if _, ok := d[k]; !ok {
			t.Errorf("EMF document lacks %s: %v", k, d)
		}
	}
}

// wantLag checks that the invocation published LagSeconds with Stage=load
// and the stack's environment.
func wantLag(t *testing.T, r lambdatest.Result, by string) {
	t.Helper()
	for _, d := range emf(t, r.Logs) {
		if _, ok := d["LagSeconds"]; ok {
			if d["Stage"] != "load" || d["Environment"] != "dev" || d["ReportedBy"] != by {
				t.Errorf("LagSeconds published as %v", d)
			}
			return
		}
	}
	t.Errorf("no LagSeconds metric in\n%s", r.Logs)
}

// testTimeout: a stage stopped by its timeout mid-stage leaves nothing
// half-committed, and the next invocation carries on. The stages are held
// mid-way by a lock on a table they reach late.
func testTimeout(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)
	ctx := t.Context()
	lk := s.lake(t)

	// Extract, killed by Lambda itself: no margin of its own.
	short := s.start(t, "extract", 2*time.Second, map[string]string{"TOTE_TIMEOUT_MARGIN": "0"})
	last := totesys.Tables[len(totesys.Tables)-1].Name
	release := holdLock(t, s.sourceURL, last, "ACCESS EXCLUSIVE")
	var r lambdatest.Result
	done := make(chan error, 1)
	go func() {
		var err error
		r, err = short.Invoke(ctx, []byte(`{}`))
		done <- err
	}()
	waitForLockWaiters(t, s.source, last, 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.ErrorType != "Sandbox.Timedout" {
		t.Fatalf("extract held past its timeout: %q %s\n%s", r.ErrorType, r.ErrorMessage, r.Logs)
	}
	if !strings.Contains(r.Logs, `"msg":"wrote file"`) || strings.Contains(r.Logs, "committed batch") {
		t.Errorf("extract was not cut mid-stage (some tables' files written, no commit):\n%s", r.Logs)
	}
	if m, err := lk.Latest(ctx, lake.Raw); err != nil || m != nil {
		t.Errorf("after the timeout the lake has raw batch %v (%v), want none", m, err)
	}
	if objects, _, err := lk.Size(ctx); err != nil || objects == 0 {
		t.Errorf("the lake holds %d objects (%v); want the files the cut extraction wrote before it was stopped", objects, err)
	}
	release()
	long := s.start(t, "extract", time.Minute, nil)
	if _, out := mustInvoke(t, long, `{}`); len(out.Batches) != 1 || !strings.HasPrefix(out.Batches[0], "000000000001-") {
		t.Errorf("the next extraction committed %v, want raw batch 1", out.Batches)
	}
	mustInvoke(t, s.start(t, "transform", time.Minute, nil), `{}`)

	// Load, stopping itself just before its timeout, mid-batch: every
	// star table is written in the batch's transaction, but the ledger
	// cannot take its row (SHARE lets the load read the ledger, not write).
	wh, err := warehouse.Open(ctx, s.warehouseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	release = holdLock(t, s.warehouseURL, "tote.load_ledger", "SHARE")
	got := pgtest.Pool(t, s.warehouseURL)
	shortLoad := s.start(t, "load", 3*time.Second, nil)
	go func() {
		var err error
		r, err = shortLoad.Invoke(ctx, []byte(`{}`))
		done <- err
	}()
	// The load waits to insert its ledger row: every star table is
	// written, in the batch's transaction.
	waitForLockWaiters(t, got, "tote.load_ledger", 1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Waiting for a lock another session holds is waiting on a part that
	// does not answer, which may pass: Transient.
	if r.ErrorType != awslambda.Transient || !strings.Contains(r.ErrorMessage, "out of time") ||
		!strings.Contains(r.ErrorMessage, "waiting on the warehouse database, which had not answered for ") {
		t.Fatalf("load held past its timeout: %q %s\n%s", r.ErrorType, r.ErrorMessage, r.Logs)
	}
	for _, tb := range star.Tables {
		if !strings.Contains(r.Logs, `"table":"`+tb.Name+`"`) {
			t.Errorf("load was not cut mid-batch: its log says nothing of %s:\n%s", tb.Name, r.Logs)
		}
	}
	if strings.Contains(r.Logs, "loaded processed batch") {
		t.Errorf("load committed the batch:\n%s", r.Logs)
	}
	release()
	if n := starRows(t, got); n != 0 {
		t.Errorf("after the cut load the warehouse holds %d rows, want none", n)
	}
	var ledger int
	if err := got.QueryRow(ctx, `SELECT count(*) FROM tote.load_ledger`).Scan(&ledger); err != nil || ledger != 0 {
		t.Errorf("after the cut load the ledger lists %d batches (%v), want none", ledger, err)
	}
	mustInvoke(t, s.start(t, "load", time.Minute, nil), `{}`)
	sameWarehouse(t, got, s.reference(t))
}

// testHang: a source, and a lake's S3 endpoint, that accept connections
// and never answer. The invocation ends before its deadline, Transient,
// saying what it waited on; with a connect timeout shorter than the
// function's, that bound ends it, in the line tote run gives.
func testHang(t *testing.T, b *bundle) {
	s := newStack(t, b, 0)
	hole := hangtest.BlackHole(t)
	source := "postgres://postgres:" + password + "@" + hole + "/totesys"
	for _, c := range []struct {
		name, stage string
		env         map[string]string
		want        []string
	}{
		{"source, out of time", "extract", map[string]string{"TOTE_SOURCE_URL": source}, []string{
			"extract: source database postgres://postgres:xxxxx@" + hole + "/totesys: gave up connecting: context deadline exceeded (out of time: stopped after ",
			"before the function's timeout, waiting on the source database, which did not answer while it was being opened; " +
				"nothing of the batch under way is committed and the next run carries on)"}},
		{"source, connect timeout", "extract", map[string]string{"TOTE_SOURCE_URL": source, "TOTE_CONNECT_TIMEOUT": "1s"}, []string{
			"extract: source database postgres://postgres:xxxxx@" + hole +
				"/totesys: the server did not answer as PostgreSQL within 1s (connect timeout): is this the right port?"}},
		{"lake, out of time", "transform", map[string]string{"AWS_ENDPOINT_URL_S3": "http://" + hole}, []string{
			"transform: lake s3://" + b.s3.Bucket + "/" + s.prefix + ": cannot list bucket " + b.s3.Bucket + ": ",
			"waiting on the lake, which did not answer while it was being opened"}},
		{"lake, stall timeout", "transform", map[string]string{"AWS_ENDPOINT_URL_S3": "http://" + hole, "TOTE_STALL_TIMEOUT": "1s"}, []string{
			"transform: lake s3://" + b.s3.Bucket + "/" + s.prefix + ": cannot list bucket " + b.s3.Bucket + ": the S3 endpoint " + hole +
				" sent nothing for 1s (stall timeout): is it the right endpoint, and up?"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := s.start(t, c.stage, 3*time.Second, c.env)
			r, _ := invoke(t, f, `{}`)
			if r.ErrorType != awslambda.Transient {
				t.Fatalf("errorType %q, want Transient (the deadline not reached): %s\n%s", r.ErrorType, r.ErrorMessage, r.Logs)
			}
			if !strings.HasPrefix(r.ErrorMessage, c.want[0]) || !strings.Contains(r.ErrorMessage, c.want[len(c.want)-1]) ||
				strings.Contains(r.ErrorMessage, "\n") || strings.Contains(r.ErrorMessage, password) {
				t.Errorf("message:\n%s\nwant one line with\n%s", r.ErrorMessage, strings.Join(c.want, "\n"))
			}
			t.Logf("%s: ended after %s: %s", c.name, r.Duration.Round(time.Millisecond), r.ErrorMessage)
		})
	}
}

// testErrors: the errorTypes the state machine expects, from real parts.
func testErrors(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)

	// Nothing listens on port 1.
	down := s.start(t, "extract", time.Minute, map[string]string{
		"TOTE_SOURCE_URL": "postgres://postgres:" + password + "@127.0.0.1:1/totesys?sslmode=disable&connect_timeout=5"})
	r, _ := invoke(t, down, `{}`)
	if r.ErrorType != awslambda.Transient || !strings.HasPrefix(r.ErrorMessage, "extract: source database") ||
		!strings.Contains(r.ErrorMessage, "unreachable") || strings.Contains(r.ErrorMessage, password) {
		t.Errorf("unreachable source: %q %q; want Transient, naming the stage and the database, no password", r.ErrorType, r.ErrorMessage)
	}

	// A missing secret is Fatal.
	missing := s.start(t, "extract", time.Minute, map[string]string{"TOTE_SOURCE_URL": "secretsmanager://tote/nope"})
	r, _ = invoke(t, missing, `{}`)
	if r.ErrorType != awslambda.Fatal || !strings.Contains(r.ErrorMessage, `"tote/nope" not found`) {
		t.Errorf("missing secret: %q %q", r.ErrorType, r.ErrorMessage)
	}

	// A misconfigured function is Fatal, naming the setting.
	bad := s.start(t, "load", time.Minute, map[string]string{"TOTE_WAREHOUSE_URL": "", "TOTE_LAG_THRESHOLD": "soon"})
	r, _ = invoke(t, bad, `{}`)
	if r.ErrorType != awslambda.Fatal || !strings.Contains(r.ErrorMessage, "TOTE_WAREHOUSE_URL is not set") ||
		!strings.Contains(r.ErrorMessage, `TOTE_LAG_THRESHOLD="soon"`) {
		t.Errorf("misconfigured: %q %q", r.ErrorType, r.ErrorMessage)
	}

	// A source column the star reads, retyped: Fatal, naming table and
	// column. (A new column is carried instead: decision 0018.)
	ext := s.start(t, "extract", time.Minute, nil)
	if _, err := s.source.Exec(t.Context(), `ALTER TABLE sales_order ALTER COLUMN units_sold TYPE bigint`); err != nil {
		t.Fatal(err)
	}
	r, _ = invoke(t, ext, `{}`)
	if r.ErrorType != awslambda.Fatal || !strings.HasPrefix(r.ErrorMessage, "extract: ") ||
		!strings.Contains(r.ErrorMessage, "sales_order.units_sold: type changed from integer NOT NULL to bigint NOT NULL") {
		t.Errorf("drifted source: %q %q; want Fatal naming sales_order.units_sold", r.ErrorType, r.ErrorMessage)
	}
	if m, err := s.lake(t).Latest(t.Context(), lake.Raw); err != nil || m != nil {
		t.Errorf("the drifted extraction committed %v (%v)", m, err)
	}
}

// testCommitRace: two extractions at once plan the same raw batch; the one
// that commits second loses the race: RunInProgress, nothing doubled.
func testCommitRace(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)
	one := s.start(t, "extract", time.Minute, map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "tote-extract-1"})
	two := s.start(t, "extract", time.Minute, map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "tote-extract-2"})
	last := totesys.Tables[len(totesys.Tables)-1].Name
	release := holdLock(t, s.sourceURL, last, "ACCESS EXCLUSIVE")
	var wg sync.WaitGroup
	results := make([]lambdatest.Result, 2)
	errs := make([]error, 2)
	for i, f := range []*lambdatest.Function{one, two} {
		wg.Go(func() { results[i], errs[i] = f.Invoke(t.Context(), []byte(`{}`)) })
	}
	waitForLockWaiters(t, s.source, last, 2)
	release()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	types := []string{results[0].ErrorType, results[1].ErrorType}
	slices.Sort(types)
	if !slices.Equal(types, []string{"", awslambda.RunInProgress}) {
		t.Fatalf("error types %q; want one success and one RunInProgress\n%s\n%s", types, results[0].Payload, results[1].Payload)
	}
	for _, r := range results {
		if r.Failed() && !strings.Contains(r.ErrorMessage, "another extraction committed raw batch 1 first") {
			t.Errorf("the loser says %q", r.ErrorMessage)
		}
	}
	batches, err := s.lake(t).Batches(t.Context(), lake.Raw)
	if err != nil || len(batches) != 1 {
		t.Errorf("%d raw batches (%v), want 1", len(batches), err)
	}
}

// testWarehouse: another run holding the warehouse's run lock is reported
// as RunInProgress; a rotated secret takes effect without a cold start.
func testWarehouse(t *testing.T, b *bundle) {
	s := newStack(t, b, 0)
	old := s.warehouseURL
	rotated := withPassword(t, pgtest.NewDB(t))
	v1 := awstest.SecretsManager(t, map[string]string{"tote/warehouse-url": old})
	v2 := awstest.SecretsManager(t, map[string]string{"tote/warehouse-url": rotated})
	front := startSecretsFront(t, v1)
	ld := s.start(t, "load", time.Minute, map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": front.URL, "TOTE_WAREHOUSE_URL": "secretsmanager://tote/warehouse-url"})

	mustInvoke(t, ld, `{}`)
	if r, _ := mustInvoke(t, ld, `{}`); r.Cold || front.reads.Load() != 1 {
		t.Errorf("two invocations read the secret %d times (the second cold: %v); want once, kept warm", front.reads.Load(), r.Cold)
	}
	wh, err := warehouse.Open(t.Context(), old, nil)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := pipeline.LockRun(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := invoke(t, ld, `{}`)
	if r.ErrorType != awslambda.RunInProgress || !strings.Contains(r.ErrorMessage, "another tote run is in progress") {
		t.Errorf("load beside a run: %q %q; want RunInProgress", r.ErrorType, r.ErrorMessage)
	}
	unlock()
	wh.Close()
	mustInvoke(t, ld, `{}`)
	readsBefore := front.reads.Load()

	// Rotate: the secret now names another database, and the old one goes.
	front.use(t, v2)
	dropDatabase(t, old)
	r, _ = invoke(t, ld, `{}`)
	if !r.Failed() {
		t.Fatalf("load on a dropped database succeeded: %s", r.Payload)
	}
	r, out := mustInvoke(t, ld, `{}`)
	if r.Cold {
		t.Errorf("the function started cold after the failure; want the same warm process to read the secret again")
	}
	if got := front.reads.Load() - readsBefore; got != 1 {
		t.Errorf("%d secret reads after the rotation, want 1 (after the failure, not before)", got)
	}
	var migrated bool
	if err := pgtest.Pool(t, rotated).QueryRow(t.Context(), `SELECT to_regclass('tote.load_ledger') IS NOT NULL`).Scan(&migrated); err != nil || !migrated {
		t.Errorf("the load did not reach the rotated database (%v); output %+v", err, out)
	}
}
