package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/seed"
)

func TestMain(m *testing.M) {
	// A test that needs tote as a process of its own (to signal it) runs
	// this test binary with TOTE_TEST_BE_TOTE=1: it is then tote.
	if os.Getenv("TOTE_TEST_BE_TOTE") == "1" {
		main()
	}
	pgtest.Main(m)
}

// runTote runs the command line with the given environment and returns its
// exit status, standard output and standard error.
func runTote(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return environ[k] }}
	code := run(context.Background(), args, e)
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runTote(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, c.name) || !strings.Contains(out, c.summary) {
			t.Errorf("--help lacks %s", c.name)
		}
	}
	code, _, errOut := runTote(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

func TestCommandHelpShowsEveryFlagWithEnvAndDefault(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		code, out, errOut := runTote(t, map[string]string{"TOTE_SOURCE_URL": "postgres://u:hidden@h/db"}, c.name, "--help")
		if code != 0 {
			t.Errorf("%s --help exit %d", c.name, code)
		}
		if errOut != "" {
			t.Errorf("%s --help wrote to stderr too: %q", c.name, errOut)
		}
		if strings.Contains(out, "hidden") {
			t.Errorf("%s --help shows the environment's secret", c.name)
		}
		if !strings.HasPrefix(out, "Usage: tote "+c.name) {
			t.Errorf("%s --help: %q", c.name, out)
		}
	}
	_, out, _ := runTote(t, nil, "seed", "--help")
	for _, want := range []string{"--source URL", "env TOTE_SOURCE_URL", "--scale", "default 1", "--force", "--from DIR", "env TOTE_LOG_FORMAT", "default text"} {
		if !strings.Contains(out, want) {
			t.Errorf("seed --help lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = runTote(t, nil, "demo", "--help")
	for _, want := range []string{"env TOTE_LAKE_URL", "a new temporary directory", "env TOTE_WAREHOUSE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --help lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runTote(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "tote ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestSeedThenSimulate(t *testing.T) {
	t.Parallel()
	source := pgtest.NewDB(t)
	code, out, errOut := runTote(t, map[string]string{"TOTE_SOURCE_URL": source, "TOTE_LOG_FORMAT": "json"}, "seed", "--json", "--seed", "5")
	if code != 0 {
		t.Fatalf("seed: exit %d: %s", code, errOut)
	}
	var res seed.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("seed --json printed %q: %v", out, err)
	}
	if res.Rows() < 50_000 || len(res.Tables) != 11 {
		t.Errorf("seeded %d rows in %d tables", res.Rows(), len(res.Tables))
	}
	if !strings.Contains(errOut, `"msg":"seeding"`) {
		t.Errorf("TOTE_LOG_FORMAT=json did not give JSON logs: %q", errOut)
	}

	code, out, errOut = runTote(t, nil, "simulate", "--source", source, "--events", "30", "--rate", "1000")
	if code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "simulated 30 changes") {
		t.Errorf("simulate printed %q", out)
	}
	code, out, errOut = runTote(t, nil, "simulate", "--source", source, "--events", "30", "--rate", "1000", "--deletions", "1", "--seed", "3")
	if code != 0 || !strings.Contains(out, "payment_deleted") || !strings.Contains(out, "sale_cancelled") || !strings.Contains(out, "simulated 30 changes") {
		t.Errorf("simulate --deletions 1: exit %d: %q %s", code, out, errOut)
	}
	if code, _, errOut := runTote(t, nil, "simulate", "--source", source, "--deletions", "2"); code != 2 || !strings.Contains(errOut, "--deletions 2") {
		t.Errorf("simulate --deletions 2: exit %d: %s", code, errOut)
	}
}

func TestSeedBadInput(t *testing.T) {
	t.Parallel()
	closedPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	seeded := pgtest.NewDB(t)
	if code, _, errOut := runTote(t, nil, "seed", "--source", seeded); code != 0 {
		t.Fatalf("first seed: %s", errOut)
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no source", []string{"seed"}, 2, []string{"no source database", "TOTE_SOURCE_URL"}},
		{"negative scale", []string{"seed", "--source", seeded, "--scale", "-3"}, 2, []string{"--scale -3: want a whole number from 1 to"}},
		{"zero scale", []string{"seed", "--source", seeded, "--scale", "0"}, 2, []string{"--scale 0: want a whole number from 1 to", "(see tote seed --help)\n"}},
		{"unreachable server", []string{"seed", "--source", "postgres://postgres@" + closedPort + "/totesys"}, 1,
			[]string{"source database postgres://postgres@" + closedPort + "/totesys", "server unreachable"}},
		{"already holds totesys", []string{"seed", "--source", seeded}, 1, []string{"already holds totesys tables", "sales_order", "--force"}},
		{"bad until", []string{"seed", "--source", seeded, "--until", "yesterday"}, 2, []string{`--until "yesterday"`}},
		{"stray argument", []string{"seed", "--source", seeded, "now"}, 2, []string{"unexpected arguments: now"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runTote(t, nil, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (%s)", code, c.code, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
				t.Errorf("want one clear message, got:\n%s", errOut)
			}
		})
	}
}

func TestSeedWrongPassword(t *testing.T) {
	t.Parallel()
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{Password: "correct"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	u, _ := url.Parse(c.URL())
	u.User = url.UserPassword("postgres", "incorrect")
	code, _, errOut := runTote(t, nil, "seed", "--source", u.String(), "--log-level", "error")
	if code != 1 || !strings.Contains(errOut, "authentication failed") || strings.Contains(errOut, "incorrect") {
		t.Errorf("exit %d: %q", code, errOut)
	}
}

func TestDemoOnAGivenSource(t *testing.T) {
	t.Parallel()
	source := pgtest.NewDB(t)
	// The tests give the lake: without one the demo makes a lake in the
	// system's temp folder and keeps it, for the user to look at.
	lake := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_LAKE_URL": "file://" + t.TempDir()}
	code, out, errOut := runTote(t, lake, "demo", "--changes", "25", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"seeding", "sales_order", "simulated 25 changes", "source row counts now"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// A second demo on the same source uses what is there.
	code, out, _ = runTote(t, lake, "demo", "--changes", "0")
	if code != 0 || !strings.Contains(out, "already holds totesys: using it as it is") {
		t.Errorf("second demo: exit %d\n%s", code, out)
	}
}

func TestDemoOnAThrowawayServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	code, out, errOut := runTote(t, map[string]string{"TOTE_LAKE_URL": "file://" + t.TempDir()}, "demo", "--changes", "10", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "starting a throwaway PostgreSQL server") || !strings.Contains(out, "seeded 50,") {
		t.Errorf("demo output:\n%s", out)
	}
}

// A flag that does not exist is one line saying so and where the flags
// are listed, on stderr, with exit status 2.
func TestUnknownFlag(t *testing.T) {
	t.Parallel()
	code, out, errOut := runTote(t, nil, "load", "--no-such-flag")
	if code != 2 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if errOut != "tote load: flag provided but not defined: -no-such-flag (see tote load --help)\n" {
		t.Errorf("stderr: %q", errOut)
	}
}

// The dashboard refuses to start where it would be reachable beyond the
// machine without a token, saying how to give one.
func TestDashboardOffTheLoopbackNeedsAToken(t *testing.T) {
	t.Parallel()
	code, _, errOut := runTote(t, map[string]string{"TOTE_WAREHOUSE_URL": "postgres://nobody@127.0.0.1:1/none"},
		"dashboard", "--addr", "0.0.0.0:0")
	if code != 2 || !strings.Contains(errOut, "would be reachable beyond this machine: give --dashboard-token (or TOTE_DASHBOARD_TOKEN)") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// On a warehouse that no tote of this version has loaded, the dashboard
// says what to run instead of serving empty pages.
func TestDashboardOnAWarehouseWithoutSummaries(t *testing.T) {
	t.Parallel()
	code, _, errOut := runTote(t, map[string]string{"TOTE_WAREHOUSE_URL": pgtest.NewDB(t)}, "dashboard", "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "the warehouse has not been migrated by this version of tote (no tote.group_migrations, migration 0011): load it once") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
