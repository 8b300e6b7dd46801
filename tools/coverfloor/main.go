// Command coverfloor reads a Go coverage profile (go test -coverprofile, one
// or many packages' profiles concatenated), prints the statement coverage of
// each package and of the whole tree, and fails when the tree's falls under a
// floor. make cover runs it after the test suite.
//
// A block that several test binaries report (go test -coverpkg=./... gives
// every package's test binary every package's blocks) counts once, as covered
// if any of them ran it: the figure is "statements some test runs", not a
// sum over binaries.
//
// It owns the arithmetic and the table only; which packages are measured and
// with which flags is the Makefile's business.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coverfloor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", "coverage.out", "the coverage `file` go test wrote")
	floor := fs.Float64("floor", 85, "fail when the tree's statement coverage is under this `percent`")
	target := fs.Float64("target", 90, "mark the packages under this `percent` in the table")
	module := fs.String("module", "", "module path trimmed from the package names in the table")
	var exclude listFlag
	fs.Var(&exclude, "exclude", "a package `path` (module-relative, e.g. cmd/bench) shown but left out of the total; repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "coverfloor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	f, err := os.Open(*profile)
	if err != nil {
		fmt.Fprintf(stderr, "coverfloor: %v (run make cover, which writes it)\n", err)
		return 1
	}
	defer f.Close()
	blocks, err := parse(f)
	if err != nil {
		fmt.Fprintf(stderr, "coverfloor: %s: %v\n", *profile, err)
		return 1
	}
	pkgs := tally(blocks, *module, exclude)
	if len(pkgs) == 0 {
		fmt.Fprintf(stderr, "coverfloor: %s holds no statements\n", *profile)
		return 1
	}
	total := write(stdout, pkgs, *target)
	pct := total.percent()
	if pct < *floor {
		fmt.Fprintf(stderr, "coverfloor: statement coverage %.1f%% is under the floor of %.1f%% (target %.1f%%)\n", pct, *floor, *target)
		return 1
	}
	fmt.Fprintf(stdout, "coverage %.1f%% meets the floor of %.1f%% (target %.1f%%)\n", pct, *floor, *target)
	return 0
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// block is one basic block of a profile: its statements and whether any
// test binary ran it.
type block struct {
	file    string
	stmts   int
	covered bool
}

// parse reads a profile ("mode: …" lines, then "file:l.c,l.c stmts count"
// lines) and merges the blocks that appear more than once.
func parse(r io.Reader) (map[string]*block, error) {
	blocks := map[string]*block{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "mode:") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want \"file:pos stmts count\", got %q", n, line)
		}
		pos := fields[0]
		colon := strings.LastIndexByte(pos, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("line %d: no file in %q", n, pos)
		}
		stmts, err := strconv.Atoi(fields[1])
		if err != nil || stmts < 0 {
			return nil, fmt.Errorf("line %d: statement count %q", n, fields[1])
		}
		count, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || count < 0 {
			return nil, fmt.Errorf("line %d: run count %q", n, fields[2])
		}
		b := blocks[pos]
		if b == nil {
			b = &block{file: pos[:colon], stmts: stmts}
			blocks[pos] = b
		} else if b.stmts != stmts {
			return nil, fmt.Errorf("line %d: %s has %d statements here and %d before (profiles of different sources?)", n, pos, stmts, b.stmts)
		}
		b.covered = b.covered || count > 0
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(blocks) == 0 && n == 0 {
		return nil, errors.New("empty profile")
	}
	return blocks, nil
}

// pkgCover is one package's (or the tree's) statements and covered statements.
type pkgCover struct {
	name           string
	stmts, covered int
	excluded       bool // shown, not counted in the total
}

func (p pkgCover) percent() float64 {
	if p.stmts == 0 {
		return 100
	}
	return 100 * float64(p.covered) / float64(p.stmts)
}

// tally sums the blocks by package (the file's directory), sorted by name;
// the excluded packages are marked so.
func tally(blocks map[string]*block, module string, exclude []string) []pkgCover {
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[strings.Trim(e, "/")] = true
	}
	by := map[string]*pkgCover{}
	for _, b := range blocks {
		name := path.Dir(b.file)
		if module != "" {
			switch {
			case name == module:
				name = "."
			case strings.HasPrefix(name, module+"/"):
				name = strings.TrimPrefix(name, module+"/")
			}
		}
		p := by[name]
		if p == nil {
			p = &pkgCover{name: name, excluded: skip[name]}
			by[name] = p
		}
		p.stmts += b.stmts
		if b.covered {
			p.covered += b.stmts
		}
	}
	out := make([]pkgCover, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// write prints the table and returns the tree's total.
func write(w io.Writer, pkgs []pkgCover, target float64) pkgCover {
	width := len("package")
	for _, p := range pkgs {
		width = max(width, len(p.name))
	}
	total := pkgCover{name: "total"}
	fmt.Fprintf(w, "%-*s %10s %10s %7s\n", width, "package", "statements", "covered", "cover")
	row := func(p pkgCover) {
		mark := ""
		switch {
		case p.excluded:
			mark = "  (not counted)"
		case p.percent() < target:
			mark = "  < target"
		}
		fmt.Fprintf(w, "%-*s %10d %10d %6.1f%%%s\n", width, p.name, p.stmts, p.covered, p.percent(), mark)
	}
	for _, p := range pkgs {
		row(p)
		if !p.excluded {
			total.stmts += p.stmts
			total.covered += p.covered
		}
	}
	row(total)
	return total
}
