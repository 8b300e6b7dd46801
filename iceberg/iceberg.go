// Package iceberg owns the star's Apache Iceberg tables: keeping them
// equal to the warehouse, exactly once per loaded batch, so that any engine
// that reads Iceberg (Athena, Trino, Spark, DuckDB, Snowflake, Redshift
// Spectrum) reads the warehouse's tables from the lake without tote.
//
// It owns the tables' schemas (derived from star.Tables: names, columns,
// types, comments; nothing is restated), their data and metadata files
// under the lake's iceberg/ prefix, the catalog they are registered in
// (an Iceberg SQL catalog in the warehouse database's schema tote_iceberg
// by default, or AWS Glue), publishing, and maintenance (compaction and
// snapshot expiry). It does not load the warehouse (package warehouse) nor
// read the lake's processed files: it publishes from the warehouse, after
// the load, so the surrogate keys, deletion versions, flagged dimension
// rows, placeholders and corrections are the warehouse's own, and the
// tables equal the warehouse by construction.
//
// # Publishing
//
// Publish takes the batches of the load ledger that are not yet published,
// in order. For each, a fact gets one append snapshot with the batch's new
// versions (the rows whose surrogate key is above the largest the table
// holds, and whose batch_id is the batch: the load numbers each batch's
// versions after the largest, so these are exactly the batch's), or, for a
// corrective batch (lake.Manifest.Corrective, which may change versions
// already there), an overwrite with the whole table. A dimension's rows
// change in place, so it is rewritten copy on write (no delete files that
// engines must merge on read), but only where the batches changed it: its
// files are split by key range (a truncate partition of the key, 1,024
// keys a file; the calendar, dim_date, is one file rewritten whole), and
// the files of the ranges that hold a changed key are replaced with the
// warehouse's rows of those ranges. The changed keys are the rows of the
// batches' processed files of the dimension (what the load upserts), the
// ids of their deletions files (the flags) and the placeholders made or
// resolved in them (dimension.go). A dimension is published with the last
// batch of a Publish call: it holds the warehouse's current state, which
// is that batch's. Only the tables the batches changed (the ledger's
// tables and deletions, the placeholders) are loaded and committed.
//
// # Exactly once
//
// Every snapshot tote commits carries the batch in its summary
// (tote.batch, tote.seq), a fact's also the largest surrogate key it
// holds (tote.max-key). The
// Iceberg commit is the commit point: what a table holds is decided by its
// own newest snapshot, read before each publish, so a crash between the
// Iceberg commit and tote's records (tote.iceberg_snapshots and
// tote.iceberg_batches, migration 0014) is healed by recording what the
// snapshot says, and a batch is never appended twice. Publishers take an
// advisory lock on the warehouse, so only one publishes at a time.
package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/glue"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// table locations
	"github.com/apache/iceberg-go/table"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/terrifictotes/tote/lake"
)

// CatalogName is the name of the SQL catalog (readers of the catalog
// tables need the same name), Namespace the namespace of the star's
// tables in it, and CatalogSchema the warehouse schema that holds the SQL
// catalog's own tables.
const (
	CatalogName   = "tote"
	Namespace     = "tote"
	CatalogSchema = "tote_iceberg"
)

// The catalog kinds Options.Catalog names.
const (
	SQL  = "sql"
	Off  = "off"
	Glue = "glue"
)

// Summary keys tote writes on its snapshots.
const (
	SummaryBatch       = "tote.batch"
	SummarySeq         = "tote.seq"
	SummaryMaxKey      = "tote.max-key"
	SummaryMaintenance = "tote.maintenance"
)

