package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/replication"
)

func runCapture(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, `Usage: tote capture SUBCOMMAND [flags]

  setup   print what the source's owner must run for --capture logical; --apply runs it
  drop    remove the replication slot (and, with --drop-publication, the publication)

Run 'tote capture SUBCOMMAND --help' for flags.
`)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "setup":
		return runCaptureSetup(ctx, e, args[1:])
	case "drop":
		return runCaptureDrop(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "tote capture: unknown subcommand %q (want setup or drop)\n", args[0])
	return errUsage
}

// slotFlags registers the names of the slot and the publication.
func slotFlags(b *base) *replication.Config {
	var cfg replication.Config
	b.envString(&cfg.SlotName, "slot", "TOTE_SLOT", replication.DefaultSlotName, "logical replication slot `name`")
	b.envString(&cfg.Publication, "publication", "TOTE_PUBLICATION", replication.DefaultPublication,
		"publication `name` of the totesys tables")
	return &cfg
}

func runCaptureSetup(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "capture setup", "", `Checks the source for logical capture (--capture logical) and prints what
its owner must still run: wal_level = logical (set with ALTER SYSTEM, or
rds.logical_replication = 1 on Amazon RDS and Aurora; a restart is needed),
a publication of the totesys tables publishing every kind of change, REPLICA
IDENTITY where a table's is not its primary key, and with --role a role that
logs in with REPLICATION and SELECT on the tables. A table without a primary
key or replica identity is refused, named. --apply runs the statements, all
in one transaction, as the connecting role (the tables' owner, or a
superuser); it applies nothing while a restart is needed or a table is
refused. The slot itself is made by the first logical extraction. Safe to
run again: what is in place is left alone.

Exit status: 0 when the source is ready, or the printed statements make it so
(with --apply: they were run); 1 when a table is refused, or with --apply when
wal_level needs a restart.`, usesSource)
	defer b.close()
	cfg := slotFlags(b)
	apply := b.fs.Bool("apply", false, "run the statements (in one transaction), then check again")
	var opts replication.SetupOptions
	b.envString(&opts.Role, "role", "TOTE_CAPTURE_ROLE", "", "also prepare this `role` for tote to capture as: LOGIN REPLICATION, SELECT on the totesys tables")
	b.secretString(&opts.Password, "role-password", "TOTE_CAPTURE_ROLE_PASSWORD",
		"with --apply, set --role's `password` (sent as a SCRAM verifier, never printed); also TOTE_CAPTURE_ROLE_PASSWORD_FILE")
	asJSON := b.jsonFlag("the setup")
	if err := b.parse(args, 0, usesSource); err != nil {
		return err
	}
	if opts.Password != "" && opts.Role == "" {
		return b.usageErr("--role-password needs --role")
	}
	p, err := b.open(ctx)
	if err != nil {
		return err
	}
	s, err := replication.Plan(ctx, p.Source, *cfg, opts)
	if err != nil {
		return err
	}
	applied := 0
	if *apply {
		if err := replication.Apply(ctx, p.Source, s); err != nil {
			var nr *replication.NotReadyError
			if errors.As(err, &nr) && !*asJSON {
				printSetup(e.stdout, s, false)
			}
			return err
		}
		applied = len(s.Steps)
		if s, err = replication.Plan(ctx, p.Source, *cfg, replication.SetupOptions{Role: opts.Role}); err != nil {
			return err
		}
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(struct {
			replication.Setup
			Applied int  `json:"applied"`
			Ready   bool `json:"ready"`
		}{s, applied, s.Ready()}); err != nil {
			return err
		}
	} else {
		if *apply {
			fmt.Fprintf(e.stdout, "applied %d statements\n", applied)
		}
		printSetup(e.stdout, s, *apply)
	}
	if len(s.Refused) > 0 {
		names := make([]string, len(s.Refused))
		for i, r := range s.Refused {
			names[i] = r.Table
		}
		return fmt.Errorf("capture setup: %d tables cannot be captured as they are (%s): "+
			"the reason for each is printed above; fix them, then run setup again", len(names), strings.Join(names, ", "))
	}
	return nil
}

