package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/hooktest"
	"github.com/terrifictotes/tote/internal/pgtest"
)

// tote run against a source, a warehouse or an S3 endpoint that accepts
// connections and never answers, or a statement that the source leaves
// unanswered, gives up within its bound (1s here, by flag), with one line
// that says what did not answer, for how long, and what to check.
func TestRunGivesUpOnWhatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	hole := hangtest.BlackHole(t)
	viaHole := func(db string) string {
		u, err := url.Parse(db)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = hole
		return u.String()
	}
	s3 := "s3://tote-test/lake?" + url.Values{"endpoint": {"http://" + hole}, "use_path_style": {"true"},
		"region": {"us-east-1"}, "anonymous": {"true"}}.Encode()
	bounds := []string{"--connect-timeout", "1s", "--stall-timeout", "1s"}
	cases := []struct {
		name                    string
		source, warehouse, lake string
		lock                    string // a source table locked meanwhile
		want                    string
	}{
		{"source", viaHole(source), wh, "", "", "tote: source database " + viaHole(source) +
			": the server did not answer as PostgreSQL within 1s (connect timeout): is this the right port?"},
		{"warehouse", source, viaHole(wh), "", "", "tote: warehouse database " + viaHole(wh) +
			": the server did not answer as PostgreSQL within 1s (connect timeout): is this the right port?"},
		{"lake", source, wh, s3, "", "tote: lake s3://tote-test/lake: cannot list bucket tote-test: the S3 endpoint " + hole +
			" sent nothing for 1s (stall timeout): is it the right endpoint, and up?"},
		{"statement", source, wh, "", "address", "tote: extract raw batch "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lake := c.lake
			if lake == "" {
				lake = "file://" + t.TempDir()
			}
			if c.lock != "" {
				hold(t, source, "LOCK TABLE "+c.lock+" IN ACCESS EXCLUSIVE MODE")
			}
			env := map[string]string{"TOTE_LOG_LEVEL": "error"}
			args := append([]string{"run", "--source", c.source, "--warehouse", c.warehouse, "--lake", lake}, bounds...)
			start := time.Now()
			code, _, errOut := runTote(t, env, args...)
			t.Logf("gave up after %s: %s", time.Since(start).Round(time.Millisecond), errOut)
			if code != 1 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d:\n%s\nwant one line starting\n%s", code, errOut, c.want)
			}
			if c.lock != "" && !strings.HasSuffix(errOut, ": "+c.lock+": query: timeout: the source database at "+mustHost(t, source)+
				" sent nothing for 1s (stall timeout): is the server stuck, overloaded or cut off?\n") {
				t.Errorf("the statement's error does not name the table, the server and the bound: %s", errOut)
			}
		})
	}
}

