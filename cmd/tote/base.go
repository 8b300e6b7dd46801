package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/secrets"
	"github.com/terrifictotes/tote/warehouse"
)

// DefaultLake is where the lake is when neither --lake nor TOTE_LAKE_URL
// says: a directory beside the working directory's other data, never the
// source tree's lake package (make clean removes ./data).
const DefaultLake = "file://./data/lake"

// uses says which parts a command works with: it takes their flags, and
// opens them on request.
type uses int

const (
	usesSource uses = 1 << iota
	usesWarehouse
	usesLake
)

// base is what every command shares: the flags of the parts it uses and of
// its logging, one wording for a missing database, the logger, and the
// parts it opens, all closed together when the command ends.
type base struct {
	*flags
	uses                          uses
	sourceURL, warehouseURL, lake string
	s3PathStyle                   bool
	iceberg                       *icebergSettings // nil: the command does not publish
	bounds                        bounds
	// createsLake lets the command create a file:// lake that does not
	// exist (the commands that extract); every other command only reads
	// what is there, and a mistyped URL is an error, not a new lake.
	createsLake bool
	logs        logConfig
	log         *slog.Logger
	closers     []func()
}

// newBase starts command cmd: its flag set with the flags of the parts it
// uses and of logging. The command adds its own flags, then calls parse.
func newBase(e *env, cmd, args, summary string, u uses) *base {
	// Commands print what they did; the daemon and the dashboard, whose
	// logs are their output, set printsSummary back to false.
	b := &base{flags: newFlags(e, cmd, args, summary), uses: u, logs: logConfig{printsSummary: true}}
	if u&usesSource != 0 {
		b.secretString(&b.sourceURL, "source", "TOTE_SOURCE_URL",
			"totesys (source) PostgreSQL `URL`; also TOTE_SOURCE_URL_FILE, or secretsmanager://NAME")
	}
	if u&usesWarehouse != 0 {
		b.secretString(&b.warehouseURL, "warehouse", "TOTE_WAREHOUSE_URL",
			"warehouse PostgreSQL `URL`; also TOTE_WAREHOUSE_URL_FILE, or secretsmanager://NAME")
	}
	if u&usesLake != 0 {
		b.envString(&b.lake, "lake", "TOTE_LAKE_URL", DefaultLake, "data lake `URL`: file://DIR, s3://BUCKET/PREFIX or mem://")
	}
	if u != 0 {
		b.envDuration(&b.bounds.connect, "connect-timeout", "TOTE_CONNECT_TIMEOUT", postgres.DefaultConnectTimeout,
			"give up connecting to a database or an S3 endpoint after this `duration` (a database URL's connect_timeout wins)")
		b.envDuration(&b.bounds.stall, "stall-timeout", "TOTE_STALL_TIMEOUT", postgres.DefaultStallTimeout,
			"fail a database statement or an S3 request on which no byte has moved for this `duration` (a transfer that moves is never cut; 0: no bound)")
	}
	b.envString(&b.logs.format, "log-format", "TOTE_LOG_FORMAT", "text", "log format: `text` or json")
	b.envString(&b.logs.level, "log-level", "TOTE_LOG_LEVEL", "info", "log level: debug, `info`, warn or error")
	return b
}

// parse parses args (want positional arguments, or none if negative),
// checks that the databases in required are given, and builds the logger.
func (b *base) parse(args []string, want int, required uses) error {
	if err := b.flags.parse(args, want); err != nil {
		return err
	}
	for _, r := range []struct {
		u         uses
		url, name string
		env       string
	}{{usesSource, b.sourceURL, "source", "TOTE_SOURCE_URL"}, {usesWarehouse, b.warehouseURL, "warehouse", "TOTE_WAREHOUSE_URL"}} {
		if required&r.u != 0 && r.url == "" {
			return b.usageErr("no %s database: give --%s URL or set %s", r.name, r.name, r.env)
		}
	}
	if b.uses&usesLake != 0 {
		if v := b.e.getenv("TOTE_S3_PATH_STYLE"); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return b.usageErr("TOTE_S3_PATH_STYLE=%q: want true or false", v)
			}
			b.s3PathStyle = on
		}
	}
	if b.iceberg != nil {
		if _, _, err := iceberg.ParseCatalog(b.iceberg.catalog); err != nil {
			return b.usageErr("--iceberg-catalog: %v", err)
		}
	}
	log, err := b.logs.logger(b.e.stderr)
	if err != nil {
		return b.usageErr("%v", err)
	}
	b.log = log
	return nil
}

// start parses the command line as parse does, then opens the parts the
// command uses, as open does.
func (b *base) start(ctx context.Context, args []string, want int, required uses) (pipeline.Parts, error) {
	if err := b.parse(args, want, required); err != nil {
		return pipeline.Parts{}, err
	}
	return b.open(ctx)
}

// jsonFlag registers --json.
func (b *base) jsonFlag(what string) *bool {
	return b.fs.Bool("json", false, "print "+what+" as JSON")
}

