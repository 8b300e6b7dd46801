package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

func runWarehouse(ctx context.Context, e *env, args []string) error {
	args = subcommandFirst(args, "grant-reader")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, `Usage: tote warehouse grant-reader ROLE [flags]

  grant-reader ROLE   let ROLE read the star schema (for a BI tool), and nothing of tote's own

Run 'tote warehouse SUBCOMMAND --help' for flags.
`)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "grant-reader":
		return runGrantReader(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "tote warehouse: unknown subcommand %q (want grant-reader)\n", args[0])
	return errUsage
}

func runGrantReader(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "warehouse grant-reader", "ROLE", `Lets ROLE, an existing PostgreSQL role, read the star schema for a BI tool
(Tableau, QuickSight, Metabase; docs/bi.md): CONNECT on the database, USAGE
on the star tables' schema, SELECT on every star table and every fact's view
of current versions, and SELECT on the tables and views the migrations create
there later. Nothing on schema tote (the ledger, runs, rejects). It creates
nothing, and may be run again. Connect as the owner of the star tables (the
role that runs tote load) or a superuser; create ROLE first, e.g.
CREATE ROLE bi_reader LOGIN PASSWORD '…'.`, usesWarehouse)
	defer b.close()
	asJSON := b.jsonFlag("what was granted")
	p, err := b.start(ctx, args, 1, usesWarehouse)
	if err != nil {
		return err
	}
	r, err := p.Warehouse.GrantReader(ctx, b.arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	fmt.Fprintf(e.stdout, "granted %s read access to the star schema (database %s, schema %s):\n", r.Role, r.Database, r.Schema)
	fmt.Fprintf(e.stdout, "  SELECT on the %d star tables", len(r.Tables))
	if len(r.Views) > 0 {
		fmt.Fprintf(e.stdout, ", the views %s", strings.Join(r.Views, ", "))
	}
	fmt.Fprintf(e.stdout, ", and on the tables and views that %s creates in schema %s later\n", strings.Join(r.Owners, " or "), r.Schema)
	fmt.Fprintf(e.stdout, "  CONNECT on the database, USAGE on the schema; nothing on schema tote\n")
	for _, n := range r.Notes {
		fmt.Fprintf(e.stdout, "note: %s\n", n)
	}
	fmt.Fprintf(e.stdout, "connect BI tools as %s with sslmode=verify-full: docs/bi.md\n", r.Role)
	return nil
}
