package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// flags is a command's flag set, where a flag may fall back to an
// environment variable when it is not given.
type flags struct {
	fs   *flag.FlagSet
	e    *env
	cmd  string
	args string // what follows the flags in the synopsis
	// summary is the command's description, for its usage.
	summary string
	envs    map[string]string
	err     error // an environment value that did not parse
	// positional holds the arguments that are not flags, once parsed.
	positional []string

	secrets []secretFlag // flags whose values may come from NAME_FILE or Secrets Manager
}

// secretFlag is a flag holding a secret setting, resolved after parsing.
type secretFlag struct {
	p   *string
	env string
}

func newFlags(e *env, cmd, args, summary string) *flags {
	f := &flags{fs: flag.NewFlagSet(cmd, flag.ContinueOnError), e: e, cmd: cmd, args: args, envs: map[string]string{}}
	// The flag package would print the usage on stderr for --help too;
	// parse prints it, on stdout for --help and after the error otherwise.
	f.fs.SetOutput(io.Discard)
	f.fs.Usage = func() {}
	f.summary = summary
	return f
}

func (f *flags) usage(w io.Writer, summary string) {
	fmt.Fprintf(w, "Usage: tote %s [flags] %s\n\n%s\n\nFlags:\n", f.cmd, f.args, summary)
	f.fs.VisitAll(func(fl *flag.Flag) {
		name, help := flag.UnquoteUsage(fl)
		fmt.Fprintf(w, "  --%s", fl.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n      %s", help)
		var notes []string
		if env, ok := f.envs[fl.Name]; ok {
			notes = append(notes, "env "+env)
		}
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "0s" {
			notes = append(notes, "default "+fl.DefValue)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	})
}

// fromEnv returns env's value if it is set, else def; it remembers env for the help.
func (f *flags) fromEnv(name, env, def string) string {
	f.envs[name] = env
	if v := f.e.getenv(env); v != "" {
		return v
	}
	return def
}

func (f *flags) envString(p *string, name, env, def, usage string) {
	f.fs.StringVar(p, name, f.fromEnv(name, env, def), usage)
	// Help shows the built-in default, not the environment's value, which may hold a secret.
	f.fs.Lookup(name).DefValue = def
}

// envDuration registers a duration flag that falls back to env; an
// environment value that does not parse is reported by parse.
func (f *flags) envDuration(p *time.Duration, name, env string, def time.Duration, usage string) {
	v := def
	if s := f.fromEnv(name, env, ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil && f.err == nil {
			f.err = fmt.Errorf("%s=%q: want a duration such as %s", env, s, def)
		}
		if err == nil {
			v = d
		}
	}
	f.fs.DurationVar(p, name, v, usage)
	f.fs.Lookup(name).DefValue = def.String()
}

// parseInterleaved parses args as the flag package does, but lets flags
// follow positional arguments (`tote lake show 1 --lake L`), as every
// modern command line does; after "--" everything is positional. It
// returns the positional arguments in their order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// The flag package stops at the first non-flag or after "--",
		// which it consumes: everything after "--" is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// arg returns the i'th positional argument, or "".
func (f *flags) arg(i int) string {
	if i < len(f.positional) {
		return f.positional[i]
	}
	return ""
}

// parse parses args, flags and positional arguments in any order; extra
// positional arguments are a usage error unless want is non-negative and
// matches their number.
func (f *flags) parse(args []string, want int) error {
	positional, err := parseInterleaved(f.fs, args)
	f.positional = positional
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.usage(f.e.stdout, f.summary)
			return flag.ErrHelp
		}
		return f.usageErr("%v", err)
	}
	if f.err != nil {
		return f.usageErr("%v", f.err)
	}
	if len(f.secrets) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res := f.e.resolver()
		for _, sf := range f.secrets {
			v, err := res.Resolve(ctx, sf.env, *sf.p)
			if err != nil {
				return err
			}
			*sf.p = v
		}
	}
	if n := len(f.positional); n != max(want, 0) {
		if n < want {
			return f.usageErr("missing %s", f.args)
		}
		return f.usageErr("unexpected arguments: %s", strings.Join(f.positional[max(want, 0):], " "))
	}
	return nil
}

// usageErr reports a mistake on the command line in one line that ends
// saying where the flags are listed, and returns errUsage (exit status 2).
func (f *flags) usageErr(format string, a ...any) error {
	fmt.Fprintf(f.e.stderr, "tote %s: %s (see tote %s --help)\n", f.cmd, fmt.Sprintf(format, a...), f.cmd)
	return errUsage
}

// logConfig is the logging configuration every command takes.
type logConfig struct {
	format string
	level  string
	// printsSummary says the command prints what it did on standard
	// output: the parts' summary logs would say it twice, so they are
	// logged at debug level instead.
	printsSummary bool
}

// summaryLogs are the parts' info logs that a command's own output says
// too (see logConfig.printsSummary).
var summaryLogs = map[string]bool{
	"pass complete":                                 true,
	"transformed raw batches":                       true,
	"transformed raw batch":                         true,
	"loaded processed batches":                      true,
	"loaded processed batch":                        true,
	"committed batch":                               true,
	"run started":                                   true,
	"nothing new in the source: no batch committed": true,
}

// summaryAsDebug logs summaryLogs' messages at debug level.
type summaryAsDebug struct{ slog.Handler }

func (h summaryAsDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && summaryLogs[r.Message] {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h summaryAsDebug) WithAttrs(as []slog.Attr) slog.Handler {
	return summaryAsDebug{h.Handler.WithAttrs(as)}
}

func (h summaryAsDebug) WithGroup(name string) slog.Handler {
	return summaryAsDebug{h.Handler.WithGroup(name)}
}

// logger builds the logger that the command's parts share. Logs go to
// standard error; a command's results go to standard output.
func (c logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", c.format)
	}
	if c.printsSummary {
		h = summaryAsDebug{h}
	}
	return slog.New(h), nil
}

// subcommandFirst moves a command's subcommand (the first argument that
// is one of names) to the front when flags come before it, as in
// `tote lake --lake L ls`; the subcommand's own parse takes the flags.
func subcommandFirst(args []string, names ...string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help" {
		return args
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if slices.Contains(names, a) {
			return append(append([]string{a}, args[:i]...), args[i+1:]...)
		}
	}
	return args
}
