package awslambda

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/internal/stall"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/secrets"
	"github.com/terrifictotes/tote/warehouse"
)

// staleAfter is how long connections may sit idle in a frozen execution
// environment and still be used: past it, a NAT gateway or a proxy may
// have dropped them without a word, and a ping would wait for TCP to give
// up. The schedule's runs are minutes apart, so in practice each run
// connects afresh; a retry a few seconds later reuses the connections.
const staleAfter = time.Minute

// parts are what the function opens, on first use, and keeps across warm
// invocations: the lake, the pools of the two databases, and the secrets
// they were opened with. Never logged: the URLs.
type parts struct {
	cfg      Config
	log      *slog.Logger
	resolver secrets.Resolver
	// sns is the client alerts are published with, made on first use.
	sns func() (*sns.Client, error)

	// waits records, for each part, the waits on it; opening names the
	// part being opened, or that failed to open, in this invocation. An
	// invocation out of time asks them whether it was waiting on a part
	// that did not answer.
	waits   map[string]*stall.Waits
	opening string

	lake      *lake.Lake
	ice       *iceberg.Publisher // the publish stage's, over lake and the warehouse pool
	source    database
	warehouse database
	wh        *warehouse.Warehouse
}

// database is one PostgreSQL database and the secret setting naming it.
type database struct {
	role    string // "source" or "warehouse", in messages
	env     string // the setting's variable, for secrets.Resolver
	setting string // its value: a URL, secretsmanager://NAME, or "" with env_FILE
	url     string // the resolved URL, kept until drop
	pool    *pgxpool.Pool
}

func newParts(c Config, getenv func(string) string, log *slog.Logger) *parts {
	p := &parts{
		cfg:       c,
		log:       log,
		waits:     map[string]*stall.Waits{partSource: {}, partWarehouse: {}, partLake: {}},
		source:    database{role: "source", env: "TOTE_SOURCE_URL", setting: c.SourceURL},
		warehouse: database{role: "warehouse", env: "TOTE_WAREHOUSE_URL", setting: c.WarehouseURL},
	}
	// One client per service for the function's life: they hold no
	// secret, only the function's own credentials, which the SDK refreshes.
	awsConfig := sync.OnceValues(func() (aws.Config, error) {
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return cfg, fmt.Errorf("AWS config: %w", err)
		}
		return cfg, nil
	})
	client := sync.OnceValues(func() (*secretsmanager.Client, error) {
		cfg, err := awsConfig()
		if err != nil {
			return nil, err
		}
		return secretsmanager.NewFromConfig(cfg), nil
	})
	p.resolver = secrets.Resolver{Getenv: getenv, SecretsManager: func(context.Context) (*secretsmanager.Client, error) { return client() }}
	p.sns = sync.OnceValues(func() (*sns.Client, error) {
		cfg, err := awsConfig()
		if err != nil {
			return nil, err
		}
		return sns.NewFromConfig(cfg), nil
	})
	return p
}

// The parts, as the waits and messages name them.
const (
	partSource    = "source database"
	partWarehouse = "warehouse database"
	partLake      = "lake"
)

// openLake returns the lake, opening it on first use.
func (p *parts) openLake(ctx context.Context) (*lake.Lake, error) {
	if p.lake != nil {
		return p.lake, nil
	}
	p.opening = partLake
	lk, err := lake.Open(ctx, p.cfg.LakeURL, lake.Options{Logger: p.log, S3PathStyle: p.cfg.S3PathStyle,
		ConnectTimeout: p.cfg.ConnectTimeout, StallTimeout: p.cfg.StallTimeout, Waits: p.waits[partLake]})
	if err != nil {
		return nil, err
	}
	p.lake, p.opening = lk, ""
	return lk, nil
}

// postgresOptions are the bounds of a database's connections.
func (p *parts) postgresOptions(part string) postgres.Options {
	return postgres.Options{ConnectTimeout: p.cfg.ConnectTimeout, StallTimeout: p.cfg.StallTimeout, Waits: p.waits[part]}
}

// openSource returns the source database's pool, opening it on first use.
func (p *parts) openSource(ctx context.Context) (*pgxpool.Pool, error) {
	if p.source.pool != nil {
		return p.source.pool, nil
	}
	p.opening = partSource
	pool, err := p.source.open(ctx, p.resolver, p.postgresOptions(partSource))
	if err != nil {
		return nil, err
	}
	p.opening = ""
	return pool, nil
}

// openWarehouse returns the warehouse, opening it on first use.
func (p *parts) openWarehouse(ctx context.Context) (*warehouse.Warehouse, error) {
	if p.wh != nil {
		return p.wh, nil
	}
	p.opening = partWarehouse
	pool, err := p.warehouse.open(ctx, p.resolver, p.postgresOptions(partWarehouse))
	if err != nil {
		return nil, err
	}
	p.opening = ""
	p.wh = warehouse.New(pool, p.log)
	return p.wh, nil
}

// thaw is called as a warm invocation starts, idle since the previous one
// ended: connections idle for longer than staleAfter are closed, so that
// the pools open new ones.
func (p *parts) thaw(idle time.Duration) {
	if idle < staleAfter {
		return
	}
	for _, d := range []*database{&p.source, &p.warehouse} {
		if d.pool != nil {
			d.pool.Reset()
		}
	}
}

// drop closes and forgets everything but the Secrets Manager client, after
// a failure: a connection may be broken, or refused because the secret was
// rotated, so the next invocation reads the secrets again and reconnects.
func (p *parts) drop() {
	for _, d := range []*database{&p.source, &p.warehouse} {
		if d.pool != nil {
			d.pool.Close()
		}
		d.pool, d.url = nil, ""
	}
	p.wh = nil
	if p.ice != nil {
		_ = p.ice.Close()
		p.ice = nil
	}
	if p.lake != nil {
		_ = p.lake.Close()
		p.lake = nil
	}
}

// waiting returns the part that, at time at, a wait then in progress had
// gone without an answer for longest, and for how long; "" if none.
func (p *parts) waiting(at time.Time) (part string, waited time.Duration) {
	for name, w := range p.waits {
		if d := w.LongestAt(at); d > waited {
			part, waited = name, d
		}
	}
	return part, waited
}

// open returns the pool, reading the secret and connecting on first use.
func (d *database) open(ctx context.Context, r secrets.Resolver, opts postgres.Options) (*pgxpool.Pool, error) {
	if d.pool != nil {
		return d.pool, nil
	}
	if d.url == "" {
		url, err := r.Resolve(ctx, d.env, d.setting)
		if err != nil {
			return nil, fmt.Errorf("%s database: %w", d.role, err)
		}
		if url == "" {
			return nil, fmt.Errorf("%s database: %s resolves to an empty URL", d.role, d.env)
		}
		d.url = url
	}
	pool, err := postgres.OpenWith(ctx, d.role, d.url, opts)
	if err != nil {
		d.url = "" // perhaps rotated: read it again next time
		return nil, err
	}
	d.pool = pool
	return pool, nil
}
