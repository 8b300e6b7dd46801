package web

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

// The dashboard's summaries of the facts live in the warehouse, in the
// schema tote_dash, made by the migration group Summaries (summaries.sql,
// which says what they hold) and kept up to date by Refresh, after loads
// commit: never in a load's transaction. Each fact's summaries are
// rendered from one template over its descriptor, which the star model
// gives (the surrogate, the source id, the dimensions: the columns that
// reference one) but for what only the dashboard decides: which day
// dates a row, which columns key every summary row, which dimension is
// ranked, and the measures.

// dashFact is what the dashboard adds to the model of a fact it summarises.
type dashFact struct {
	Fact string // the star table
	Name string // the prefix of its objects in tote_dash
	Day  string // the date column its figures are by
	// Keys are the columns every summary row is keyed by (the currency:
	// money is never summed across currencies).
	Keys []string
	// Ranked are references kept per value with running totals (the
	// designs: too many to summarise by day), instead of by day.
	Ranked []string
	// RankBy is the measure the rankings order by.
	RankBy string
	// Skip are references not summarised, with why.
	Skip map[string]string
	// Derived are dimensions the model does not have, by expression over
	// the fact row f.
	Derived []dashDim
	// Measures are what the summaries add up, by expression over f; a
	// version that is not live adds nothing.
	Measures []measure
}

// measure is one figure summed over versions.
type measure struct{ Name, Expr string }

// dashDim is one dimension of a summary: its name (the referenced
// dimension's, less "dim_"), the fact column holding its key (empty for a
// derived one) and the expression giving its key.
type dashDim struct{ Name, Column, Expr string }

// dashFacts are the facts the dashboard summarises.
var dashFacts = []dashFact{
	{
		Fact: "fact_sales_order", Name: "sales", Day: "created_date", Keys: []string{"currency_id"},
		Ranked: []string{"design_id"}, RankBy: "value_cents",
		Derived: []dashDim{{Name: "lead", Expr: "tote_dash.lead_bucket(f.agreed_delivery_date - f.created_date)"}},
		Measures: []measure{
			{"orders", "1"},
			{"units", "f.units_sold"},
			{"value_cents", "f.units_sold * (f.unit_price * 100)::bigint"},
		},
	},
	{
		Fact: "fact_purchase_order", Name: "purchases", Day: "created_date", Keys: []string{"currency_id"},
		Measures: []measure{
			{"orders", "1"},
			{"quantity", "f.item_quantity"},
			{"value_cents", "f.item_quantity * (f.item_unit_price * 100)::bigint"},
		},
	},
	{
		Fact: "fact_payment", Name: "payments", Day: "payment_date", Keys: []string{"currency_id", "payment_type_id", "paid"},
		Skip: map[string]string{"transaction_id": "one transaction per payment: a summary by it is the facts again"},
		Measures: []measure{
			{"payments", "1"},
			{"amount_cents", "(f.payment_amount * 100)::bigint"},
		},
	},
}

// deletedColumn is the column that marks a fact version as a deletion
// (issue 19): where the model has it, such a version counts nothing.
const deletedColumn = "is_deleted"

// LeadBucket is one bucket of the lead time from order to agreed delivery.
type LeadBucket struct {
	Label string `json:"label"`
	// UpTo is the bucket's longest lead time in days; the last bucket has
	// no bound.
	UpTo int `json:"up_to,omitempty"`
}

// LeadBuckets are the lead-time buckets, by index: the summaries' lead
// dimension, the lead cross-filter (lead:N) and the chart's labels.
var LeadBuckets = []LeadBucket{
	{"same day", 0}, {"1–7 days", 7}, {"8–30 days", 30}, {"31–90 days", 90},
	{"91–180 days", 180}, {"181–365 days", 365}, {"over a year", 0},
}

// leadCase is LeadBuckets as SQL: the bucket of a lead time of days days.
func leadCase() string {
	var b strings.Builder
	b.WriteString("CASE")
	for i, l := range LeadBuckets[:len(LeadBuckets)-1] {
		fmt.Fprintf(&b, " WHEN days <= %d THEN %d", l.UpTo, i)
	}
	fmt.Fprintf(&b, " ELSE %d END", len(LeadBuckets)-1)
	return b.String()
}

// summaryKey is a key column of a fact's summaries, with its type.
type summaryKey struct{ Name, Type string }

// factSummary is a fact's descriptor, which summaries.sql is rendered over.
type factSummary struct {
	Name, Fact, Surrogate, ID, Day, Batch string
	Keys                                  []summaryKey
	Dims, Ranked                          []dashDim
	RankBy                                string
	Measures                              []measure
	// Live is the SQL condition that version f counts.
	Live string
	// K, M and G are the names of the keys, the measures and every column
	// a summary groups by (day, keys, dimensions, ranked).
	K, M, G []string
	// Bulk are the keys and indexes of the summary tables, which a build
	// into empty tables adds after its inserts rather than grows row by
	// row.
	Bulk []bulkKey
}

