package main

import (
	"bufio"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/pgtest"
)

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args       []string
		positional []string
		lake       string
		json       bool
	}{
		{[]string{"1", "--lake", "L"}, []string{"1"}, "L", false},
		{[]string{"--lake", "L", "1"}, []string{"1"}, "L", false},
		{[]string{"1", "--json", "2", "--lake=L"}, []string{"1", "2"}, "L", true},
		{[]string{"1", "--", "--lake", "L"}, []string{"1", "--lake", "L"}, "", false},
		{[]string{"--json", "--", "-5"}, []string{"-5"}, "", true},
		{nil, nil, "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		lake := fs.String("lake", "", "")
		asJSON := fs.Bool("json", false, "")
		got, err := parseInterleaved(fs, c.args)
		if err != nil || !reflect.DeepEqual(got, c.positional) || *lake != c.lake || *asJSON != c.json {
			t.Errorf("%q: positional %q, lake %q, json %v, err %v; want %q, %q, %v", c.args, got, *lake, *asJSON, err, c.positional, c.lake, c.json)
		}
	}
}

// parseInterleaved returns the arguments that are not flags, in their
// order, and sets the flags as the flag package would with those
// arguments left out.
func FuzzParseInterleaved(f *testing.F) {
	for _, s := range []string{"1 --lake L", "--json 1 2 --lake=L", "1 -- --lake", "--lake", "- -- -", "--json=false x --lake -5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Fields(s)
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		lake := fs.String("lake", "", "")
		asJSON := fs.Bool("json", false, "")
		positional, err := parseInterleaved(fs, args)
		if err != nil {
			return
		}
		i := 0
		for _, p := range positional { // a subsequence of args
			for i < len(args) && args[i] != p {
				i++
			}
			if i == len(args) {
				t.Fatalf("%q: positional %q out of order or not given", args, positional)
			}
			i++
		}
		// The flags alone, parsed by the flag package, agree.
		var flagsOnly []string
		rest := slices.Clone(args)
		for _, p := range positional {
			j := slices.Index(rest, p)
			flagsOnly, rest = append(flagsOnly, rest[:j]...), rest[j+1:]
		}
		flagsOnly = slices.DeleteFunc(append(flagsOnly, rest...), func(a string) bool { return a == "--" })
		fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
		fs2.SetOutput(io.Discard)
		lake2 := fs2.String("lake", "", "")
		asJSON2 := fs2.Bool("json", false, "")
		if err := fs2.Parse(flagsOnly); err == nil && fs2.NArg() == 0 && (*lake2 != *lake || *asJSON2 != *asJSON) {
			t.Errorf("%q: lake %q json %v; the flags alone give %q %v", args, *lake, *asJSON, *lake2, *asJSON2)
		}
	})
}

