package replication

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/terrifictotes/tote/totesys"
)

// DB is what the setup, drop and health checks need of a connection to the
// source: a *pgx.Conn or a *pgxpool.Pool.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// publishAll is what the publication must publish: every kind of change,
// TRUNCATE included (a held mass deletion, not a silent gap).
const publishAll = "insert, update, delete, truncate"

// Setup is what logical capture needs of the source, checked against it:
// what is in place, the statements its owner must still run, and what
// tote cannot capture whatever is run.
type Setup struct {
	Database      string `json:"database"`
	Schema        string `json:"schema"`
	ServerVersion string `json:"server_version"`
	WALLevel      string `json:"wal_level"`
	// Standby says the server is a hot standby: setup is applied on its
	// primary (publications, replica identity and roles replicate), and
	// logical decoding on a standby needs PostgreSQL 16+.
	Standby bool `json:"standby,omitempty"`
	// versionNum is server_version_num.
	versionNum int
	// Restart lists the server settings that must change, each as
	// "name = value", and take effect only when the server restarts;
	// ALTER SYSTEM sets them (RestartSQL). Empty when none.
	Restart []string `json:"restart,omitempty"`
	// Steps are the statements still to run, in order; empty when the
	// source is ready (or refused).
	Steps []Step `json:"steps,omitempty"`
	// InPlace says what is already as logical capture needs it.
	InPlace []string `json:"in_place,omitempty"`
	// Refused names each table logical capture cannot take as it is,
	// and why; Apply runs nothing while any is.
	Refused []Refusal `json:"refused,omitempty"`
	// Notes are things worth knowing that need no statement.
	Notes []string `json:"notes,omitempty"`
}

// Step is one statement to run on the source.
type Step struct {
	Why string `json:"why"`
	// SQL is the statement as printed. A secret in it (a role's
	// password) is shown as '…'.
	SQL string `json:"sql"`
	run string // the statement as run, when it differs from SQL
}

// Refusal is a table that cannot be captured, and why.
type Refusal struct {
	Table  string `json:"table"`
	Reason string `json:"reason"`
}

// SetupOptions says what else Plan prepares besides the publication.
type SetupOptions struct {
	// Role, if set, is the role tote captures as: it gets LOGIN,
	// REPLICATION, and SELECT on the totesys tables (created if missing).
	Role string
	// Password, if set, becomes Role's password. It is sent only as a
	// SCRAM-SHA-256 verifier computed here, never printed nor sent as is.
	Password string
}

// RestartSQL returns the statements that make the Restart settings; they
// take effect when the server restarts.
func (s Setup) RestartSQL() []string {
	var out []string
	for _, kv := range s.Restart {
		name, value, _ := strings.Cut(kv, " = ")
		out = append(out, fmt.Sprintf("ALTER SYSTEM SET %s = %s;", name, value))
	}
	return out
}

// Ready reports whether the source may be captured as it is: nothing to
// run, nothing to restart, nothing refused.
func (s Setup) Ready() bool {
	return len(s.Steps) == 0 && len(s.Restart) == 0 && len(s.Refused) == 0 && (!s.Standby || s.versionNum >= 160000)
}

// NotReadyError says why setup cannot be applied: settings that need a
// restart, or tables refused. Nothing was run.
type NotReadyError struct {
	Restart []string
	Refused []Refusal
	Standby bool
}

func (e *NotReadyError) Error() string {
	if e.Standby {
		return "this server is a hot standby, which takes no changes: run tote capture setup --apply on its primary " +
			"(the publication, replica identity and role replicate here); nothing was applied"
	}
	var parts []string
	if len(e.Restart) > 0 {
		parts = append(parts, fmt.Sprintf("the server needs %s, which take effect only at a restart: "+
			"set them (ALTER SYSTEM SET, or on Amazon RDS and Aurora rds.logical_replication = 1 in the parameter group), "+
			"restart the server and run setup again", strings.Join(e.Restart, ", ")))
	}
	for _, r := range e.Refused {
		parts = append(parts, fmt.Sprintf("table %s: %s", r.Table, r.Reason))
	}
	return "the source is not ready for logical capture, nothing was applied: " + strings.Join(parts, "; ")
}

const serverSQL = `
SELECT current_database(), coalesce(current_schema(), ''), current_setting('server_version'),
       current_setting('wal_level'), current_setting('max_replication_slots')::int,
       current_setting('max_wal_senders')::int, current_setting('server_version_num')::int, pg_is_in_recovery(),
       current_setting('max_slot_wal_keep_size')`

