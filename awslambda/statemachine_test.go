package awslambda_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/awslambda"
	"github.com/terrifictotes/tote/internal/lambdatest"
	"github.com/terrifictotes/tote/simulate"
)

// testStateMachine runs the deployed state machine definition locally, its
// Lambda tasks routed to the four real functions: a run, a run with
// nothing new, a run whose source refuses connections for a moment, and a
// run that meets a drifted source.
func testStateMachine(t *testing.T, b *bundle) {
	lambdatest.StepFunctionsDir(t) // skip before starting anything without node
	s := newStack(t, b, 1)
	// The source behind a proxy that can refuse connections.
	proxy := startProxy(t, hostPort(t, s.sourceURL))
	s.env["TOTE_SOURCE_URL"] = viaProxy(t, s.sourceURL, proxy)
	funcs := map[string]*lambdatest.Function{}
	routes := map[string]string{}
	for _, state := range []string{"Extract", "Transform", "Load", "Publish"} {
		f := s.start(t, strings.ToLower(state), time.Minute, nil)
		funcs[state], routes[state] = f, f.URL()
	}
	run := func(t *testing.T) lambdatest.Execution {
		t.Helper()
		e := lambdatest.RunStateMachine(t, lambdatest.StateMachineOptions{Routes: routes, Input: map[string]string{"trigger": "schedule"},
			RetryWait: 300 * time.Millisecond})
		var ms []string
		for _, c := range e.Calls {
			ms = append(ms, c.State+" "+time.Duration(c.MS*int64(time.Millisecond)).String()+" "+c.ErrorType)
		}
		t.Logf("%s in %v (node included): states %v; calls %v", e.Status, e.Elapsed.Round(time.Millisecond), e.States, ms)
		return e
	}
	wantStates := func(t *testing.T, e lambdatest.Execution, want ...string) {
		t.Helper()
		if !slices.Equal(e.States, want) {
			t.Errorf("states %v, want %v\n%s", e.States, want, e.Log)
		}
	}

	// Subtests in order: each carries on from the one before.
	t.Run("happy path", func(t *testing.T) {
		e := run(t)
		wantStates(t, e, "Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Publish", "Done")
		var out awslambda.Output
		if err := json.Unmarshal(e.Output, &out); err != nil {
			t.Fatal(err)
		}
		if e.Status != "SUCCEEDED" || out.Stage != "load" || len(out.Batches) != 1 || out.RowsTotal == 0 || out.Trigger != "schedule" {
			t.Errorf("%s (%s: %s), output %s; want SUCCEEDED and load's output, one batch", e.Status, e.Error, e.Cause, e.Output)
		}
		if len(e.SNS) != 0 {
			t.Errorf("published %+v", e.SNS)
		}
	})

	t.Run("nothing new", func(t *testing.T) {
		e := run(t)
		wantStates(t, e, "Extract", "AnythingNew", "NothingNew")
		if e.Status != "SUCCEEDED" {
			t.Errorf("%s (%s: %s)", e.Status, e.Error, e.Cause)
		}
	})

	t.Run("transient retried", func(t *testing.T) {
		if _, err := simulate.Run(t.Context(), s.source, simulate.Options{Rate: 1e6, Events: 50, Seed: 7}); err != nil {
			t.Fatal(err)
		}
		// The warm extract's connections break, and new ones are reset
		// until the extract has failed twice.
		ext := funcs["Extract"]
		before := ext.Invocations()
		proxy.cut(true)
		go func() {
			// Invocations waits for the invocation under way: when it says
			// two more, the second has ended, and the retry is 300 ms away.
			for ext.Invocations() < before+2 && t.Context().Err() == nil {
				time.Sleep(2 * time.Millisecond)
			}
			proxy.refusing.Store(false)
		}()
		e := run(t)
		wantStates(t, e, "Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Publish", "Done")
		if e.Status != "SUCCEEDED" {
			t.Errorf("%s (%s: %s)", e.Status, e.Error, e.Cause)
		}
		if got := ext.Invocations() - before; got != 3 || proxy.refused.Load() < 2 {
			t.Errorf("extract invoked %d times, %d connections refused; want 3, and 2 or more", got, proxy.refused.Load())
		}
		if len(e.Retries) != 2 || !slices.Contains(e.Retries[0].ErrorEquals, awslambda.Transient) {
			t.Errorf("retries %+v, want two by the Transient retrier", e.Retries)
		}
	})

	t.Run("fatal caught", func(t *testing.T) {
		if _, err := s.source.Exec(t.Context(), `ALTER TABLE payment ALTER COLUMN payment_amount TYPE numeric(12,2)`); err != nil {
			t.Fatal(err)
		}
		e := run(t)
		wantStates(t, e, "Extract", "ExtractFailed", "Describe", "ParseCause", "UseMessage", "Notify", "Failed")
		if e.Status != "FAILED" || e.Error != awslambda.Fatal || !strings.Contains(e.Cause, "payment.payment_amount: type changed") {
			t.Errorf("%s %q %q; want FAILED, Fatal, naming payment.payment_amount", e.Status, e.Error, e.Cause)
		}
		if len(e.SNS) != 1 {
			t.Fatalf("published %+v, want one alert", e.SNS)
		}
		m := e.SNS[0]
		for _, want := range []string{"tote dev: extract failed with Fatal: extract: ", "payment.payment_amount: type changed from numeric(10,2) NOT NULL to numeric(12,2) NOT NULL", "execution arn:aws:states:"} {
			if !strings.Contains(m.Message, want) {
				t.Errorf("the alert %q lacks %q", m.Message, want)
			}
		}
		if m.Subject != "tote dev: extract failed (Fatal)" {
			t.Errorf("the alert's subject is %q", m.Subject)
		}
	})
}

func hostPort(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if p.Port() == "" {
		t.Skipf("the test server is not reached over TCP (%s), so it cannot be put behind a proxy", p.Redacted())
	}
	return p.Host
}