// Flags may follow positional arguments, on every command and subcommand.
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	lake := "file://" + t.TempDir()
	if code, _, errOut := runTote(t, nil, "extract", "--log-level", "warn", "--source", source, "--lake", lake); code != 0 {
		t.Fatalf("extract: %s", errOut)
	}
	code, out, errOut := runTote(t, nil, "lake", "show", "1", "--lake", lake, "--log-level", "warn")
	if code != 0 || !strings.Contains(out, `"seq": 1`) {
		t.Errorf("lake show 1 --lake L: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = runTote(t, nil, "lake", "ls", "--zone", "raw", "--lake", lake)
	if code != 0 || !strings.Contains(out, "1 committed raw batch in") {
		t.Errorf("lake ls: exit %d: %s %s", code, out, errOut)
	}
	// Flags before a subcommand, too.
	code, out, errOut = runTote(t, nil, "lake", "--lake", lake, "--zone", "raw", "show", "--log-level", "warn", "1")
	if code != 0 || !strings.Contains(out, `"seq": 1`) {
		t.Errorf("lake --lake L show 1: exit %d: %s %s", code, out, errOut)
	}
	code, _, errOut = runTote(t, nil, "lake", "show", "--lake", lake)
	if code != 2 || !strings.HasPrefix(errOut, "tote lake show: missing BATCH (see tote lake show --help)\n") {
		t.Errorf("lake show without a batch: exit %d: %q", code, errOut)
	}
	code, _, errOut = runTote(t, nil, "lake", "show", "1", "2", "--lake", lake)
	if code != 2 || !strings.HasPrefix(errOut, "tote lake show: unexpected arguments: 2 (see tote lake show --help)\n") {
		t.Errorf("lake show 1 2: exit %d: %q", code, errOut)
	}
}

// toteProcess starts tote as a process of its own (this test binary, which
// is tote when TOTE_TEST_BE_TOTE=1) and returns it with its standard error,
// read line by line.
func toteProcess(t *testing.T, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TOTE_TEST_BE_TOTE=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

// A signal stops a command with the status shells expect (128 + the
// signal's number) and one line, whatever the stage it arrives in.
func TestSignalExitStatus(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		code int
		args []string
		// ready is a line on stderr the command prints once under way.
		ready string
		lock  string
	}{
		{"seed SIGINT", syscall.SIGINT, 130, []string{"seed", "--scale", "20", "--source", pgtest.NewDB(t)}, "msg=seeding", ""},
		{"extract SIGTERM", syscall.SIGTERM, 143, []string{"extract", "--source", source, "--lake", "file://" + t.TempDir(), "--log-level", "debug"}, "", "address"},
		{"run SIGINT", syscall.SIGINT, 130, []string{"run", "--source", source, "--warehouse", pgtest.NewDB(t), "--lake", "file://" + t.TempDir(), "--log-level", "debug"}, "", "address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.lock != "" {
				// The stage waits on the lock: the signal finds it under way.
				hold(t, source, "LOCK TABLE "+c.lock+" IN ACCESS EXCLUSIVE MODE")
			}
			cmd, lines := toteProcess(t, c.args...)
			var got []string
			deadline := time.After(2 * time.Minute)
			for ready := false; !ready; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("tote ended before the signal: %q", got)
					}
					got = append(got, l)
					ready = c.ready != "" && strings.Contains(l, c.ready)
				case <-time.After(3 * time.Second):
					// Quiet for a while: waiting on the lock.
					ready = c.lock != ""
				case <-deadline:
					t.Fatalf("tote never got under way: %q", got)
				}
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			var after []string
			for l := range lines {
				if !strings.Contains(l, "level=DEBUG") {
					after = append(after, l)
				}
			}
			_ = cmd.Wait()
			want := "tote " + c.args[0] + ": interrupted by " + signalName(c.sig)
			if code := cmd.ProcessState.ExitCode(); code != c.code || len(after) != 1 || after[0] != want {
				t.Errorf("exit %d (want %d); stderr after the signal %q, want only %q", code, c.code, after, want)
			}
		})
	}
}