// lakeGiven reports whether the command line or the environment names the
// lake, rather than leaving it to the default.
func (b *base) lakeGiven() bool {
	given := b.e.getenv("TOTE_LAKE_URL") != ""
	b.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "lake" })
	return given
}

// close closes what the command opened, last first.
func (b *base) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// bounds are the limits on waiting for the parts (see postgres.Options
// and lake.Options).
type bounds struct {
	connect, stall time.Duration
	// lazy opens the parts without checking that they answer (serve).
	lazy bool
}

// stallOption is the stall timeout as the parts' options take it: zero
// on the command line means no bound.
func (bd bounds) stallOption() time.Duration {
	if bd.stall <= 0 {
		return -1
	}
	return bd.stall
}

// openPool connects to the database at url, bounded as the flags say,
// and closes it when the command ends.
func (b *base) openPool(ctx context.Context, role, url string) (*pgxpool.Pool, error) {
	pool, err := postgres.OpenWith(ctx, role, url, postgres.Options{
		ConnectTimeout: b.bounds.connect,
		StallTimeout:   b.bounds.stallOption(),
		Lazy:           b.bounds.lazy,
	})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, pool.Close)
	return pool, nil
}

func (b *base) openSource(ctx context.Context) (*pgxpool.Pool, error) {
	return b.openPool(ctx, "source", b.sourceURL)
}

func (b *base) openWarehouse(ctx context.Context) (*warehouse.Warehouse, error) {
	pool, err := b.openPool(ctx, "warehouse", b.warehouseURL)
	if err != nil {
		return nil, err
	}
	return warehouse.New(pool, b.log), nil
}

func (b *base) openLake(ctx context.Context) (*lake.Lake, error) {
	return b.openLakeAt(ctx, b.lake)
}

func (b *base) openLakeAt(ctx context.Context, url string) (*lake.Lake, error) {
	lk, err := lake.Open(ctx, url, lake.Options{Logger: b.log, S3PathStyle: b.s3PathStyle,
		ConnectTimeout: b.bounds.connect, StallTimeout: b.bounds.stallOption(), Lazy: b.bounds.lazy,
		MustExist: !b.createsLake})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { lk.Close() })
	return lk, nil
}

// open opens the parts the command uses: the lake, then the source and the
// warehouse (each only if its URL is given).
func (b *base) open(ctx context.Context) (pipeline.Parts, error) {
	var p pipeline.Parts
	var err error
	if b.uses&usesLake != 0 {
		if p.Lake, err = b.openLake(ctx); err != nil {
			return p, err
		}
	}
	if b.uses&usesSource != 0 && b.sourceURL != "" {
		if p.Source, err = b.openSource(ctx); err != nil {
			return p, err
		}
	}
	if b.uses&usesWarehouse != 0 && b.warehouseURL != "" {
		if p.Warehouse, err = b.openWarehouse(ctx); err != nil {
			return p, err
		}
	}
	if b.iceberg != nil && p.Lake != nil && p.Warehouse != nil {
		if p.Iceberg, err = iceberg.Open(ctx, p.Warehouse.Pool(), p.Lake, iceberg.Options{Catalog: b.iceberg.catalog, Logger: b.log}); err != nil {
			return p, err
		}
		pub := p.Iceberg
		b.closers = append(b.closers, func() { _ = pub.Close() })
	}
	return p, nil
}

// icebergSettings are the flags of a command that publishes the star's
// Iceberg tables.
type icebergSettings struct {
	catalog string
}

// icebergFlags registers --iceberg-catalog: the command publishes to the
// Iceberg tables after it loads (see package iceberg).
func (b *base) icebergFlags() *icebergSettings {
	b.iceberg = &icebergSettings{}
	b.envString(&b.iceberg.catalog, "iceberg-catalog", "TOTE_ICEBERG_CATALOG", iceberg.SQL,
		"publish the star as Iceberg tables in this catalog after each load: sql (in the warehouse database, schema "+iceberg.CatalogSchema+"), glue://DATABASE, or off")
	return b.iceberg
}

// secretString registers a flag holding a secret setting: its value may
// also come from NAME_FILE or, given as secretsmanager://NAME, from AWS
// Secrets Manager, resolved when the flags are parsed.
func (f *flags) secretString(p *string, name, env, usage string) {
	f.envString(p, name, env, "", usage)
	f.secrets = append(f.secrets, secretFlag{p, env})
}

// resolver reads secret settings: a value, NAME_FILE, or secretsmanager://NAME.
func (e *env) resolver() secrets.Resolver {
	return secrets.Resolver{Getenv: e.getenv, SecretsManager: func(ctx context.Context) (*secretsmanager.Client, error) {
		cfg, err := e.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		return secretsmanager.NewFromConfig(cfg), nil
	}}
}

// awsConfig loads the AWS configuration from the usual environment
// (AWS_REGION, AWS_ENDPOINT_URL, credentials, profiles).
func (e *env) awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS config: %w", err)
	}
	return cfg, nil
}