// bulkKey is a key or index of a summary table: the statements that add
// and drop it.
type bulkKey struct{ Add, Drop string }

// constraint is a key of table named name: the table's name and the key's.
func constraint(table, name, def string) bulkKey {
	return bulkKey{Add: "ALTER TABLE tote_dash." + table + " ADD CONSTRAINT " + name + " " + def,
		Drop: "ALTER TABLE tote_dash." + table + " DROP CONSTRAINT " + name}
}

// describe derives fact d's descriptor from the star model.
func describe(d dashFact) (factSummary, error) {
	t, err := star.Lookup(d.Fact)
	if err != nil {
		return factSummary{}, err
	}
	if t.Kind != star.Fact {
		return factSummary{}, fmt.Errorf("%s is not a fact", d.Fact)
	}
	s := factSummary{Name: d.Name, Fact: t.Name, Surrogate: t.Surrogate, ID: t.ID(), Day: d.Day, Batch: star.BatchID,
		RankBy: d.RankBy, Measures: d.Measures, Live: "true"}
	if c, ok := t.Column(d.Day); !ok || c.References != "dim_date" {
		return s, fmt.Errorf("%s.%s is not a date of the model", d.Fact, d.Day)
	}
	if _, ok := t.Column(deletedColumn); ok {
		s.Live = "NOT f." + deletedColumn
	}
	for _, k := range d.Keys {
		c, ok := t.Column(k)
		if !ok {
			return s, fmt.Errorf("%s has no column %s", d.Fact, k)
		}
		s.Keys = append(s.Keys, summaryKey{k, string(c.Type)})
	}
	for _, c := range t.References() {
		dim := dashDim{Name: strings.TrimPrefix(c.References, "dim_"), Column: c.Name, Expr: "f." + c.Name}
		switch {
		case c.References == "dim_date" || slices.Contains(d.Keys, c.Name) || d.Skip[c.Name] != "":
		case slices.Contains(d.Ranked, c.Name):
			s.Ranked = append(s.Ranked, dim)
		default:
			s.Dims = append(s.Dims, dim)
		}
	}
	if len(s.Ranked) != len(d.Ranked) {
		return s, fmt.Errorf("%s: ranked %v are not all references", d.Fact, d.Ranked)
	}
	s.Dims = append(s.Dims, d.Derived...)
	s.G = []string{"day"}
	for _, k := range s.Keys {
		s.K = append(s.K, k.Name)
	}
	s.G = append(s.G, s.K...)
	for _, x := range append(slices.Clone(s.Dims), s.Ranked...) {
		s.G = append(s.G, x.Name)
	}
	for _, m := range s.Measures {
		s.M = append(s.M, m.Name)
	}
	k := strings.Join(s.K, ", ")
	s.Bulk = []bulkKey{
		constraint(s.Name+"_next", s.Name+"_next_pkey", "PRIMARY KEY (rec)"),
		constraint(s.Name+"_by", s.Name+"_by_pkey", "PRIMARY KEY (dim, day, key, "+k+")"),
		constraint(s.Name+"_by_log", s.Name+"_by_log_pkey", "PRIMARY KEY (seq, dim, day, key, "+k+")"),
	}
	for _, r := range s.Ranked {
		t := s.Name + "_" + r.Name
		s.Bulk = append(s.Bulk,
			constraint(t, t+"_pkey", "PRIMARY KEY ("+k+", key)"),
			constraint(t+"_log", t+"_log_pkey", "PRIMARY KEY (seq, "+k+", key)"),
			// By keys and all-time RankBy (the last running total), for the
			// rankings to bound a period's figures.
			bulkKey{Add: "CREATE INDEX " + t + "_rank ON tote_dash." + t + " (" + k + ", (" + s.RankBy + "[array_upper(" + s.RankBy + ", 1)]))",
				Drop: "DROP INDEX tote_dash." + t + "_rank"})
	}
	return s, nil
}

//go:embed summaries.sql
var summariesTemplate string