// runToteIn runs tote as a process of its own in dir, with the given
// environment instead of tote's settings in this one, and returns its exit
// status and output.
func runToteIn(t *testing.T, dir string, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = []string{"TOTE_TEST_BE_TOTE=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOTE_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// entries lists what dir holds.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// A command that reads creates nothing: not the default lake, not a lake
// where a mistyped URL points. tote status works from the warehouse alone.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	lake := "file://" + t.TempDir()
	if code, _, errOut := runTote(t, nil, "run", "--source", source, "--warehouse", wh, "--lake", lake, "--log-level", "warn"); code != 0 {
		t.Fatalf("run: %s", errOut)
	}
	dir := t.TempDir()
	code, out, errOut := runToteIn(t, dir, nil, "status", "--warehouse", wh)
	if code != 0 {
		t.Fatalf("status without a lake: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"recent runs:", "manual    success", "2 batches", "loaded: 1 processed batch, the newest ",
		"lag: unknown without the lake (give --lake or TOTE_LAKE_URL)", "freshness: newest source change loaded "} {
		if !strings.Contains(out, want) {
			t.Errorf("status without a lake lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "h ago") && strings.Contains(out, "m ago") {
		t.Errorf("status prints an age in hours past two days:\n%s", out)
	}
	for _, c := range [][]string{
		{"lake", "ls", "--lake", "file://./data/laek"},
		{"lake", "show", "1", "--lake", "file://./data/laek"},
		{"status", "--warehouse", wh, "--lake", "file://./data/laek"},
		{"transform", "--lake", "file://./data/laek"},
		{"lake", "ls"},
	} {
		code, _, errOut := runToteIn(t, dir, nil, c...)
		if code != 1 || !strings.Contains(errOut, "no lake at "+dir+"/data/la") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d: %q", c, code, errOut)
		}
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("read-only commands left %q behind", got)
	}
	// With the lake, the lag and its size too.
	code, out, errOut = runToteIn(t, dir, nil, "status", "--warehouse", wh, "--lake", lake)
	if code != 0 || !strings.Contains(out, "lag: ") || strings.Contains(out, "lag: unknown") || !strings.Contains(out, "lake: ") {
		t.Errorf("status with the lake: exit %d: %s %s", code, out, errOut)
	}
}

// The demo writes made-up changes into its source: it refuses a database
// whose totesys tables tote seed did not write, unless --force, and leaves
// no temporary lake behind.
func TestDemoRefusesDataItDidNotSeed(t *testing.T) {
	t.Parallel()
	source := seededSource(t)
	execSQL(t, source, "COMMENT ON TABLE sales_order IS 'the real thing'")
	newest := func() string {
		var s string
		if err := pgtest.Pool(t, source).QueryRow(t.Context(), "SELECT max(last_updated)::text || count(*) FROM payment").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := newest()
	tmp := t.TempDir()
	environ := map[string]string{"TMPDIR": tmp, "TOTE_LOG_LEVEL": "warn"}
	code, _, errOut := runToteIn(t, tmp, environ, "demo", "--source", source, "--warehouse", pgtest.NewDB(t), "--changes", "5")
	if code != 1 || !strings.Contains(errOut, "holds totesys tables that tote seed did not write (real data?)") ||
		!strings.Contains(errOut, "--force") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("demo on data it did not seed: exit %d: %q", code, errOut)
	}
	if newest() != before {
		t.Error("the refused demo changed the source")
	}
	code, out, errOut := runToteIn(t, tmp, environ, "demo", "--source", source, "--warehouse", pgtest.NewDB(t), "--changes", "5", "--force")
	if code != 0 || !strings.Contains(out, "simulated 5 changes") || !strings.Contains(out, "is removed now; give --lake file://DIR to keep one") {
		t.Errorf("demo --force: exit %d: %s\n%s", code, out, errOut)
	}
	if got := entries(t, tmp); len(got) != 0 {
		t.Errorf("the demo left %q behind", got)
	}
}

// Each mistake in a setting is one line that says what to fix.
func TestErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// No AWS settings but these: no shared files, no instance metadata.
	noAWS := map[string]string{"HOME": dir, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": dir + "/none",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/none"}
	withRegion := map[string]string{"AWS_REGION": "eu-west-2"}
	for k, v := range noAWS {
		withRegion[k] = v
	}
	for _, c := range []struct {
		name    string
		environ map[string]string
		args    []string
		want    string
	}{
		{"another database's URL", nil, []string{"seed", "--source", "mysql://u:secret@h/db"},
			"tote: source database: the URL must be postgres://USER:PASSWORD@HOST:PORT/DATABASE, not mysql://…\n"},
		{"not a URL", nil, []string{"run", "--source", "notaurl", "--warehouse", "postgres://h/w", "--lake", "mem://"},
			"tote: source database: the URL must be postgres://USER:PASSWORD@HOST:PORT/DATABASE, not \"notaurl\"\n"},
		{"a host that does not exist", nil, []string{"seed", "--source", "postgres://u@nosuchhost.invalid/db"},
			"tote: source database postgres://u@nosuchhost.invalid/db: host nosuchhost.invalid not found (DNS): check the host in the URL\n"},
		{"no region", noAWS, []string{"lake", "ls", "--lake", "s3://nobucket"},
			"tote: lake s3://nobucket: no AWS region: set AWS_REGION, or add ?region=REGION to the lake URL\n"},
		{"no credentials", withRegion, []string{"lake", "ls", "--lake", "s3://nobucket"},
			"tote: lake s3://nobucket: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, " +
				"or run where a role provides them (add ?anonymous=true to the lake URL for a public bucket)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runToteIn(t, dir, c.environ, c.args...)
			if code != 1 || out != "" || errOut != c.want {
				t.Errorf("exit %d, stdout %q\nstderr %q\nwant   %q", code, out, errOut, c.want)
			}
		})
	}
}

// tote dashboard answers /healthz, without its token, for a load balancer,
// and stops on SIGTERM with status 0: stopping is its normal end.
func TestDashboardHealthz(t *testing.T) {
	t.Parallel()
	wh := pgtest.NewDB(t)
	if code, _, errOut := runTote(t, nil, "load", "--warehouse", wh, "--lake", "mem://", "--log-level", "warn"); code != 0 {
		t.Fatalf("load: %s", errOut)
	}
	cmd, lines := toteProcess(t, "dashboard", "--warehouse", wh, "--addr", "127.0.0.1:0", "--dashboard-token", "sesame")
	var url string
	for l := range lines {
		if _, after, ok := strings.Cut(l, " url="); ok {
			url, _, _ = strings.Cut(after, " ")
			break
		}
	}
	if url == "" {
		t.Fatal("the dashboard never said where it serves")
	}
	resp, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz: %s %q", resp.Status, body)
	}
	if resp, err := http.Get(url + "api/pipeline"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the rest still asks for the token: %v %v", resp, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("dashboard stopped by SIGTERM: exit %d", code)
	}
}