// tablesSQL says, for each name in $1 in order, whether the table exists
// in the current schema, its replica identity, and whether it has a
// primary key and an index chosen as replica identity.
const tablesSQL = `
SELECT t.name, c.oid IS NOT NULL, coalesce(c.relreplident::text, ''),
       coalesce((SELECT bool_or(i.indisprimary) FROM pg_index i WHERE i.indrelid = c.oid), false),
       coalesce((SELECT bool_or(i.indisreplident) FROM pg_index i WHERE i.indrelid = c.oid), false)
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)
LEFT JOIN pg_class c ON c.relname = t.name AND c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY t.n`

const publicationSQL = `
SELECT p.puballtables, p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate
FROM pg_publication p WHERE p.pubname = $1`

// publishedSQL lists the current schema's tables a publication has, and
// (PostgreSQL 15+) whether it filters their rows or columns.
const publishedSQL = `
SELECT pt.tablename::text, false FROM pg_publication_tables pt
WHERE pt.pubname = $1 AND pt.schemaname = current_schema()`

const publishedFiltersSQL = `
SELECT pt.tablename::text,
       pt.rowfilter IS NOT NULL OR cardinality(pt.attnames) <> (
           SELECT count(*) FROM pg_attribute a
           WHERE a.attrelid = format('%I.%I', pt.schemaname, pt.tablename)::regclass AND a.attnum > 0 AND NOT a.attisdropped)
FROM pg_publication_tables pt
WHERE pt.pubname = $1 AND pt.schemaname = current_schema()`

const roleSQL = `
SELECT r.rolcanlogin, r.rolreplication, r.rolsuper,
       EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = 'rds_replication' AND m.member = r.oid)
FROM pg_roles r WHERE r.rolname = $1`

// rdsSQL says whether the server is Amazon RDS or Aurora, where only the
// rds_replication role, not the REPLICATION attribute, may be granted.
const rdsSQL = `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication')`

// grantsSQL says whether role $1 may connect to the database, use the
// current schema, and which of the tables in $2 it may not SELECT from.
const grantsSQL = `
SELECT has_database_privilege($1, current_database(), 'CONNECT'),
       has_schema_privilege($1, current_schema(), 'USAGE'),
       coalesce((SELECT array_agg(t.name ORDER BY t.n) FROM unnest($2::text[]) WITH ORDINALITY AS t(name, n)
                 JOIN pg_class c ON c.relname = t.name AND c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
                 WHERE NOT has_table_privilege($1, c.oid, 'SELECT')), '{}')`

// Plan checks the source db against what logical capture with cfg needs,
// and returns what is in place and what its owner must still run. It
// changes nothing. Tables that do not exist, or that have neither a
// primary key nor another replica identity, are refused.
func Plan(ctx context.Context, db DB, cfg Config, opts SetupOptions) (Setup, error) {
	cfg = cfg.WithDefaults()
	var s Setup
	var slots, senders int
	var keep string
	if err := db.QueryRow(ctx, serverSQL).Scan(&s.Database, &s.Schema, &s.ServerVersion, &s.WALLevel,
		&slots, &senders, &s.versionNum, &s.Standby, &keep); err != nil {
		return Setup{}, fmt.Errorf("capture setup: read the server's settings: %w", err)
	}
	versionNum := s.versionNum
	if s.Standby {
		note := "this server is a hot standby: the statements below are run on its primary (they replicate here)"
		if versionNum < 160000 {
			note += fmt.Sprintf("; logical decoding on a standby needs PostgreSQL 16 or later (this is %s): capture from the primary", s.ServerVersion)
		} else {
			note += "; decoding here also needs wal_level = logical on the primary and hot_standby_feedback = on here"
		}
		s.Notes = append(s.Notes, note)
	}
	if keep == "-1" {
		s.Notes = append(s.Notes, "max_slot_wal_keep_size is -1: a slot that tote stops reading keeps the source's WAL "+
			"until its disk is full; bound it (ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf(), "+
			"no restart needed; on RDS in the parameter group): past it the slot is lost, tote alerts and reads every table again")
	} else {
		s.InPlace = append(s.InPlace, "max_slot_wal_keep_size = "+keep+": a slot left behind is lost rather than fill the disk")
	}
	if s.Schema == "" {
		return Setup{}, errors.New("capture setup: no current schema (search_path names no schema that exists)")
	}
	if s.WALLevel == "logical" {
		s.InPlace = append(s.InPlace, "wal_level = logical")
	} else {
		s.Restart = append(s.Restart, "wal_level = logical")
	}
	if slots < 1 {
		s.Restart = append(s.Restart, "max_replication_slots = 10")
	}
	if senders < 1 {
		s.Restart = append(s.Restart, "max_wal_senders = 10")
	}

	names := totesys.TableNames()
	if err := s.planTables(ctx, db, names); err != nil {
		return Setup{}, err
	}
	if err := s.planPublication(ctx, db, cfg.Publication, names, versionNum); err != nil {
		return Setup{}, err
	}
	if opts.Role != "" {
		if err := s.planRole(ctx, db, opts, names); err != nil {
			return Setup{}, err
		}
	}
	if len(s.Refused) > 0 {
		s.Steps = nil // nothing to run until the refused tables are fixed
	}
	return s, nil
}

