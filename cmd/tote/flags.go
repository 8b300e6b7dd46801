package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
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

// parse parses args; extra positional arguments are a usage error unless
// want is non-negative and matches their number.
func (f *flags) parse(args []string, want int) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.usage(f.e.stdout, f.summary)
			return flag.ErrHelp
		}
		fmt.Fprintf(f.e.stderr, "tote %s: %v\n", f.cmd, err)
		f.usage(f.e.stderr, f.summary)
		return errUsage
	}
	if f.err != nil {
		fmt.Fprintf(f.e.stderr, "tote %s: %v\n", f.cmd, f.err)
		return errUsage
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
	if n := f.fs.NArg(); n != max(want, 0) {
		fmt.Fprintf(f.e.stderr, "tote %s: unexpected arguments: %s\n", f.cmd, strings.Join(f.fs.Args(), " "))
		return errUsage
	}
	return nil
}

// usageErr reports a bad flag value and returns errUsage.
func (f *flags) usageErr(format string, a ...any) error {
	fmt.Fprintf(f.e.stderr, "tote %s: %s\n", f.cmd, fmt.Sprintf(format, a...))
	return errUsage
}

// logConfig is the logging configuration every command takes.
type logConfig struct {
	format string
	level  string
}

// logger builds the logger that the command's parts share. Logs go to
// standard error; a command's results go to standard output.
func (c logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.format)
}

// humanInt formats n with thousands separators.
func humanInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
