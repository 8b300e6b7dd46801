package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture returns the test Lambda (testdata/fixture), built once.
func fixture(t *testing.T) string {
	t.Helper()
	RIE(t) // skips here without make tools
	return BuildBootstrap(t, "./testdata/fixture", runtime.GOARCH)
}

// output is the fixture's response.
type output struct {
	Stage      string            `json:"stage"`
	New        bool              `json:"new"`
	RowsTotal  int               `json:"rows_total"`
	Invocation int               `json:"invocation"`
	Cold       bool              `json:"cold"`
	PID        int               `json:"pid"`
	DeadlineMS int64             `json:"deadline_ms"`
	RequestID  string            `json:"request_id"`
	Env        map[string]string `json:"env"`
	Input      json.RawMessage   `json:"input"`
}

func invoke(t *testing.T, f *Function, payload string) (Result, output) {
	t.Helper()
	r, err := f.Invoke(t.Context(), []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	var out output
	if !r.Failed() {
		if err := json.Unmarshal(r.Payload, &out); err != nil {
			t.Fatalf("response %s: %v", r.Payload, err)
		}
	}
	return r, out
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	f := Start(t, fixture(t), map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "tote-extract",
		"FIXTURE":                  `{"stage":"extract"}`,
		"TOTE_STAGE":               "extract",
	}, 5*time.Second)

	// In order: the first invocation is the cold one.
	t.Run("cold then warm", func(t *testing.T) {
		cold, out := invoke(t, f, `{}`)
		if !cold.Cold || !out.Cold || cold.Failed() {
			t.Fatalf("first invocation: Cold %v, the function saw cold %v, error %q; want a cold start\n%s", cold.Cold, out.Cold, cold.ErrorType, cold.Logs)
		}
		warm, out2 := invoke(t, f, `{}`)
		if warm.Cold || out2.Cold || out2.PID != out.PID {
			t.Fatalf("second invocation: Cold %v, the function saw cold %v, pid %d then %d; want the same warm process", warm.Cold, out2.Cold, out.PID, out2.PID)
		}
		t.Logf("cold invoke %v, warm invoke %v", cold.Duration, warm.Duration)
	})

	t.Run("payload", func(t *testing.T) {
		r, out := invoke(t, f, `{"batches":["000000000001-20261202T101500.000Z"],"n":[1,2]}`)
		if out.Stage != "extract" || !out.New || out.RowsTotal != 15 {
			t.Errorf("response %s: want stage extract, new, 15 rows", r.Payload)
		}
		if string(out.Input) != `{"batches":["000000000001-20261202T101500.000Z"],"n":[1,2]}` {
			t.Errorf("the function got %s", out.Input)
		}
		if out.RequestID != r.RequestID || r.RequestID == "" {
			t.Errorf("the function's request id %q, the result's %q", out.RequestID, r.RequestID)
		}
	})

	t.Run("environment", func(t *testing.T) {
		_, out := invoke(t, f, `{"fixture":{"env":["TOTE_STAGE","AWS_LAMBDA_FUNCTION_NAME","AWS_REGION","AWS_LAMBDA_FUNCTION_TIMEOUT","AWS_LAMBDA_RUNTIME_API","HOME","GOPATH"]}}`)
		want := map[string]string{"TOTE_STAGE": "extract", "AWS_LAMBDA_FUNCTION_NAME": "tote-extract", "AWS_REGION": "eu-west-2", "AWS_LAMBDA_FUNCTION_TIMEOUT": "5"}
		for k, v := range want {
			if out.Env[k] != v {
				t.Errorf("%s = %q, want %q", k, out.Env[k], v)
			}
		}
		if out.Env["AWS_LAMBDA_RUNTIME_API"] == "" {
			t.Error("AWS_LAMBDA_RUNTIME_API is not set: the function did not run under the emulator")
		}
		for _, k := range []string{"HOME", "GOPATH"} {
			if v, ok := out.Env[k]; ok && os.Getenv(k) == v {
				t.Errorf("the test's %s leaked into the function", k)
			}
		}
	})

	t.Run("deadline", func(t *testing.T) {
		_, out := invoke(t, f, `{}`)
		// Generous below: a loaded machine may start the handler late.
		if out.DeadlineMS <= 2000 || out.DeadlineMS > 5000 {
			t.Errorf("the function had %d ms left; want a little under the 5 s timeout", out.DeadlineMS)
		}
	})

	t.Run("large response", func(t *testing.T) {
		// Lambda's synchronous limit is 6 MB; RIE copies the response in
		// chunks, so a big one shows whether any is lost.
		const pad = 1 << 20
		r, _ := invoke(t, f, `{"fixture":{"pad":1048576}}`)
		var out struct{ Pad string }
		if err := json.Unmarshal(r.Payload, &out); err != nil || len(out.Pad) != pad {
			t.Errorf("a %d-byte response came back as %d bytes (%v)", pad+300, len(r.Payload), err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		msg := `transform: table sales_order, raw batch 000000000003-20261202T101500.000Z, id 5: column agreed_delivery_date: value "2024-13-45": not a date (YYYY-MM-DD)`
		for _, tc := range []struct{ via, errorType string }{
			{"", "Fatal"},           // messages.InvokeResponse_Error
			{"custom", "Transient"}, // a Go error type named Transient
			{"custom", "RunInProgress"},
			{"", "Sandbox.Whatever"}, // any name passes through
		} {
			payload, _ := json.Marshal(map[string]any{"fixture": map[string]string{"errorType": tc.errorType, "errorVia": tc.via, "errorMessage": msg}})
			r, _ := invoke(t, f, string(payload))
			if r.ErrorType != tc.errorType || r.ErrorMessage != msg {
				t.Errorf("via %q: ErrorType %q, ErrorMessage %q; want %q, %q", tc.via, r.ErrorType, r.ErrorMessage, tc.errorType, msg)
			}
			var doc map[string]string
			if err := json.Unmarshal(r.Payload, &doc); err != nil || doc["errorType"] != tc.errorType || doc["errorMessage"] != msg {
				t.Errorf("via %q: payload %s; want Lambda's error document", tc.via, r.Payload)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		r, _ := invoke(t, f, `{"fixture":{"emf":true}}`)
		for _, s := range []string{`"_aws":{"CloudWatchMetrics"`, "fixture: stage extract", "REPORT RequestId: " + r.RequestID} {
			if !strings.Contains(r.Logs, s) {
				t.Errorf("the invocation's log lacks %q:\n%s", s, r.Logs)
			}
			if !strings.Contains(f.Logs(), s) {
				t.Errorf("the function's log lacks %q", s)
			}
		}
	})

	t.Run("runtime exit", func(t *testing.T) {
		_, before := invoke(t, f, `{}`)
		r, _ := invoke(t, f, `{"fixture":{"exit":3}}`)
		if r.ErrorType != "Runtime.ExitError" || !strings.Contains(r.ErrorMessage, "exit status 3") {
			t.Fatalf("ErrorType %q, ErrorMessage %q; want Runtime.ExitError, exit status 3", r.ErrorType, r.ErrorMessage)
		}
		next, after := invoke(t, f, `{}`)
		if next.Failed() || !next.Cold || after.PID == before.PID {
			t.Errorf("after the crash: error %q, Cold %v, pid %d then %d; want a fresh process", next.ErrorType, next.Cold, before.PID, after.PID)
		}
	})

	t.Run("URL", func(t *testing.T) {
		post := func(body string) (*http.Response, []byte) {
			resp, err := http.Post(f.URL(), "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}
		resp, body := post(`{"fixture":{"errorType":"Fatal","errorMessage":"extract: table x"}}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !bytes.Contains(body, []byte(`"errorType":"Fatal"`)) {
			t.Errorf("function error: %s, X-Amz-Function-Error %q, %s", resp.Status, resp.Header.Get("X-Amz-Function-Error"), body)
		}
		resp, body = post(`{}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" || !bytes.Contains(body, []byte(`"stage":"extract"`)) {
			t.Errorf("success: %s, X-Amz-Function-Error %q, %s", resp.Status, resp.Header.Get("X-Amz-Function-Error"), body)
		}
	})
}

// TestTimeout records what RIE does when a function outlives
// AWS_LAMBDA_FUNCTION_TIMEOUT: it answers 200 with the plain text "Task
// timed out after 1.00 seconds" (Invoke turns that into Lambda's
// Sandbox.Timedout), SIGKILLs the runtime, and the next invocation starts
// a new process.
func TestTimeout(t *testing.T) {
	t.Parallel()
	f := Start(t, fixture(t), map[string]string{"FIXTURE": `{"stage":"load"}`}, time.Second)
	_, before := invoke(t, f, `{}`)
	r, _ := invoke(t, f, `{"fixture":{"sleep":"3s"}}`)
	if r.ErrorType != "Sandbox.Timedout" || !strings.Contains(r.ErrorMessage, "Task timed out after 1.00 seconds") {
		t.Fatalf("ErrorType %q, ErrorMessage %q; want Sandbox.Timedout after 1.00 seconds", r.ErrorType, r.ErrorMessage)
	}
	if r.Duration < time.Second || r.Duration > 5*time.Second {
		t.Errorf("the timed-out invocation took %v; want about 1 s", r.Duration)
	}
	next, after := invoke(t, f, `{}`)
	if next.Failed() || !next.Cold || after.PID == before.PID {
		t.Errorf("after the timeout: error %q, Cold %v, pid %d then %d; want a fresh process", next.ErrorType, next.Cold, before.PID, after.PID)
	}
	t.Logf("timed out after %v; the next invocation took %v (cold %v)", r.Duration, next.Duration, next.Cold)
}

// TestConcurrentInvokes shows that invocations of one Function wait for
// each other, through Invoke and URL alike; sent to RIE at once, the
// second would crash it.
func TestConcurrentInvokes(t *testing.T) {
	t.Parallel()
	f := Start(t, fixture(t), nil, 5*time.Second)
	const n, sleep = 4, 300 * time.Millisecond
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := `{"fixture":{"sleep":"300ms"}}`
			if i%2 == 0 {
				r, err := f.Invoke(context.Background(), []byte(body))
				if err == nil && r.Failed() {
					err = &invokeError{r}
				}
				errs <- err
				return
			}
			resp, err := http.Post(f.URL(), "application/json", strings.NewReader(body))
			if err == nil {
				if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
					b, _ := io.ReadAll(resp.Body)
					err = &httpError{resp.Status, string(b)}
				}
				resp.Body.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if elapsed := time.Since(start); elapsed < n*sleep {
		t.Errorf("%d invocations of %v took %v: they overlapped", n, sleep, elapsed)
	}
	if got := f.Invocations(); got != n {
		t.Errorf("Invocations() = %d, want %d", got, n)
	}
}

type invokeError struct{ r Result }

func (e *invokeError) Error() string { return e.r.ErrorType + ": " + e.r.ErrorMessage }

type httpError struct{ status, body string }

func (e *httpError) Error() string { return e.status + ": " + e.body }