func (s *Setup) planTables(ctx context.Context, db DB, names []string) error {
	rows, err := db.Query(ctx, tablesSQL, names)
	if err != nil {
		return fmt.Errorf("capture setup: read the tables' keys: %w", err)
	}
	var name, ident string
	var exists, pk, identIndex bool
	keyed := 0
	_, err = pgx.ForEachRow(rows, []any{&name, &exists, &ident, &pk, &identIndex}, func() error {
		table := pgx.Identifier{s.Schema, name}.Sanitize()
		switch {
		case !exists:
			s.Refused = append(s.Refused, Refusal{name, fmt.Sprintf("does not exist in schema %s of database %s", s.Schema, s.Database)})
		case ident == "f":
			s.InPlace = append(s.InPlace, fmt.Sprintf("%s: REPLICA IDENTITY FULL (whole old rows in the WAL; DEFAULT, the primary key, is enough)", name))
		case ident == "i" && identIndex:
			s.InPlace = append(s.InPlace, fmt.Sprintf("%s: REPLICA IDENTITY USING INDEX", name))
		case pk && ident == "d":
			keyed++
		case pk:
			s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("%s's updates and deletes must name the row: its primary key", name),
				SQL: fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY DEFAULT;", table)})
		default:
			s.Refused = append(s.Refused, Refusal{name, "has no primary key and no replica identity, so its updates and deletes " +
				"cannot be captured (and, once published, fail in the source): add a primary key, or " +
				fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL", table)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("capture setup: read the tables' keys: %w", err)
	}
	if keyed > 0 {
		s.InPlace = append(s.InPlace, fmt.Sprintf("replica identity: the primary key (DEFAULT) of %d of the %d tables", keyed, len(names)))
	}
	return nil
}

func (s *Setup) planPublication(ctx context.Context, db DB, pub string, names []string, versionNum int) error {
	quoted := pgx.Identifier{pub}.Sanitize()
	var all, publishes bool
	err := db.QueryRow(ctx, publicationSQL, pub).Scan(&all, &publishes)
	if errors.Is(err, pgx.ErrNoRows) {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("publication %s: the %d totesys tables, every kind of change", pub, len(names)),
			SQL: fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = '%s');", quoted, s.tableList(names), publishAll)})
		return nil
	}
	if err != nil {
		return fmt.Errorf("capture setup: read publication %s: %w", pub, err)
	}
	if !publishes {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("publication %s must publish every kind of change, TRUNCATE included", pub),
			SQL: fmt.Sprintf("ALTER PUBLICATION %s SET (publish = '%s');", quoted, publishAll)})
	}
	if all {
		s.InPlace = append(s.InPlace, fmt.Sprintf("publication %s: FOR ALL TABLES (tote reads only the totesys tables)", pub))
		return nil
	}
	q := publishedSQL
	if versionNum >= 150000 {
		q = publishedFiltersSQL
	}
	rows, err := db.Query(ctx, q, pub)
	if err != nil {
		return fmt.Errorf("capture setup: read publication %s's tables: %w", pub, err)
	}
	published := map[string]bool{}
	var table string
	var filtered, anyFiltered bool
	if _, err := pgx.ForEachRow(rows, []any{&table, &filtered}, func() error {
		published[table] = true
		anyFiltered = anyFiltered || (filtered && slices.Contains(names, table))
		return nil
	}); err != nil {
		return fmt.Errorf("capture setup: read publication %s's tables: %w", pub, err)
	}
	var missing []string
	for _, n := range names {
		if !published[n] {
			missing = append(missing, n)
		}
	}
	switch {
	case anyFiltered:
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("publication %s filters rows or columns of a totesys table: tote needs them all", pub),
			SQL: fmt.Sprintf("ALTER PUBLICATION %s SET TABLE %s;", quoted, s.tableList(names))})
	case len(missing) > 0:
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("publication %s lacks %d totesys tables", pub, len(missing)),
			SQL: fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s;", quoted, s.tableList(missing))})
	default:
		s.InPlace = append(s.InPlace, fmt.Sprintf("publication %s: the %d totesys tables", pub, len(names)))
	}
	return nil
}

