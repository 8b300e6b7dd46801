// Package seed fills an empty totesys database with rows: either generated
// (realistic, deterministic, at any scale) or loaded from a snapshot of the
// real tables.
//
// Generated data follows the real system's shapes: thirty addresses, twenty
// counterparties and staff, the eight departments, GBP/USD/EUR, about 400
// designs and 16,600 orders per unit of scale over two years, a transaction
// and a payment per order, and about 62% of payments flipped to paid 13 to
// 144 hours after they were created. The same seed and scale always give the
// same rows.
//
// Rows go in with COPY, several tables at once, before the foreign keys are
// added. Seeding refuses a database that already holds totesys tables unless
// told to replace them; if it fails part-way it drops what it created, so the
// database is left as it was found (or, when replacing, empty).
//
// The package does not change rows after seeding: that is simulate's job.
package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/terrifictotes/tote/internal/sum"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// Marker is the comment seeding puts on the sales_order table: it tells a
// database tote seeded (whose rows may be changed at will, by the demo)
// from one it did not, which may hold real data. Dropping and recreating
// the tables, as a restore does, removes it.
const Marker = "seeded by tote seed: not real data"

const markSQL = `COMMENT ON TABLE public.sales_order IS '` + Marker + `'`

const seededSQL = `SELECT coalesce(obj_description(to_regclass('public.sales_order'), 'pg_class'), '') = '` + Marker + `'`

// Seeded reports whether the database's totesys tables were written by
// tote seed (see Marker).
func Seeded(ctx context.Context, db *pgxpool.Pool) (bool, error) {
	var ok bool
	if err := db.QueryRow(ctx, seededSQL).Scan(&ok); err != nil {
		return false, fmt.Errorf("seed: read the seed marker: %w", err)
	}
	return ok, nil
}

// ErrNotEmpty is returned when the database already holds totesys tables
// and Force is not set.
var ErrNotEmpty = errors.New("the source database already holds totesys tables")

// Options controls Generate.
type Options struct {
	Scale  int       // multiple of the real system's size, at least 1
	Seed   uint64    // same seed, same rows
	Until  time.Time // creation time of the last order; zero means DefaultUntil
	Force  bool      // drop existing totesys tables first
	Logger *slog.Logger
}

// TableCount is the number of rows seeded into one table.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Result says what a seed wrote.
type Result struct {
	Tables  []TableCount  `json:"tables"` // in model order
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rows is the total number of rows seeded.
func (r Result) Rows() int64 {
	return sum.Of(r.Tables, func(t TableCount) int64 { return t.Rows })
}

// CheckScale says why n is not a scale Generate accepts, or returns nil.
func CheckScale(n int) error {
	if n < 1 || n > MaxScale {
		return fmt.Errorf("seed: scale must be a whole number from 1 to %d, got %d", MaxScale, n)
	}
	return nil
}

// Generate creates the totesys schema in pool's database and fills it with
// generated rows.
func Generate(ctx context.Context, pool *pgxpool.Pool, opts Options) (Result, error) {
	if err := CheckScale(opts.Scale); err != nil {
		return Result{}, err
	}
	until := opts.Until
	if until.IsZero() {
		until = DefaultUntil
	}
	if !until.After(Epoch.Add(time.Hour)) {
		return Result{}, fmt.Errorf("seed: until %s must be after %s", until.Format(time.RFC3339), Epoch.Format(time.RFC3339))
	}
	g := newGenerator(opts.Seed, opts.Scale, until.UTC())
	return fill(ctx, pool, opts.Force, logger(opts.Logger), g.sources())
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// fill creates the tables, streams every source into its table in
// parallel, then adds the foreign keys and moves the id sequences on.
func fill(ctx context.Context, pool *pgxpool.Pool, force bool, log *slog.Logger, sources []rowSource) (res Result, err error) {
	start := time.Now()
	existing, err := totesys.Existing(ctx, pool)
	if err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	if len(existing) > 0 {
		if !force {
			return Result{}, fmt.Errorf("seed: %w (%s): use --force to replace them", ErrNotEmpty, strings.Join(existing, ", "))
		}
		log.Info("dropping existing totesys tables", "tables", existing)
		if err := totesys.Drop(ctx, pool); err != nil {
			return Result{}, fmt.Errorf("seed: %w", err)
		}
	}
	defer func() {
		if err != nil {
			// Leave no half-seeded database behind, even when cancelled,
			// and even while the tables are being created (a cancelled
			// statement may have been done already).
			if dropErr := totesys.Drop(context.WithoutCancel(ctx), pool); dropErr != nil {
				err = errors.Join(err, dropErr)
			}
		}
	}()
	if err := totesys.CreateTables(ctx, pool); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}

	counts := make(map[string]int64, len(sources))
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(int(pool.Config().MaxConns))
	results := make([]int64, len(sources))
	for i, src := range sources {
		grp.Go(func() error {
			t0 := time.Now()
			n, err := postgres.CopyFrom(gctx, pool, src.table.Name, src.table.ColumnNames(), src.next)
			if err != nil {
				return fmt.Errorf("seed %s: %w", src.table.Name, err)
			}
			results[i] = n
			log.Debug("seeded table", "table", src.table.Name, "rows", n, "seconds", time.Since(t0).Seconds())
			return nil
		})
	}
	if err := grp.Wait(); err != nil {
		if ctx.Err() != nil {
			// Cancelling closes connections mid-COPY; say why they closed.
			return Result{}, fmt.Errorf("seed: %w", context.Cause(ctx))
		}
		return Result{}, err
	}
	for i, src := range sources {
		counts[src.table.Name] = results[i]
	}
	log.Debug("rows copied", "seconds", time.Since(start).Seconds())
	if err := addKeys(ctx, pool); err != nil {
		return Result{}, err
	}
	log.Debug("keys built", "seconds", time.Since(start).Seconds())
	if err := totesys.AddForeignKeys(ctx, pool); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	log.Debug("foreign keys checked", "seconds", time.Since(start).Seconds())
	if err := totesys.ResetSequences(ctx, pool); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	if _, err := pool.Exec(ctx, markSQL); err != nil {
		return Result{}, fmt.Errorf("seed: mark the tables seeded: %w", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return Result{}, fmt.Errorf("seed: analyze: %w", err)
	}
	for _, name := range totesys.TableNames() {
		res.Tables = append(res.Tables, TableCount{Table: name, Rows: counts[name]})
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// addKeys builds the tables' keys, several tables at once.
func addKeys(ctx context.Context, pool *pgxpool.Pool) error {
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(int(pool.Config().MaxConns))
	for _, stmts := range totesys.KeyStatements() {
		grp.Go(func() error {
			for _, sql := range stmts {
				if _, err := pool.Exec(gctx, sql); err != nil {
					return fmt.Errorf("seed: %s: %w", sql, err)
				}
			}
			return nil
		})
	}
	return grp.Wait()
}

// Count returns the number of rows in every totesys table of the source,
// in model order.
func Count(ctx context.Context, pool *pgxpool.Pool) ([]TableCount, error) {
	out := make([]TableCount, 0, len(totesys.Tables))
	for _, name := range totesys.TableNames() {
		var n int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", name, err)
		}
		out = append(out, TableCount{Table: name, Rows: n})
	}
	return out, nil
}