// Options configures a Publisher.
type Options struct {
	// Catalog is "sql" (the default: an Iceberg SQL catalog in the
	// warehouse database, schema tote_iceberg), "glue://DATABASE" (AWS
	// Glue, the namespace being DATABASE), or "off".
	Catalog string
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// ParseCatalog checks a catalog setting and returns its kind and, for
// Glue, the database (the namespace). Empty is "sql".
func ParseCatalog(s string) (kind, database string, err error) {
	switch {
	case s == "" || s == SQL:
		return SQL, "", nil
	case s == Off:
		return Off, "", nil
	case strings.HasPrefix(s, "glue://"):
		db := strings.Trim(strings.TrimPrefix(s, "glue://"), "/")
		if db == "" || strings.Contains(db, "/") {
			return "", "", fmt.Errorf("iceberg catalog %q: want glue://DATABASE", s)
		}
		return Glue, db, nil
	}
	return "", "", fmt.Errorf("iceberg catalog %q: want sql, glue://DATABASE or off", s)
}

// Publisher keeps the star's Iceberg tables equal to one warehouse. It is
// safe for concurrent use; Publish calls take turns (an advisory lock).
type Publisher struct {
	pool     *pgxpool.Pool
	lake     *lake.Lake
	kind     string
	database string // Glue's
	location string // the lake's iceberg/ prefix as a URL, no trailing slash
	props    iceberg.Properties
	log      *slog.Logger

	mu        sync.Mutex
	cat       catalog.Catalog // nil until first used
	db        *sql.DB         // the SQL catalog's connections; nil for Glue
	namespace string

	// BeforeRecord, if set, is called with a batch and table right after
	// the table's Iceberg commit for the batch and before tote records it;
	// an error it returns stops the publish there. Tests set it to crash a
	// publish there. Nil does nothing.
	BeforeRecord func(batch, table string) error

	// wholeDimensions makes the dimensions as tote did before they were
	// split by key range (unpartitioned, rewritten whole by Overwrite):
	// tests make tables of an earlier release with it.
	wholeDimensions bool
}

// Open returns a Publisher of the warehouse in pool's database whose data
// files go under lk's iceberg/ prefix, or nil and no error if opts.Catalog
// is "off" or the lake is in memory (mem://, which tests use: its Iceberg
// tables would vanish with it). It connects to the catalog on first use,
// so a part that is down does not stop a daemon starting. Close releases
// it; the pool stays the caller's.
func Open(ctx context.Context, pool *pgxpool.Pool, lk *lake.Lake, opts Options) (*Publisher, error) {
	kind, database, err := ParseCatalog(opts.Catalog)
	if err != nil {
		return nil, err
	}
	if kind == Off || strings.HasPrefix(lk.URL(), "mem:") {
		return nil, nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	location, props, err := lakeLocation(lk.URL())
	if err != nil {
		return nil, fmt.Errorf("iceberg: %w", err)
	}
	p := &Publisher{pool: pool, lake: lk, kind: kind, database: database, location: location, props: props,
		log: log.With("catalog", kind)}
	p.namespace = Namespace
	if kind == Glue {
		p.namespace = database
	}
	return p, nil
}

// catalog returns the catalog, connecting on first use.
func (p *Publisher) catalog(ctx context.Context) (catalog.Catalog, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cat != nil {
		return p.cat, nil
	}
	props := iceberg.Properties{}
	for k, v := range p.props {
		props[k] = v
	}
	switch p.kind {
	case SQL:
		if _, err := p.pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+CatalogSchema); err != nil {
			return nil, fmt.Errorf("iceberg: create schema %s for the SQL catalog: %w", CatalogSchema, err)
		}
		cfg := p.pool.Config().ConnConfig.Copy()
		cfg.RuntimeParams["search_path"] = CatalogSchema
		db := stdlib.OpenDB(*cfg)
		props[sqlcat.DialectKey] = string(sqlcat.Postgres)
		cat, err := sqlcat.NewCatalog(CatalogName, db, sqlcat.Postgres, props)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("iceberg: open the SQL catalog in schema %s: %w", CatalogSchema, err)
		}
		p.cat, p.db = cat, db
	case Glue:
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("iceberg: glue catalog: AWS configuration: %w", err)
		}
		awsProps := glue.AwsProperties{}
		for k, v := range props {
			awsProps[k] = v
		}
		cat, err := glue.NewCatalog(glue.WithAwsConfig(cfg), glue.WithAwsProperties(awsProps))
		if err != nil {
			return nil, fmt.Errorf("iceberg: glue catalog: %w", err)
		}
		p.cat = cat
	}
	return p.cat, nil
}

// Close releases the catalog's connections.
func (p *Publisher) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if c, ok := p.cat.(catalog.Closer); ok {
		err = c.Close()
	}
	if p.db != nil {
		err = errors.Join(err, p.db.Close())
	}
	return err
}

// Namespace is the namespace of the star's tables in the catalog.
func (p *Publisher) Namespace() string { return p.namespace }

// Location is where the tables' files are: the lake's iceberg/ prefix.
func (p *Publisher) Location() string { return p.location }

// Catalog returns the catalog the tables are registered in, for readers.
func (p *Publisher) Catalog(ctx context.Context) (catalog.Catalog, error) { return p.catalog(ctx) }

// Table loads the named star table's Iceberg table.
func (p *Publisher) Table(ctx context.Context, name string) (*table.Table, error) {
	cat, err := p.catalog(ctx)
	if err != nil {
		return nil, err
	}
	return cat.LoadTable(ctx, table.Identifier{p.namespace, name})
}

// lakeLocation returns the URL under which the Iceberg tables of the lake
// at rawURL live (its iceberg/ prefix), and the file IO properties that
// reach it.
func lakeLocation(rawURL string) (string, iceberg.Properties, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nil, fmt.Errorf("lake URL %q: %w", rawURL, err)
	}
	props := iceberg.Properties{}
	switch u.Scheme {
	case "file":
		var dir string
		switch {
		case u.Opaque != "":
			dir = u.Opaque
		case u.Host == "" || u.Host == "localhost":
			dir = u.Path
		default:
			dir = u.Host + u.Path
		}
		abs, err := filepath.Abs(filepath.FromSlash(dir))
		if err != nil {
			return "", nil, fmt.Errorf("lake %s: %w", rawURL, err)
		}
		dir = filepath.Join(abs, "iceberg")
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", nil, fmt.Errorf("lake %s: %w", rawURL, err)
		}
		return "file://" + filepath.ToSlash(dir), props, nil
	case "s3":
		q := u.Query()
		endpoint := q.Get("endpoint")
		if endpoint == "" {
			endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
		}
		if endpoint == "" {
			endpoint = os.Getenv("AWS_ENDPOINT_URL")
		}
		if endpoint != "" {
			props[iceio.S3EndpointURL] = endpoint
		}
		if r := q.Get("region"); r != "" {
			props[iceio.S3Region] = r
		} else if r := os.Getenv("AWS_REGION"); r != "" {
			props[iceio.S3Region] = r
		}
		pathStyle := q.Get("use_path_style") == "true" || os.Getenv("TOTE_S3_PATH_STYLE") == "true"
		props[iceio.S3ForceVirtualAddressing] = fmt.Sprint(!pathStyle)
		prefix := strings.Trim(u.Path, "/")
		loc := "s3://" + u.Host
		if prefix != "" {
			loc += "/" + prefix
		}
		return loc + "/iceberg", props, nil
	}
	return "", nil, fmt.Errorf("iceberg tables need a file:// or s3:// lake, not %s:// (turn publishing off with --iceberg-catalog off)", u.Scheme)
}