// summaryFuncs are the helpers summaries.sql is written with.
var summaryFuncs = template.FuncMap{
	// list joins names with ", ", each after prefix.
	"list": func(prefix string, names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = prefix + n
		}
		return strings.Join(out, ", ")
	},
	// sums sums each name, under its name.
	"sums": func(names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "sum(" + n + ") AS " + n
		}
		return strings.Join(out, ", ")
	},
	// nonzero is true when any name's sum is not 0.
	"nonzero": func(names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "sum(" + n + ") <> 0"
		}
		return strings.Join(out, " OR ")
	},
	// zero is true when every name of row r is 0.
	"zero": func(r string, names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = r + "." + n + " = 0"
		}
		return strings.Join(out, " AND ")
	},
	// same is true when rows a and b agree on names.
	"same": func(a, b string, names []string) string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = a + "." + n + " = " + b + "." + n
		}
		return strings.Join(out, " AND ")
	},
	// version is the data of versionColumns.
	"version": func(f factSummary, seq string) map[string]any { return map[string]any{"F": f, "Seq": seq} },
	// add is the data of byAdd, rankedAdd and sets: fact f, table t,
	// seq "seq, " for a log (else ""), ranked dimension r.
	"add": func(f factSummary, t, seq, r string) map[string]any {
		sk := f.K
		if seq != "" {
			sk = append([]string{"seq"}, f.K...)
		}
		z := "z" // the variable of add that collects the rows that came to nothing
		if seq != "" {
			z = "zl"
		}
		return map[string]any{"F": f, "T": t, "Seq": seq, "P": seq, "R": r, "SK": sk, "Z": z}
	},
}

// renderSummaries renders summaries.sql over the dashboard's facts.
func renderSummaries() (string, []factSummary, error) {
	var facts []factSummary
	for _, d := range dashFacts {
		f, err := describe(d)
		if err != nil {
			return "", nil, fmt.Errorf("web: summaries of %s: %w", d.Fact, err)
		}
		facts = append(facts, f)
	}
	tmpl, err := template.New("summaries.sql").Funcs(summaryFuncs).Parse(summariesTemplate)
	if err != nil {
		return "", nil, fmt.Errorf("web: summaries.sql: %w", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, map[string]any{"Facts": facts, "LeadCase": leadCase()}); err != nil {
		return "", nil, fmt.Errorf("web: summaries.sql: %w", err)
	}
	return b.String(), facts, nil
}

// summaries is summaries.sql rendered, over the descriptors summarized.
var summaries, summarized = func() (string, []factSummary) {
	sql, facts, err := renderSummaries()
	if err != nil {
		panic(err)
	}
	return sql, facts
}()

// factIndex is an index on a fact that the dashboard's reads of the facts
// use: by day (drill-downs, the periods no summary answers), by each
// dimension and day, and, for a fact with a ranked dimension, by keys, the
// RankBy measure of the row, and day (the rankings find the bottom of a
// period's ranking through it).
type factIndex struct{ Name, Fact, Columns string }

// rowRef is a reference to the fact row f in a measure's expression.
var rowRef = regexp.MustCompile(`\bf\.`)

// indexes are the indexes on fact f that the dashboard reads it by.
func (f factSummary) indexes() []factIndex {
	ix := []factIndex{{f.Fact + "_dash_day_idx", f.Fact, f.Day + ", " + f.ID}}
	for _, d := range append(slices.Clone(f.Dims), f.Ranked...) {
		if d.Column != "" {
			ix = append(ix, factIndex{f.Fact + "_dash_" + d.Name + "_idx", f.Fact, d.Column + ", " + f.Day})
		}
	}
	for _, m := range f.Measures {
		if m.Name == f.RankBy && len(f.Ranked) > 0 {
			ix = append(ix, factIndex{f.Fact + "_dash_" + m.Name + "_idx", f.Fact,
				strings.Join(f.K, ", ") + ", (" + rowRef.ReplaceAllString(m.Expr, "") + "), " + f.Day})
		}
	}
	return ix
}

// makeIndexes makes the facts' indexes that are missing (or left invalid
// by a build that was cut short) on conn, outside any transaction, and
// CONCURRENTLY: a plain CREATE INDEX (even IF NOT EXISTS, even when the
// index is there) holds a SHARE lock on the fact until its transaction
// ends, which a load's INSERT waits for. A concurrent build waits for the
// loads in progress instead, and a load never waits for it (decision
// 0011: the dashboard is off the load's path). Looking first costs one
// catalog read for all of them (every refresh looks) and takes no lock on
// the facts.
func makeIndexes(ctx context.Context, conn *pgx.Conn, facts []factSummary) error {
	var all []factIndex
	names := []string{}
	for _, f := range facts {
		for _, ix := range f.indexes() {
			all = append(all, ix)
			names = append(names, ix.Name)
		}
	}
	// Each index's validity: NULL where there is none.
	rows, err := conn.Query(ctx, `SELECT i.indisvalid FROM unnest($1::text[]) WITH ORDINALITY AS x(name, n)
LEFT JOIN pg_index i ON i.indexrelid = to_regclass(x.name) ORDER BY x.n`, names)
	if err != nil {
		return fmt.Errorf("the dashboard's indexes: %w", err)
	}
	valid, err := pgx.CollectRows(rows, pgx.RowTo[*bool])
	if err != nil {
		return fmt.Errorf("the dashboard's indexes: %w", err)
	}
	for i, ix := range all {
		switch {
		case valid[i] != nil && *valid[i]:
			continue
		case valid[i] != nil:
			if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+ix.Name); err != nil {
				return fmt.Errorf("index %s, invalid: drop: %w", ix.Name, err)
			}
		}
		if _, err := conn.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+ix.Name+` ON `+ix.Fact+` (`+ix.Columns+`)`); err != nil {
			return fmt.Errorf("index %s: %w", ix.Name, err)
		}
	}
	return nil
}

