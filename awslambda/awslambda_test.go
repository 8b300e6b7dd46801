package awslambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/terrifictotes/tote/awslambda"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/simulate"
)

// handler is a Handler run in the test's process, with its environment,
// logs and metrics in the test's hands.
type handler struct {
	*awslambda.Handler
	stdout, stderr *syncBuffer
}

func newHandler(env map[string]string) *handler {
	h := &handler{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	h.Handler = awslambda.New(awslambda.Env{
		Getenv: func(k string) string { return env[k] },
		Stdout: h.stdout, Stderr: h.stderr,
	})
	return h
}

// invoke invokes the handler as Lambda would, with a request id and a
// deadline a minute away.
func (h *handler) invoke(t *testing.T, event string) (awslambda.Output, error) {
	t.Helper()
	ctx := lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: "req-" + t.Name()})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return h.Invoke(ctx, json.RawMessage(event))
}

func (h *handler) mustInvoke(t *testing.T, event string) awslambda.Output {
	t.Helper()
	out, err := h.invoke(t, event)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, h.stderr)
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestConfig: a missing or bad setting fails every invocation with a
// Fatal error that names it, and does not crash the function.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"TOTE_LAKE_URL": "mem://"}, []string{"configuration: TOTE_STAGE is not set"}},
		{map[string]string{"TOTE_STAGE": "deploy", "TOTE_LAKE_URL": "mem://"}, []string{`TOTE_STAGE="deploy": want extract, transform, load, verify, publish or clean`}},
		{map[string]string{"TOTE_STAGE": "publish", "TOTE_LAKE_URL": "mem://", "TOTE_ICEBERG_CATALOG": "hive://x", "TOTE_ICEBERG_RETAIN": "weekly"},
			[]string{"publish: configuration: TOTE_WAREHOUSE_URL is not set", `TOTE_ICEBERG_CATALOG="hive://x"`, `TOTE_ICEBERG_RETAIN="weekly"`}},
		{map[string]string{"TOTE_STAGE": "extract", "TOTE_LAKE_URL": "mem://"}, []string{"extract: configuration: TOTE_SOURCE_URL is not set"}},
		{map[string]string{"TOTE_STAGE": "load", "TOTE_LAKE_URL": "mem://"}, []string{"load: configuration: TOTE_WAREHOUSE_URL is not set"}},
		{map[string]string{"TOTE_STAGE": "verify", "TOTE_LAKE_URL": "mem://", "TOTE_WAREHOUSE_URL": "postgres://wh"},
			[]string{"verify: configuration: TOTE_SOURCE_URL is not set"}},
		{map[string]string{"TOTE_STAGE": "transform"}, []string{"TOTE_LAKE_URL is not set"}},
		{map[string]string{"TOTE_STAGE": "transform", "TOTE_LAKE_URL": "mem://", "TOTE_STRICT": "maybe",
			"TOTE_S3_PATH_STYLE": "yes please", "TOTE_LAG_THRESHOLD": "-1m", "TOTE_TIMEOUT_MARGIN": "soon",
			"TOTE_LOG_FORMAT": "xml", "TOTE_LOG_LEVEL": "loud", "TOTE_CONNECT_TIMEOUT": "10", "TOTE_STALL_TIMEOUT": "-1s",
			"TOTE_CLEAN_GRACE": "daily", "TOTE_CAPTURE": "wal", "TOTE_SLOT": "Tote-Slot"},
			[]string{`TOTE_STRICT="maybe"`, `TOTE_S3_PATH_STYLE="yes please"`, `TOTE_LAG_THRESHOLD="-1m"`,
				`TOTE_TIMEOUT_MARGIN="soon"`, `TOTE_LOG_FORMAT="xml"`, `TOTE_LOG_LEVEL="loud"`,
				`TOTE_CONNECT_TIMEOUT="10"`, `TOTE_STALL_TIMEOUT="-1s"`, `TOTE_CLEAN_GRACE="daily"`,
				`TOTE_CAPTURE="wal": want xmin or logical`, `replication slot name "Tote-Slot"`}},
	} {
		h := newHandler(c.env)
		for range 2 {
			_, err := h.invoke(t, `{}`)
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != awslambda.Fatal {
				t.Errorf("env %v: error %#v, want a Fatal messages.InvokeResponse_Error", c.env, err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(ie.Message, w) {
					t.Errorf("env %v: message %q lacks %q", c.env, ie.Message, w)
				}
			}
		}
		if !strings.Contains(h.stderr.String(), `"level":"ERROR"`) {
			t.Errorf("env %v: the failure is not logged:\n%s", c.env, h.stderr)
		}
	}
}