func (s *Setup) planRole(ctx context.Context, db DB, opts SetupOptions, names []string) error {
	role := pgx.Identifier{opts.Role}.Sanitize()
	var rds bool
	if err := db.QueryRow(ctx, rdsSQL).Scan(&rds); err != nil {
		return fmt.Errorf("capture setup: look up role rds_replication: %w", err)
	}
	var login, replication, super, rdsMember bool
	err := db.QueryRow(ctx, roleSQL, opts.Role).Scan(&login, &replication, &super, &rdsMember)
	exists := err == nil
	// On RDS and Aurora, replication is granted as a role (the master
	// user may not give the REPLICATION attribute).
	grantReplication := func() {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s streams the slot (Amazon RDS: by membership of rds_replication)", opts.Role),
			SQL: fmt.Sprintf("GRANT rds_replication TO %s;", role)})
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows) && rds:
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s, which tote captures as", opts.Role),
			SQL: fmt.Sprintf("CREATE ROLE %s LOGIN;", role)})
		grantReplication()
	case errors.Is(err, pgx.ErrNoRows):
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s, which tote captures as: it logs in and streams the slot", opts.Role),
			SQL: fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION;", role)})
	case err != nil:
		return fmt.Errorf("capture setup: look up role %s: %w", opts.Role, err)
	case super:
		s.Notes = append(s.Notes, fmt.Sprintf("%s is a superuser: it can do anything to the source; "+
			"give tote a role of its own (LOGIN REPLICATION, SELECT on the totesys tables)", opts.Role))
	case rds && login && (replication || rdsMember):
		s.InPlace = append(s.InPlace, fmt.Sprintf("role %s: LOGIN, and replication (rds_replication)", opts.Role))
	case rds:
		if !login {
			s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s must log in", opts.Role), SQL: fmt.Sprintf("ALTER ROLE %s LOGIN;", role)})
		}
		if !replication && !rdsMember {
			grantReplication()
		}
	case !login || !replication:
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s must log in and stream the slot", opts.Role),
			SQL: fmt.Sprintf("ALTER ROLE %s LOGIN REPLICATION;", role)})
	default:
		s.InPlace = append(s.InPlace, fmt.Sprintf("role %s: LOGIN REPLICATION", opts.Role))
	}
	if opts.Password != "" {
		verifier, err := scramVerifier(opts.Password)
		if err != nil {
			return fmt.Errorf("capture setup: role %s's password: %w", opts.Role, err)
		}
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s's password (sent as a SCRAM-SHA-256 verifier, never as is)", opts.Role),
			SQL: fmt.Sprintf("ALTER ROLE %s PASSWORD '…';", role),
			run: fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", role, verifier)})
	} else if !exists {
		s.Notes = append(s.Notes, fmt.Sprintf("set %s's password where it is not logged: \\password %s in psql "+
			"(or give --role-password to tote capture setup --apply)", opts.Role, opts.Role))
	}

	connect, usage, unread := false, false, names
	if exists && !super {
		if err := db.QueryRow(ctx, grantsSQL, opts.Role, names).Scan(&connect, &usage, &unread); err != nil {
			return fmt.Errorf("capture setup: read role %s's privileges: %w", opts.Role, err)
		}
	}
	if super {
		return nil
	}
	if !connect {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s must connect to database %s", opts.Role, s.Database),
			SQL: fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s;", pgx.Identifier{s.Database}.Sanitize(), role)})
	}
	if !usage {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s must see schema %s", opts.Role, s.Schema),
			SQL: fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s;", pgx.Identifier{s.Schema}.Sanitize(), role)})
	}
	// Tables refused for not existing cannot be granted on.
	var grant []string
	for _, n := range unread {
		if !slices.ContainsFunc(s.Refused, func(r Refusal) bool { return r.Table == n }) {
			grant = append(grant, n)
		}
	}
	if len(grant) > 0 {
		s.Steps = append(s.Steps, Step{Why: fmt.Sprintf("role %s reads the first batch in the slot's snapshot, and verify reads the source", opts.Role),
			SQL: fmt.Sprintf("GRANT SELECT ON TABLE %s TO %s;", s.tableList(grant), role)})
	} else if exists {
		s.InPlace = append(s.InPlace, fmt.Sprintf("role %s: SELECT on the totesys tables", opts.Role))
	}
	return nil
}