// tote run carries on past a column added to the source, and says so once.
func TestRunSaysANewColumnIsCarried(t *testing.T) {
	t.Parallel()
	env, source, _ := runEnv(t, "error")
	if code, _, errOut := runTote(t, env, "run"); code != 0 {
		t.Fatalf("first run: %s", errOut)
	}
	execSQL(t, source, `ALTER TABLE sales_order ADD COLUMN discount numeric(5,2)`)
	const said = "extract: new column sales_order.discount numeric(5,2) NULL: the raw zone carries it as text, the star schema does not read it\n"
	code, out, errOut := runTote(t, env, "run")
	if code != 0 || !strings.Contains(out, said) || !strings.Contains(out, "run complete") {
		t.Errorf("run after a new column: exit %d:\n%s%s", code, out, errOut)
	}
	if code, out, _ := runTote(t, env, "run"); code != 0 || strings.Contains(out, "new column") {
		t.Errorf("the next run: exit %d, says it again:\n%s", code, out)
	}
}

// At the default log level a command's summary is printed once, on
// standard output, not logged again; seed logs no empty setting.
func TestSummaryOnce(t *testing.T) {
	t.Parallel()
	env, _, _ := runEnv(t, "")
	code, out, errOut := runTote(t, env, "run")
	if code != 0 || !strings.Contains(out, "run complete in ") || !strings.Contains(out, " rows ") {
		t.Fatalf("run: exit %d:\n%s%s", code, out, errOut)
	}
	for _, logged := range []string{"pass complete", "loaded processed batch", "transformed raw batch", "committed batch", "run started"} {
		if strings.Contains(errOut, logged) {
			t.Errorf("run logs %q at the default level too:\n%s", logged, errOut)
		}
	}
	if code, out, errOut := runTote(t, env, "extract"); code != 0 || errOut != "" || !strings.Contains(out, "nothing new in the source") {
		t.Errorf("extract with nothing new: exit %d, stderr %q", code, errOut)
	}
	if _, _, errOut := runTote(t, env, "extract", "--log-level", "debug"); !strings.Contains(errOut, "level=DEBUG msg=\"nothing new in the source") {
		t.Errorf("at debug level the summary is logged, at debug: %q", errOut)
	}
	_, _, errOut = runTote(t, nil, "seed", "--source", pgtest.NewDB(t))
	if !strings.Contains(errOut, "msg=seeding") || strings.Contains(errOut, "from=") {
		t.Errorf("seed logs: %q", errOut)
	}
}