// Summaries is the warehouse migration group of the dashboard's summaries.
// It is derived: when its text changes (the model or the template did), the
// schema is dropped and made again, and the next Refresh builds the
// summaries afresh.
var Summaries = warehouse.Group{
	Name:       "dashboard",
	Migrations: []warehouse.Migration{{Version: 1, Name: "0001_summaries", SQL: summaries}},
	Reset:      `DROP SCHEMA IF EXISTS tote_dash CASCADE`,
}

// refreshLock is the advisory lock key Refresh holds: "totedash" in ASCII.
const refreshLock int64 = 0x746f746564617368

// Watermark says which batch the summaries reflect.
type Watermark struct {
	// Seq is the newest batch of the ledger when they were brought up to
	// date (0: none), Batch its id and LoadedAt when it was loaded.
	Seq       int64     `json:"seq"`
	Batch     string    `json:"batch,omitempty"`
	LoadedAt  time.Time `json:"loaded_at,omitzero"`
	Refreshed time.Time `json:"refreshed_at,omitzero"`
	// Newest is the ledger's newest batch now: the summaries are catching
	// up while it is past Seq.
	Newest int64 `json:"newest"`
}

// CatchingUp reports whether batches are loaded that the summaries do not have yet.
func (w Watermark) CatchingUp() bool { return w.Newest > w.Seq }

// Refresh brings the dashboard's summaries up to the facts as the ledger's
// newest batch leaves them: it migrates the group Summaries, then, under an
// advisory lock (so that dashboards and a tote dashboard refresh do not
// race: one waits for the other, then finds little or nothing to do), sums
// what was loaded, corrected or deleted since it last ran, in one
// transaction that reads the facts and the ledger in one state. Readers see
// the previous figures until it commits. Before that transaction it makes
// the indexes the dashboard reads the facts by, if missing (makeIndexes):
// nothing it holds is a lock a load waits for.
func Refresh(ctx context.Context, wh *warehouse.Warehouse) (Watermark, error) {
	if err := wh.MigrateGroup(ctx, Summaries); err != nil {
		return Watermark{}, fmt.Errorf("dashboard summaries: %w", err)
	}
	if err := refreshLocked(ctx, wh); err != nil {
		return Watermark{}, fmt.Errorf("dashboard summaries: %w", err)
	}
	return ReadWatermark(ctx, wh)
}

// refreshLocked runs tote_dash.refresh() under the lock, on a connection of its
// own.
func refreshLocked(ctx context.Context, wh *warehouse.Warehouse) error {
	conn, err := wh.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// A session lock, taken before the transaction begins: its snapshot
	// must see what the refresh it waited for committed.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, refreshLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, refreshLock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session lets the lock go
		}
	}()
	tx, err := beginRefresh(ctx, conn.Conn())
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// beginRefresh makes the facts' indexes, then runs tote_dash.refresh() in a
// transaction on conn, which it returns open: its caller commits it.
func beginRefresh(ctx context.Context, conn *pgx.Conn) (pgx.Tx, error) {
	if err := makeIndexes(ctx, conn, summarized); err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT tote_dash.refresh()`); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("refresh: %w", err)
	}
	return tx, nil
}

// watermarkSQL is the batch the summaries reflect, and the ledger's newest.
const watermarkSQL = `
SELECT w.seq, coalesce(l.batch_id, ''), l.loaded_at, w.refreshed_at, coalesce((SELECT max(seq) FROM tote.load_ledger), 0)
FROM tote_dash.watermark w LEFT JOIN tote.load_ledger l ON l.seq = w.seq`

// ReadWatermark says which batch the summaries reflect; an error if
// Refresh has not made them yet.
func ReadWatermark(ctx context.Context, wh *warehouse.Warehouse) (Watermark, error) {
	var w Watermark
	var loaded *time.Time
	err := wh.Pool().QueryRow(ctx, watermarkSQL).Scan(&w.Seq, &w.Batch, &loaded, &w.Refreshed, &w.Newest)
	if err != nil {
		return w, fmt.Errorf("dashboard summaries: watermark: %w", err)
	}
	if loaded != nil {
		w.LoadedAt = *loaded
	}
	return w, nil
}