// tableList is names, schema-qualified and quoted, comma-separated.
func (s *Setup) tableList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{s.Schema, n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Apply runs the setup's steps in one transaction: all or none. It runs
// nothing, and returns a *NotReadyError, if a setting needs a restart or
// a table is refused. Check with Plan again afterwards.
func Apply(ctx context.Context, db DB, s Setup) error {
	if s.Standby {
		return &NotReadyError{Standby: true}
	}
	if len(s.Restart) > 0 || len(s.Refused) > 0 {
		return &NotReadyError{Restart: s.Restart, Refused: s.Refused}
	}
	if len(s.Steps) == 0 {
		return nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("capture setup: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, st := range s.Steps {
		sql := st.run
		if sql == "" {
			sql = st.SQL
		}
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("capture setup: %s: %w (nothing was applied)", st.SQL, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("capture setup: commit: %w (nothing was applied)", err)
	}
	return nil
}

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (RFC 5802/7677, as pg_fe_scram_build_secret makes it): given to
// ALTER ROLE … PASSWORD, the server stores it as is and never sees the
// password. Passwords outside printable ASCII are refused: PostgreSQL
// SASLprep-normalises those, which this does not.
func scramVerifier(password string) (string, error) {
	for _, r := range password {
		if r < 0x20 || r > 0x7e {
			return "", errors.New("use printable ASCII characters only")
		}
	}
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}

// Dropped says what Drop removed.
type Dropped struct {
	Slot        bool `json:"slot"`        // the slot existed and was dropped
	Publication bool `json:"publication"` // the publication existed and was dropped
}

const dropSlotSQL = `SELECT active, coalesce(active_pid, 0), slot_type, coalesce(plugin::text, ''), coalesce(database::text, '')
FROM pg_replication_slots WHERE slot_name = $1`

// Drop removes the slot of cfg, which releases the WAL it holds, and, if
// publication is set, its publication. What does not exist is skipped. A
// slot a process streams (a running tote serve) is refused with
// ErrSlotBusy; a slot that is not a pgoutput logical slot is refused too,
// as not tote's. After a drop, the next logical extraction starts over
// with a new slot and a full extraction.
func Drop(ctx context.Context, db DB, cfg Config, publication bool) (Dropped, error) {
	cfg = cfg.WithDefaults()
	var d Dropped
	var active bool
	var pid int
	var kind, plugin, database string
	err := db.QueryRow(ctx, dropSlotSQL, cfg.SlotName).Scan(&active, &pid, &kind, &plugin, &database)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return d, fmt.Errorf("capture drop: look up slot %s: %w", cfg.SlotName, err)
	case kind != "logical" || plugin != "pgoutput":
		return d, fmt.Errorf("capture drop: slot %s is a %s slot (plugin %q), not tote's: drop it yourself if you mean to "+
			"(SELECT pg_drop_replication_slot('%s'))", cfg.SlotName, kind, plugin, cfg.SlotName)
	case active:
		return d, fmt.Errorf("capture drop: slot %s (database %s): %w (server process %d): "+
			"stop the tote that streams it (serve, run, the Lambda) first", cfg.SlotName, database, ErrSlotBusy, pid)
	default:
		if _, err := db.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, cfg.SlotName); err != nil {
			return d, fmt.Errorf("capture drop: slot %s: %w", cfg.SlotName, err)
		}
		d.Slot = true
	}
	if publication {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, cfg.Publication).Scan(&n); err != nil {
			return d, fmt.Errorf("capture drop: look up publication %s: %w", cfg.Publication, err)
		}
		if n > 0 {
			if _, err := db.Exec(ctx, "DROP PUBLICATION "+pgx.Identifier{cfg.Publication}.Sanitize()); err != nil {
				return d, fmt.Errorf("capture drop: publication %s: %w", cfg.Publication, err)
			}
			d.Publication = true
		}
	}
	return d, nil
}
