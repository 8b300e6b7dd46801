package replication_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pgcluster"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/totesys"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// logicalSource starts a private server with wal_level = logical (and
// settings) and a database "totesys" holding the totesys schema, empty.
func logicalSource(t *testing.T, opts pgcluster.Options) (*pgcluster.Cluster, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if opts.Settings == nil {
		opts.Settings = map[string]string{}
	}
	opts.Settings["wal_level"] = "logical"
	c := pgtest.Cluster(t, opts)
	u, err := postgres.CreateDatabase(ctx, c.URL(), "totesys")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t, u)
	if err := totesys.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return c, pool
}

func stepSQL(s replication.Setup) string {
	var b strings.Builder
	for _, st := range s.Steps {
		b.WriteString(st.SQL + "\n")
	}
	return b.String()
}

func TestSetupOnALogicalServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := logicalSource(t, pgcluster.Options{Password: "owner-pw"})
	cfg := replication.Config{}
	opts := replication.SetupOptions{Role: "tote_capture", Password: "capture-pw-1"}

	s, err := replication.Plan(ctx, pool, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Restart) != 0 || len(s.Refused) != 0 || s.Ready() || s.WALLevel != "logical" {
		t.Fatalf("fresh source: %+v", s)
	}
	sql := stepSQL(s)
	for _, want := range []string{`CREATE PUBLICATION "tote" FOR TABLE "public"."address"`, `"public"."payment" WITH (publish = 'insert, update, delete, truncate')`,
		`CREATE ROLE "tote_capture" LOGIN REPLICATION;`, `ALTER ROLE "tote_capture" PASSWORD '…';`, `GRANT SELECT ON TABLE "public"."address"`} {
		if !strings.Contains(sql, want) {
			t.Errorf("plan lacks %q:\n%s", want, sql)
		}
	}
	if strings.Contains(sql, "capture-pw-1") || strings.Contains(sql, "SCRAM") {
		t.Errorf("the printed plan shows the password or its verifier:\n%s", sql)
	}
	if strings.Contains(sql, "REPLICA IDENTITY") {
		t.Errorf("every table has its primary key as replica identity, yet:\n%s", sql)
	}
	if !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.HasPrefix(n, "max_slot_wal_keep_size is -1") }) {
		t.Errorf("no word of the unbounded slot: %q", s.Notes)
	}

	if err := replication.Apply(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	again, err := replication.Plan(ctx, pool, cfg, replication.SetupOptions{Role: "tote_capture"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Ready() {
		t.Fatalf("after apply, not ready: %s%+v", stepSQL(again), again)
	}
	// Applying a ready setup runs nothing.
	if err := replication.Apply(ctx, pool, again); err != nil {
		t.Fatal(err)
	}

	// The role logs in with its password, over TCP (scram-sha-256), reads
	// the tables, and may replicate.
	u, _ := url.Parse(c.DatabaseURL("totesys"))
	u.User = url.UserPassword("tote_capture", "capture-pw-1")
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("the role cannot log in with its password: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	var repl bool
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM payment), rolreplication FROM pg_roles WHERE rolname = current_user`).Scan(&n, &repl); err != nil {
		t.Fatal(err)
	}
	if !repl {
		t.Error("the role lacks REPLICATION")
	}
	// Wrong password: refused.
	u.User = url.UserPassword("tote_capture", "capture-pw-2")
	if bad, err := pgx.Connect(ctx, u.String()); err == nil {
		bad.Close(ctx)
		t.Error("a wrong password logs in")
	}

	// Drift: a table taken out of the publication, a replica identity
	// set to nothing, SELECT revoked. Setup puts each back, and only those.
	if _, err := pool.Exec(ctx, `ALTER PUBLICATION tote DROP TABLE payment;
		ALTER TABLE staff REPLICA IDENTITY NOTHING; REVOKE SELECT ON design FROM tote_capture`); err != nil {
		t.Fatal(err)
	}
	drift, err := replication.Plan(ctx, pool, cfg, replication.SetupOptions{Role: "tote_capture"})
	if err != nil {
		t.Fatal(err)
	}
	want := `ALTER TABLE "public"."staff" REPLICA IDENTITY DEFAULT;
ALTER PUBLICATION "tote" ADD TABLE "public"."payment";
GRANT SELECT ON TABLE "public"."design" TO "tote_capture";
`
	if got := stepSQL(drift); got != want {
		t.Errorf("after drift, plan:\n%s\nwant:\n%s", got, want)
	}
	if err := replication.Apply(ctx, pool, drift); err != nil {
		t.Fatal(err)
	}
	if s, err := replication.Plan(ctx, pool, cfg, replication.SetupOptions{Role: "tote_capture"}); err != nil || !s.Ready() {
		t.Fatalf("after repairing drift: %v %s", err, stepSQL(s))
	}

	// A row filter on a published table would drop changes silently.
	if _, err := pool.Exec(ctx, `ALTER PUBLICATION tote SET TABLE address, counterparty, currency, department, design, staff,
		payment_type, sales_order, purchase_order, transaction, payment WHERE (paid)`); err != nil {
		t.Fatal(err)
	}
	filtered, err := replication.Plan(ctx, pool, cfg, replication.SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stepSQL(filtered); !strings.HasPrefix(got, `ALTER PUBLICATION "tote" SET TABLE "public"."address"`) {
		t.Errorf("row filter: plan %q", got)
	}
	if err := replication.Apply(ctx, pool, filtered); err != nil {
		t.Fatal(err)
	}
	if s, _ := replication.Plan(ctx, pool, cfg, replication.SetupOptions{}); !s.Ready() {
		t.Errorf("after removing the filter: %s", stepSQL(s))
	}
}

func TestSetupRefusesTablesWithoutKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := logicalSource(t, pgcluster.Options{})
	if _, err := pool.Exec(ctx, `ALTER TABLE design DROP CONSTRAINT design_pkey CASCADE;
		ALTER TABLE currency DROP CONSTRAINT currency_pkey CASCADE; ALTER TABLE currency REPLICA IDENTITY FULL;
		DROP TABLE payment_type CASCADE`); err != nil {
		t.Fatal(err)
	}
	s, err := replication.Plan(ctx, pool, replication.Config{Publication: "tote_pub"}, replication.SetupOptions{Role: "capturer"})
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, r := range s.Refused {
		refused = append(refused, r.Table+": "+r.Reason)
	}
	if len(refused) != 2 || !strings.HasPrefix(refused[0], "design: has no primary key and no replica identity") ||
		!strings.HasPrefix(refused[1], "payment_type: does not exist in schema public of database totesys") {
		t.Errorf("refused:\n%s", strings.Join(refused, "\n"))
	}
	if len(s.Steps) != 0 || s.Ready() {
		t.Errorf("a refused source has steps %q", stepSQL(s))
	}
	if !slices.ContainsFunc(s.InPlace, func(x string) bool { return strings.HasPrefix(x, "currency: REPLICA IDENTITY FULL") }) {
		t.Errorf("in place: %q", s.InPlace)
	}
	err = replication.Apply(ctx, pool, s)
	var nr *replication.NotReadyError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "table design: has no primary key") ||
		!strings.Contains(err.Error(), "nothing was applied") {
		t.Fatalf("apply: %v", err)
	}
	var pubs, roles int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_publication), (SELECT count(*) FROM pg_roles WHERE rolname = 'capturer')`).Scan(&pubs, &roles); err != nil {
		t.Fatal(err)
	}
	if pubs != 0 || roles != 0 {
		t.Errorf("a refused apply created %d publications and %d roles", pubs, roles)
	}
}

func TestSetupNeedsWALLevelLogical(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t, pgtest.NewDB(t))
	var level string
	if err := pool.QueryRow(ctx, `SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level == "logical" {
		t.Skip("the test server has wal_level = logical")
	}
	if err := totesys.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s, err := replication.Plan(ctx, pool, replication.Config{Publication: "tote_walcheck"}, replication.SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Restart, []string{"wal_level = logical"}) || !slices.Equal(s.RestartSQL(), []string{"ALTER SYSTEM SET wal_level = logical;"}) {
		t.Errorf("restart: %q %q", s.Restart, s.RestartSQL())
	}
	if !strings.Contains(stepSQL(s), `CREATE PUBLICATION "tote_walcheck"`) {
		t.Errorf("steps: %s", stepSQL(s))
	}
	err = replication.Apply(ctx, pool, s)
	if err == nil || !strings.Contains(err.Error(), "wal_level = logical, which take effect only at a restart") ||
		!strings.Contains(err.Error(), "rds.logical_replication = 1") {
		t.Fatalf("apply on wal_level %s: %v", level, err)
	}
	var pubs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_publication WHERE pubname = 'tote_walcheck'`).Scan(&pubs); err != nil || pubs != 0 {
		t.Errorf("apply refused yet made the publication (%d, %v)", pubs, err)
	}
}