// TestNew follows Output.New through the states a deployment passes
// through: the state machine must go on whenever transform or load has
// work, and stop, publishing the lag, only when everything is loaded.
func TestNew(t *testing.T) {
	t.Parallel()
	src, wh := fixture.Source(1, 1).NewDB(t), pgtest.NewDB(t)
	pool := pgtest.Pool(t, src)
	lakeURL := "file://" + t.TempDir()
	env := func(stage string) map[string]string {
		return map[string]string{"TOTE_STAGE": stage, "TOTE_LAKE_URL": lakeURL, "TOTE_SOURCE_URL": src, "TOTE_WAREHOUSE_URL": wh}
	}
	ext, tr, ld := newHandler(env("extract")), newHandler(env("transform")), newHandler(env("load"))

	type want struct {
		new        bool
		batches    int
		raw, proc  uint64
		lagEmitted bool
	}
	check := func(step string, h *handler, out awslambda.Output, w want) {
		t.Helper()
		var p awslambda.Pending
		if out.Pending != nil {
			p = *out.Pending
		}
		if out.New != w.new || len(out.Batches) != w.batches || p.Raw != w.raw || p.Processed != w.proc || p.Unknown != "" ||
			(out.LagSeconds != nil) != w.lagEmitted {
			b, _ := json.Marshal(out)
			t.Errorf("%s: %s; want new %v, %d batches, pending raw %d processed %d, lag %v", step, b, w.new, w.batches, w.raw, w.proc, w.lagEmitted)
		}
		lines := strings.Split(strings.TrimSpace(h.stdout.String()), "\n")
		last := lines[len(lines)-1]
		if hasLag := strings.Contains(last, `"LagSeconds"`); hasLag != w.lagEmitted {
			t.Errorf("%s: last metrics line %s; want LagSeconds %v", step, last, w.lagEmitted)
		}
	}

	check("first extract", ext, ext.mustInvoke(t, `{"trigger":"schedule"}`), want{new: true, batches: 1})
	check("extract, raw batch 1 not transformed", ext, ext.mustInvoke(t, `{}`), want{new: true, raw: 1})
	check("transform", tr, tr.mustInvoke(t, `{}`), want{new: true, batches: 1})
	check("transform again, processed batch 1 not loaded", tr, tr.mustInvoke(t, `{}`), want{new: true, proc: 1})
	check("extract, processed batch 1 not loaded", ext, ext.mustInvoke(t, `{}`), want{new: true, proc: 1})
	check("load", ld, ld.mustInvoke(t, `{}`), want{new: true, batches: 1, lagEmitted: true})
	// Any JSON will do as an event, not only an object.
	check("extract, all loaded", ext, ext.mustInvoke(t, `["not", "an", "object"]`), want{lagEmitted: true})
	check("transform, all loaded", tr, tr.mustInvoke(t, `{}`), want{})
	check("load, nothing to load", ld, ld.mustInvoke(t, `{}`), want{lagEmitted: true})

	// New rows: two extractions, then a transform of both and a load.
	if _, err := simulate.Run(t.Context(), pool, simulate.Options{Rate: 1e6, Events: 20, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	check("extract of new rows", ext, ext.mustInvoke(t, `{}`), want{new: true, batches: 1})
	if _, err := simulate.Run(t.Context(), pool, simulate.Options{Rate: 1e6, Events: 20, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	check("extract of more new rows", ext, ext.mustInvoke(t, `{}`), want{new: true, batches: 1})
	check("transform of both", tr, tr.mustInvoke(t, `{}`), want{new: true, batches: 2})
	check("extract, two processed batches not loaded", ext, ext.mustInvoke(t, `{}`), want{new: true, proc: 2})
	check("load of both", ld, ld.mustInvoke(t, `{}`), want{new: true, batches: 2, lagEmitted: true})
	check("extract, all loaded again", ext, ext.mustInvoke(t, `{}`), want{lagEmitted: true})

	// A deletion alone: a batch of its own through every stage, counted.
	if _, err := pool.Exec(t.Context(), `DELETE FROM payment WHERE payment_id = 5`); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		h     *handler
		table string
	}{{ext, "payment"}, {tr, "fact_payment"}, {ld, "fact_payment"}} {
		out := s.h.mustInvoke(t, `{}`)
		if b, _ := json.Marshal(out); !out.New || len(out.Batches) != 1 || out.DeletedTotal != 1 || out.Deleted[s.table] != 1 ||
			!strings.Contains(s.h.stdout.String(), `"Deleted":1`) {
			t.Errorf("%s of a deletion: %s; want a batch, and %s 1 deleted in the output and its metrics", out.Stage, b, s.table)
		}
	}

	// Logs: JSON, with the stage and the request id on every line.
	for _, line := range strings.Split(strings.TrimSpace(ext.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["stage"] != "extract" || m["request_id"] != "req-"+t.Name() {
			t.Errorf("log line %s: want JSON with the stage and the request id (%v)", line, err)
		}
	}
}

// TestClean: the clean function deletes, in both zones, the files of
// batches that failed invocations left uncommitted, once past the grace
// period, and nothing committed.
func TestClean(t *testing.T) {
	t.Parallel()
	lakeURL := "file://" + t.TempDir()
	lk, err := lake.Open(t.Context(), lakeURL, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	write := func(zone lake.Zone, seq uint64, table string, commit bool) {
		t.Helper()
		b := lk.NewBatch(zone, seq, time.Now())
		f, err := b.Create(t.Context(), table)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("rows"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if commit {
			if _, err := b.Commit(t.Context(), "test", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(lake.Raw, 1, "staff", true)
	write(lake.Raw, 2, "staff", false)
	write(lake.Processed, 1, "dim_staff", false)

	env := map[string]string{"TOTE_STAGE": "clean", "TOTE_LAKE_URL": lakeURL}
	if out := newHandler(env).mustInvoke(t, `{}`); out.Removed != 0 || out.Stage != awslambda.Clean {
		t.Errorf("within the grace period: %+v, want nothing removed", out)
	}
	env["TOTE_CLEAN_GRACE"] = "0s"
	h := newHandler(env)
	if out := h.mustInvoke(t, `{"trigger":"schedule"}`); out.Removed != 2 {
		t.Errorf("removed %d, want the two uncommitted files:\n%s", out.Removed, h.stderr)
	}
	if objects, _, err := lk.Size(t.Context()); err != nil || objects != 3 {
		t.Errorf("%d objects left (%v), want raw batch 1's file, its manifest and the hint", objects, err)
	}
}
