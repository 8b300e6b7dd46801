// Command tote moves Terrific Totes' operational database (totesys) into a
// data lake and on into a star-schema warehouse.
//
// This package only parses flags and environment, builds the parts and calls
// them: the work lives in the packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/terrifictotes/tote/postgres"
)

// command is one `tote CMD`.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// stopsOnSignal names the commands whose normal end is a signal (a daemon,
// a server, an open-ended simulation): they exit 0 when they stop cleanly.
var stopsOnSignal = map[string]bool{"serve": true, "dashboard": true, "simulate": true}

var commands = []command{
	{"seed", "create the totesys schema in a source database and fill it", runSeed},
	{"simulate", "make live-business changes to a seeded source database", runSimulate},
	{"run", "one pass of the pipeline: extract, transform, load", runRun},
	{"extract", "extract new row versions from the source into the lake's raw zone", runExtract},
	{"transform", "turn new raw batches into the star schema in the lake's processed zone", runTransform},
	{"load", "load new processed batches into the warehouse, exactly once", runLoad},
	{"rebuild", "build a fresh warehouse from the lake alone", runRebuild},
	{"lake", "inspect the lake: ls, show BATCH, clean", runLake},
	{"iceberg", "the star as Iceberg tables: tables, publish, maintain", runIceberg},
	{"rejects", "list the rows quarantined because a value could not be transformed", runRejects},
	{"verify", "compare the warehouse with the source, and repair it", runVerify},
	{"warehouse", "let a BI tool read the warehouse: grant-reader ROLE", runWarehouse},
	{"capture", "prepare the source for logical capture (setup), or remove its slot (drop)", runCapture},
	{"serve", "run the pipeline on a schedule, with health, metrics, run history and alerts", runServe},
	{"status", "print the recent runs, the data's freshness and the lake's size", runStatus},
	{"dashboard", "serve the dashboard, read-only, against a warehouse loaded elsewhere", runDashboard},
	{"demo", "seed a source (a throwaway server unless URLs are given) and run the pipeline on it", runDemo},
	{"version", "print the version", runVersion},
}

// env is what a command may touch of the process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// errUsage marks a mistake in the command line; it exits with status 2.
var errUsage = errors.New("usage")

// signalled is the cause of the context's cancellation by a signal.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "interrupted by " + signalName(s.sig) }

// code is the exit status shells expect of a process a signal stopped.
func (s signalled) code() int { return 128 + int(s.sig) }

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the command; later ones are ignored
		// (still caught), so that what it cleans up on the way out (a
		// half-seeded database, a throwaway server, a temporary lake)
		// is cleaned up.
		cancel(signalled{(<-sigs).(syscall.Signal)})
		for range sigs {
		}
	}()
	stopProfiles := startProfiles(os.Getenv, os.Stderr)
	code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stopProfiles()
	cancel(nil)
	os.Exit(code)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, e)
		}
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var sig signalled
		if errors.As(context.Cause(ctx), &sig) && !(err == nil && stopsOnSignal[c.name]) && !errors.Is(err, errUsage) {
			// One line, whatever the stage: the stage's own error is
			// the cancellation the signal caused.
			fmt.Fprintf(e.stderr, "tote %s: %v\n", c.name, sig)
			return sig.code()
		}
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.Is(err, errDifferent):
			return 1 // the command has said what differs
		}
		fmt.Fprintf(e.stderr, "tote: %v\n", postgres.Reword(err))
		return 1
	}
	fmt.Fprintf(e.stderr, "tote: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `tote moves totesys into a data lake and a star-schema warehouse.

Usage:
  tote COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run 'tote COMMAND --help' for a command's flags. Every flag that names a
database or the lake also reads an environment variable (shown in its help).
`)
}