// On Amazon RDS and Aurora the master user may not give REPLICATION, only
// membership of rds_replication: setup grants that where the role exists.
func TestSetupOnRDSGrantsRDSReplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := logicalSource(t, pgcluster.Options{})
	if _, err := pool.Exec(ctx, `CREATE ROLE rds_replication NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	opts := replication.SetupOptions{Role: "tote_rds"}
	s, err := replication.Plan(ctx, pool, replication.Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sql := stepSQL(s)
	if !strings.Contains(sql, "CREATE ROLE \"tote_rds\" LOGIN;\nGRANT rds_replication TO \"tote_rds\";\n") || strings.Contains(sql, "REPLICATION;") {
		t.Fatalf("plan on RDS:\n%s", sql)
	}
	if err := replication.Apply(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	if s, err := replication.Plan(ctx, pool, replication.Config{}, opts); err != nil || !s.Ready() ||
		!slices.Contains(s.InPlace, "role tote_rds: LOGIN, and replication (rds_replication)") {
		t.Fatalf("after apply on RDS: %v\n%s%q", err, stepSQL(s), s.InPlace)
	}
}

// A hot standby: setup is the primary's to apply, and PostgreSQL 15
// cannot decode on a standby at all.
func TestSetupOnAStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, pool := logicalSource(t, pgcluster.Options{})
	s, err := replication.Plan(ctx, pool, replication.Config{}, replication.SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := replication.Apply(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	spool := pgtest.Pool(t, standby.DatabaseURL("totesys"))
	var on *replication.Setup
	for deadline := time.Now().Add(30 * time.Second); ; {
		s, err := replication.Plan(ctx, spool, replication.Config{}, replication.SetupOptions{})
		if err == nil && len(s.Steps) == 0 {
			on = &s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby never showed the primary's setup: %v %s", err, stepSQL(s))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !on.Standby || len(on.Notes) == 0 || !strings.Contains(on.Notes[0], "hot standby") {
		t.Fatalf("standby plan: %+v", on)
	}
	if strings.HasPrefix(on.ServerVersion, "15") && (on.Ready() || !strings.Contains(on.Notes[0], "needs PostgreSQL 16 or later")) {
		t.Errorf("PostgreSQL 15 standby: ready %v, %q", on.Ready(), on.Notes)
	}
	err = replication.Apply(ctx, spool, *on)
	if err == nil || !strings.Contains(err.Error(), "run tote capture setup --apply on its primary") {
		t.Errorf("apply on a standby: %v", err)
	}
}