// hold runs sql in a transaction of its own on db until the test ends.
func hold(t *testing.T, db, sql string) {
	t.Helper()
	pool := pgtest.Pool(t, db)
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// tote serve starts while its source or its warehouse accepts connections
// and never answers: /healthz says it is alive, /readyz what is not ready
// and why; the runs fail on their schedule with one alert, and when the
// database answers again the next run succeeds, with one recovery alert.
func TestServeStaysUpWhileADatabaseHangs(t *testing.T) {
	t.Parallel()
	for _, part := range []string{"source", "warehouse"} {
		t.Run(part, func(t *testing.T) {
			t.Parallel()
			dbs := map[string]string{"source": seededSource(t), "warehouse": pgtest.NewDB(t)}
			u, err := url.Parse(dbs[part])
			if err != nil {
				t.Fatal(err)
			}
			proxy := hangtest.Start(t, u.Host)
			proxy.Hang()
			u.Host = proxy.Addr()
			dbs[part] = u.String()
			hook := hooktest.Start(t)

			addr := freeAddr(t)
			environ := map[string]string{"TOTE_SOURCE_URL": dbs["source"], "TOTE_WAREHOUSE_URL": dbs["warehouse"],
				"TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_ALERT_WEBHOOK": hook.URL}
			stderr, stop := startServe(environ, "--addr", addr, "--interval", "1s", "--retries", "0",
				"--connect-timeout", "1s", "--log-format", "json")
			defer stop(t)
			get := func(path string) (int, string) {
				t.Helper()
				resp, err := http.Get("http://" + addr + path)
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			waitFor := func(what string, ok func() bool) {
				t.Helper()
				deadline := time.Now().Add(60 * time.Second)
				for !ok() {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not after 60s; alerts %q\n%s", what, hook.Texts(), stderr.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
			}

			waitFor("/healthz answers", func() bool { code, _ := get("/healthz"); return code == 200 })
			code, body := get("/readyz")
			var problems map[string]string
			if code != 503 || json.Unmarshal([]byte(body), &problems) != nil || len(problems) != 1 ||
				!strings.HasSuffix(problems[part], "did not answer as PostgreSQL within 1s (connect timeout): is this the right port?") {
				t.Errorf("/readyz: %d %s", code, body)
			}
			// Runs go on failing on the schedule, with one alert.
			waitFor("three failed runs", func() bool {
				return strings.Count(stderr.String(), `"msg":"run failed"`)+strings.Count(stderr.String(), `"msg":"cannot start run"`) >= 3
			})
			if n := hook.Count("failed"); n != 1 {
				t.Errorf("%d failure alerts, want 1: %q", n, hook.Texts())
			}
			_, metrics := get("/metrics")
			if !strings.Contains(metrics, `tote_up{part="`+part+`"} 0`) {
				t.Errorf("/metrics does not say the %s is down:\n%s", part, grep(metrics, "tote_up"))
			}

			proxy.Resume()
			waitFor("recovery", func() bool { return hook.Count("recovered") == 1 })
			if code, body := get("/readyz"); code != 200 {
				t.Errorf("/readyz after the recovery: %d %s", code, body)
			}
			_, metrics = get("/metrics")
			if !strings.Contains(metrics, `tote_up{part="`+part+`"} 1`) {
				t.Errorf("/metrics does not say the %s is back:\n%s", part, grep(metrics, "tote_up"))
			}
			if n := hook.Count("failed"); n != 1 {
				t.Errorf("%d failure alerts in all, want 1: %q", n, hook.Texts())
			}
			if part == "source" {
				// The warehouse kept the failed runs' history.
				code, out, errOut := runTote(t, environ, "status")
				if code != 0 || !strings.Contains(out, "failure") || !strings.Contains(out, "did not answer as PostgreSQL within 1s") {
					t.Errorf("status: exit %d\n%s%s", code, out, errOut)
				}
			}
		})
	}
}

// grep returns the lines of s that contain what.
func grep(s, what string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func mustHost(t *testing.T, db string) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// A webhook that accepts connections and never answers holds up neither
// tote serve nor its runs for longer than the alert timeout: the runs go on
// on their schedule, and the run history says the alert was not delivered.
func TestServeWithAWebhookThatNeverAnswers(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	u, err := url.Parse(source)
	if err != nil {
		t.Fatal(err)
	}
	proxy := hangtest.Start(t, u.Host)
	proxy.Hang() // the runs fail, and alert
	u.Host = proxy.Addr()
	addr := freeAddr(t)
	environ := map[string]string{"TOTE_SOURCE_URL": u.String(), "TOTE_WAREHOUSE_URL": wh,
		"TOTE_LAKE_URL": "file://" + t.TempDir(), "TOTE_ALERT_WEBHOOK": "http://" + hangtest.BlackHole(t) + "/hook"}
	stderr, stop := startServe(environ, "--addr", addr, "--interval", "1s", "--retries", "0",
		"--connect-timeout", "1s", "--alert-timeout", "1s", "--log-format", "json")
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(stderr.String(), `"msg":"run failed"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than three runs in 60s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v", err)
	} else {
		resp.Body.Close()
	}
	stop(t)
	if !strings.Contains(stderr.String(), `"msg":"alert not delivered","notifier":"webhook","alert":"failure","run":1,"err":"no answer within 1s, the alert timeout"`) {
		t.Errorf("the log does not say the alert went unanswered:\n%s", stderr.String())
	}
	code, out, errOut := runTote(t, environ, "status")
	if code != 0 || !strings.Contains(out, "alerts: failure by webhook FAILED (no answer within 1s, the alert timeout)") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
}
