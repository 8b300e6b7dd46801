package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/pgtest"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeBadInput(t *testing.T) {
	sm := awstest.SecretsManager(t, nil)
	t.Setenv("AWS_ENDPOINT_URL", sm.URL)
	t.Setenv("AWS_REGION", "eu-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	wh := "postgres://postgres@127.0.0.1:1/wh"
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"both", nil, []string{"--interval", "1m", "--cron", "* * * * *"}, 2, "give --interval or --cron, not both"},
		{"bad cron", nil, []string{"--cron", "every tuesday"}, 2, `--cron "every tuesday"`},
		{"unreachable smtp", nil, []string{"--alert-email", "ops@x", "--smtp-url", "smtp://u:pw@" + freeAddr(t)}, 1, "alert email: SMTP server 127.0.0.1:"},
		{"secret file missing", map[string]string{"TOTE_SOURCE_URL_FILE": "/nonexistent/source"}, nil, 1, "TOTE_SOURCE_URL_FILE: open /nonexistent/source"},
		{"secret not found", nil, []string{"--source", "secretsmanager://tote/nope"}, 1, `secret "tote/nope" not found in AWS Secrets Manager`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"serve", "--warehouse", wh}, c.args...)
			if c.env == nil || c.env["TOTE_SOURCE_URL_FILE"] == "" {
				if !strings.Contains(strings.Join(c.args, " "), "--source") {
					args = append(args, "--source", wh)
				}
			}
			code, _, errOut := runTote(t, c.env, args...)
			if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || strings.Contains(errOut, ":pw@") {
				t.Errorf("exit %d, want %d with %q:\n%s", code, c.code, c.want, errOut)
			}
		})
	}
}

// startServe runs tote serve with environ and args in the background;
// stderr is its log, and stop cancels it and checks that it exits 0.
func startServe(environ map[string]string, args ...string) (stderr *syncBuf, stop func(*testing.T)) {
	stderr = &syncBuf{}
	e := &env{stdout: &syncBuf{}, stderr: stderr, getenv: func(k string) string { return environ[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), e) }()
	return stderr, func(t *testing.T) {
		t.Helper()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d after cancel:\n%s", code, stderr.String())
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServeThenStatus(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	// The password is ignored by trust auth, and must never be logged.
	source = strings.Replace(source, "postgres@", "postgres:hunter2secret@", 1)
	file := filepath.Join(t.TempDir(), "source")
	os.WriteFile(file, []byte(source+"\n"), 0o600)
	addr := freeAddr(t)
	lakeURL := "file://" + t.TempDir()
	environ := map[string]string{"TOTE_SOURCE_URL_FILE": file, "TOTE_WAREHOUSE_URL": wh, "TOTE_LAKE_URL": lakeURL}
	stderr, stop := startServe(environ, "--addr", addr, "--interval", "1h", "--log-format", "json")
	// A bound on a hang, not on speed: the first run (extract, transform,
	// load, publish) under -race and coverage on a busy machine takes
	// tens of seconds.
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(stderr.String(), `"msg":"run succeeded"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no successful run:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	stop(t)
	logs := stderr.String()
	if strings.Contains(logs, "hunter2secret") {
		t.Errorf("the source password was logged")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(line, `"stage"`) && !strings.Contains(line, `"run":`) {
			t.Errorf("a run's log line lacks the run id: %s", line)
		}
	}
	code, out, errOut := runTote(t, environ, "status")
	if code != 0 || !strings.Contains(out, "startup   success") || !strings.Contains(out, "freshness: newest source change loaded") || !strings.Contains(out, "lake: ") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
}