// printSetup prints what is in place and what is still to do.
func printSetup(w io.Writer, s replication.Setup, applied bool) {
	fmt.Fprintf(w, "source: database %s, schema %s, PostgreSQL %s, wal_level %s\n", s.Database, s.Schema, s.ServerVersion, s.WALLevel)
	if len(s.InPlace) > 0 {
		fmt.Fprintln(w, "in place:")
		for _, x := range s.InPlace {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
	for _, r := range s.Refused {
		fmt.Fprintf(w, "refused: table %s %s\n", r.Table, r.Reason)
	}
	if len(s.Restart) > 0 {
		fmt.Fprintln(w, "needs a server restart (as a superuser; on Amazon RDS and Aurora set rds.logical_replication = 1 in the DB parameter group instead, then reboot):")
		for _, sql := range s.RestartSQL() {
			fmt.Fprintf(w, "  %s\n", sql)
		}
		fmt.Fprintln(w, "  -- then restart PostgreSQL: these take effect only at a restart")
	}
	if len(s.Steps) > 0 {
		fmt.Fprintln(w, "to run on the source, as the tables' owner or a superuser (tote capture setup --apply runs them):")
		for _, st := range s.Steps {
			fmt.Fprintf(w, "  -- %s\n  %s\n", st.Why, st.SQL)
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	switch {
	case s.Ready():
		fmt.Fprintln(w, "ready: the source can be captured with --capture logical (the first extraction creates the slot)")
	case applied && len(s.Refused) == 0 && len(s.Restart) == 0:
		fmt.Fprintln(w, "not ready yet: the statements above are still to run")
	}
}

func runCaptureDrop(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "capture drop", "", `Drops the logical replication slot, which releases the WAL it holds on the
source; with --drop-publication, the publication too. What does not exist is
skipped. A slot a running tote streams is refused: stop it first. The next
extraction with --capture logical makes a new slot, and reads every table
again in its snapshot (a full extraction): nothing is lost, nothing doubled.`, usesSource)
	defer b.close()
	cfg := slotFlags(b)
	pub := b.fs.Bool("drop-publication", false, "drop the publication (--publication) too")
	asJSON := b.jsonFlag("what was dropped")
	p, err := b.start(ctx, args, 0, usesSource)
	if err != nil {
		return err
	}
	d, err := replication.Drop(ctx, p.Source, *cfg, *pub)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(d)
	}
	c := cfg.WithDefaults()
	if d.Slot {
		fmt.Fprintf(e.stdout, "dropped slot %s: the WAL it held is released; the next logical extraction starts a new slot with a full extraction\n", c.SlotName)
	} else {
		fmt.Fprintf(e.stdout, "no slot %s: nothing to drop\n", c.SlotName)
	}
	if *pub {
		if d.Publication {
			fmt.Fprintf(e.stdout, "dropped publication %s\n", c.Publication)
		} else {
			fmt.Fprintf(e.stdout, "no publication %s: nothing to drop\n", c.Publication)
		}
	}
	return nil
}

// slot returns the slot whose health status and serve watch: nil with
// capture by xmin; a usage error for another mode, or without a source.
func (c *captureMode) slot(b *base) (*replication.Config, error) {
	switch c.mode {
	case extract.CaptureXmin:
		return nil, nil
	case extract.CaptureLogical:
		if b.sourceURL == "" {
			return nil, b.usageErr("--capture logical needs the source (--source or TOTE_SOURCE_URL) to read the slot's health")
		}
		cfg := c.cfg
		return &cfg, nil
	}
	return nil, b.usageErr("--capture %q: want xmin or logical", c.mode)
}

// printSlot prints the slot's health in one line, and its problem.
func printSlot(w io.Writer, h replication.SlotHealth) {
	if !h.Exists {
		fmt.Fprintf(w, "slot %s: MISSING: %s\n", h.Slot, h.Describe())
		return
	}
	state := "idle"
	if h.Active {
		state = "streaming"
	}
	safe := "unbounded (max_slot_wal_keep_size -1: it may fill the disk)"
	if h.SafeWALBytes != nil {
		safe = replication.Bytes(*h.SafeWALBytes)
	}
	lag := h.Lag.Round(time.Second).String()
	if h.LagFrom == replication.LagUnknown {
		lag = "unknown"
	}
	fmt.Fprintf(w, "slot %s: %s, wal_status %s, lag %s (%s, by %s), holds %s of WAL, safe_wal_size %s\n",
		h.Slot, state, h.WALStatus, replication.Bytes(h.LagBytes), lag, h.LagFrom, replication.Bytes(h.RetainedBytes), safe)
	if h.Problem != "" {
		fmt.Fprintf(w, "slot %s: PROBLEM (%s): %s\n", h.Slot, h.Problem, h.Describe())
	}
}
