package main

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"reflect"
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
	code, _, errOut = runTote(t, nil, "lake", "show", "--lake", lake)
	if code != 2 || !strings.HasPrefix(errOut, "tote lake show: missing BATCH\n") {
		t.Errorf("lake show without a batch: exit %d: %q", code, errOut)
	}
	code, _, errOut = runTote(t, nil, "lake", "show", "1", "2", "--lake", lake)
	if code != 2 || !strings.HasPrefix(errOut, "tote lake show: unexpected arguments: 2\n") {
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
