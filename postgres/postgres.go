// Package postgres owns tote's connections to PostgreSQL servers (the totesys
// source and the warehouse): opening them with errors a user can act on,
// bounding every wait on them (connecting, a statement that stalls, a
// transaction left idle; see Options), showing their URLs without
// passwords, and streaming rows in COPY text format.
//
// It knows nothing of totesys or the star schema; packages that do (totesys,
// seed, simulate, extract, warehouse) take the pools it opens.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/stall"
)

// The bounds on waiting for a server, by default (see Options).
const (
	DefaultConnectTimeout           = 10 * time.Second
	DefaultStallTimeout             = 2 * time.Minute
	DefaultIdleInTransactionTimeout = 10 * time.Minute
)

// Options bounds the waits on a server. Zero fields take the defaults.
type Options struct {
	// ConnectTimeout bounds connecting to each address the URL names: from
	// the dial to the server's first answer as PostgreSQL. connect_timeout
	// in the URL (or PGCONNECT_TIMEOUT) wins. Default 10s.
	ConnectTimeout time.Duration
	// StallTimeout fails a statement, and drops its connection, when no
	// byte has moved between tote and the server for this long: a server
	// that is stuck, or cut off. A statement that moves data (a long COPY)
	// is never cut for being long; one that says nothing for this long (a
	// big sort, a lock wait) is. Default 2m; negative for no bound.
	StallTimeout time.Duration
	// IdleInTransactionTimeout is the server's
	// idle_in_transaction_session_timeout for tote's sessions: the server
	// ends a session that holds a transaction open without a statement
	// for this long, so that a tote that hangs releases its locks. The
	// URL's idle_in_transaction_session_timeout wins. Default 10m;
	// negative for the server's own setting.
	IdleInTransactionTimeout time.Duration
	// Waits, if set, records the reads and writes in progress (see
	// stall.Waits): the Lambda handler asks it, out of time, whether the
	// server was answering.
	Waits *stall.Waits
	// Lazy makes Open return without connecting: the pool connects when
	// first used, and a server that does not answer fails that use. tote
	// serve starts so, whatever the state of its databases.
	Lazy bool
}

func (o Options) connect() time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (o Options) stall() time.Duration { return stall.Limit(o.StallTimeout, DefaultStallTimeout) }

// Open connects to the database at rawURL, with the default Options, and
// checks that it answers. role names the database in messages ("source",
// "warehouse").
func Open(ctx context.Context, role, rawURL string) (*pgxpool.Pool, error) {
	return OpenWith(ctx, role, rawURL, Options{})
}

// OpenWith is Open with opts: every connection of the pool is bounded as
// they say, and unless opts.Lazy, one is made now to check that the
// server answers. A bound that is reached fails with one line that says
// what did not answer, for how long, and what to check.
func OpenWith(ctx context.Context, role, rawURL string, opts Options) (*pgxpool.Pool, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%s database: no URL configured", role)
	}
	if err := checkURL(rawURL); err != nil {
		return nil, fmt.Errorf("%s database: %w", role, err)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s database: invalid URL %s: %w", role, Redact(rawURL), unwrapParse(err))
	}
	cc := cfg.ConnConfig
	cc.RuntimeParams["application_name"] = "tote"
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = opts.connect()
	}
	if _, set := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !set && opts.IdleInTransactionTimeout >= 0 {
		idle := opts.IdleInTransactionTimeout
		if idle == 0 {
			idle = DefaultIdleInTransactionTimeout
		}
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(idle.Milliseconds(), 10)
	}
	cc.DialFunc = dialer(role, cc.ConnectTimeout, opts.stall(), opts.Waits)
	// Connecting has its own bound, the connect timeout; the stall
	// timeout bounds the connection once it is made.
	afterConnect, limit := cc.AfterConnect, opts.stall()
	cc.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		if c := stall.Unwrap(pc.Conn()); c != nil {
			c.Bound(limit)
		}
		if afterConnect != nil {
			return afterConnect(ctx, pc)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s database %s: %w", role, Redact(rawURL), err)
	}
	if opts.Lazy {
		return pool, nil
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, &explained{msg: fmt.Sprintf("%s database %s: gave up connecting: %v", role, Redact(rawURL), context.Cause(ctx)), cause: err}
		}
		return nil, explain(role, rawURL, err, cc.ConnectTimeout)
	}
	return pool, nil
}

// dialer returns the pool's DialFunc: connections bounded by connect to
// dial, wrapped to be bounded by limit once connected (see stall.Conn and
// OpenWith's AfterConnect).
func dialer(role string, connect, limit time.Duration, waits *stall.Waits) pgconn.DialFunc {
	d := &net.Dialer{Timeout: connect, KeepAlive: 5 * time.Minute}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		end := waits.Begin()
		c, err := d.DialContext(ctx, network, addr)
		end()
		if err != nil {
			return nil, err
		}
		stalled := func(time.Duration) error {
			return &StallError{Role: role, Addr: addr, Bound: limit}
		}
		return stall.Wrap(c, 0, stalled, waits), nil
	}
}

// StallError is a statement on which no byte moved for the stall timeout:
// the connection is dropped. It is a net.Error and a Timeout: a failure
// of the network or of the server, which may pass.
type StallError struct {
	Role, Addr string        // "source" or "warehouse", and the server's address
	Bound      time.Duration // the stall timeout
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the %s database at %s sent nothing for %s (stall timeout): is the server stuck, overloaded or cut off?",
		e.Role, e.Addr, e.Bound)
}

// Timeout reports true.
func (e *StallError) Timeout() bool { return true }

// Temporary reports true: the server may answer again.
func (e *StallError) Temporary() bool { return true }

// TimeoutError is a server that did not answer within the connect
// timeout. It is a net.Error and a Timeout.
type TimeoutError struct {
	msg   string
	cause error
}

func (e *TimeoutError) Error() string   { return e.msg }
func (e *TimeoutError) Unwrap() error   { return e.cause }
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return true }

// Ping checks that pool's server answers, and says in one line why not:
// it is Open's check, for a pool that exists (tote serve's readiness).
func Ping(ctx context.Context, role string, pool *pgxpool.Pool) error {
	start := time.Now()
	err := pool.Ping(ctx)
	if err == nil {
		return nil
	}
	url := pool.Config().ConnString()
	var stalled *StallError
	switch {
	case errors.As(err, &stalled):
		return &explained{msg: fmt.Sprintf("%s database %s: %v", role, Redact(url), stalled), cause: err}
	case ctx.Err() != nil:
		return &TimeoutError{msg: fmt.Sprintf("%s database %s: no answer within %s", role, Redact(url),
			time.Since(start).Round(100*time.Millisecond)), cause: err}
	}
	return explain(role, url, err, pool.Config().ConnConfig.ConnectTimeout)
}

// WaitForNotification waits for a notification on conn, which LISTENs,
// for as long as it takes: the stall timeout does not apply to the wait
// (silence is what a quiet channel sends), only ctx.
func WaitForNotification(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	if c := stall.Unwrap(conn.PgConn().Conn()); c != nil {
		stall.Quiet(c, true)
		defer stall.Quiet(c, false)
	}
	return conn.WaitForNotification(ctx)
}

// Explain turns a connection error into one sentence that names the database
// and says what to check.
func Explain(role, rawURL string, err error) error {
	return explain(role, rawURL, err, 0)
}

// explain is Explain, knowing the connect timeout that applied (0 if not
// known).
func explain(role, rawURL string, err error, connect time.Duration) error {
	return explainAt(role+" database "+Redact(rawURL), err, connect)
}

// explainAt is explain for the database that db names ("source database
// postgres://...").
func explainAt(db string, err error, connect time.Duration) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		var msg string
		switch pgErr.Code {
		case "28P01", "28000":
			msg = fmt.Sprintf("%s: authentication failed (%s): check the user and password", db, pgErr.Message)
		case "3D000":
			msg = fmt.Sprintf("%s: %s: create it or fix the URL", db, pgErr.Message)
		default:
			msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", db, pgErr.Message, pgErr.Code)
		}
		return &explained{msg: msg, cause: pgErr}
	}
	first := firstAttempt(err)
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	within := ""
	if connect > 0 {
		within = " within " + connect.String()
	}
	switch {
	case errors.As(first, &opErr) && opErr.Op == "dial" && (opErr.Timeout() || errors.Is(first, context.DeadlineExceeded)):
		return &TimeoutError{msg: fmt.Sprintf("%s: no connection%s (connect timeout): is the host right, and its port open to this machine?",
			db, within), cause: err}
	case errors.Is(first, context.DeadlineExceeded) || pgconn.Timeout(first) || (errors.As(first, &netErr) && netErr.Timeout()):
		return &TimeoutError{msg: fmt.Sprintf("%s: the server did not answer as PostgreSQL%s (connect timeout): is this the right port?",
			db, within), cause: err}
	case errors.As(first, &dnsErr) && dnsErr.IsNotFound:
		return &explained{msg: fmt.Sprintf("%s: host %s not found (DNS): check the host in the URL", db, dnsErr.Name), cause: err}
	case errors.As(first, &dnsErr):
		return &explained{msg: fmt.Sprintf("%s: cannot look up host %s (DNS: %s): check the host in the URL, and this machine's DNS",
			db, dnsErr.Name, dnsErr.Err), cause: err}
	case errors.As(first, &opErr) || errors.As(first, &netErr):
		return &explained{msg: fmt.Sprintf("%s: server unreachable: is PostgreSQL running and listening there? (%v)", db, rootCause(first)), cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &explained{msg: fmt.Sprintf("%s: gave up connecting: %v", db, context.Canceled), cause: err}
	}
	return &explained{msg: fmt.Sprintf("%s: %s", db, oneLine(err.Error())), cause: err}
}

// Reword returns err with the text of the pgconn.ConnectError in it, if
// any, replaced by one line as Open words it: a connection that a pool
// failed to make in the middle of a run, which pgconn words over several
// lines (one per address and TLS fallback) without saying what to check.
// The result unwraps to err; an err without a ConnectError is returned
// as it is.
func Reword(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) || ce.Config == nil {
		return err
	}
	msg, old := err.Error(), ce.Error()
	if !strings.Contains(msg, old) {
		return err
	}
	c := ce.Config
	db := "database " + (&url.URL{Scheme: "postgres", User: url.User(c.User),
		Host: net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), Path: "/" + c.Database}).String()
	if strings.HasPrefix(c.Host, "/") {
		db = fmt.Sprintf("database %s of user %s on the socket in %s", c.Database, c.User, c.Host)
	}
	return &reworded{msg: strings.Replace(msg, old, explainAt(db, ce, c.ConnectTimeout).Error(), 1), err: err}
}

type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }

// firstAttempt returns the error of the first connection attempt in err:
// pgconn tries each address, and each TLS fallback, in turn, and joins
// their errors, of which the first says what went wrong (the later ones
// often only that the time was up).
func firstAttempt(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	inner := ce.Unwrap()
	if joined, ok := inner.(interface{ Unwrap() []error }); ok {
		if errs := joined.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return inner
}

// oneLine joins the lines of a message (pgconn's, one per connection
// attempt) into one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// explained is a server's error as Explain words it, which still unwraps
// to the server's error, so that callers can tell its SQLSTATE (too many
// connections, starting up) without parsing the sentence.
type explained struct {
	msg   string
	cause error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.cause }

// Redact returns rawURL with any password replaced by "xxxxx", for logs and
// messages. A string that does not parse as a URL is reduced to its scheme.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.Index(rawURL, "://"); i > 0 {
			return rawURL[:i] + "://(unparseable URL)"
		}
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// rootCause strips pgconn's wrapping down to the network error, which says it best.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return opErr
		}
		err = next
	}
}

// wantURL is the form of a database URL, as errors show it.
const wantURL = "postgres://USER:PASSWORD@HOST:PORT/DATABASE"

// checkURL refuses what is not a PostgreSQL URL (another database's,
// a path, a word) before pgconn does so in words that do not say what it
// wants. Keyword/value settings ("host=h dbname=d") pass.
func checkURL(rawURL string) error {
	scheme, _, isURL := strings.Cut(rawURL, "://")
	switch {
	case isURL && scheme != "postgres" && scheme != "postgresql":
		return fmt.Errorf("the URL must be %s, not %s://…", wantURL, scheme)
	case !isURL && !strings.Contains(rawURL, "="):
		return fmt.Errorf("the URL must be %s, not %q", wantURL, rawURL)
	}
	return nil
}

// unwrapParse drops pgconn's ParseConfigError wrapper, which repeats the URL
// (password included) in its message.
func unwrapParse(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if inner := errors.Unwrap(pe); inner != nil {
			return inner
		}
		return errors.New("cannot parse")
	}
	return err
}

// CreateDatabase creates database name on the server at adminURL (as a
// role that may create databases) and returns its URL: adminURL with the
// database replaced.
func CreateDatabase(ctx context.Context, adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("create database %s: invalid server URL %s", name, Redact(adminURL))
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", Explain("server", adminURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, Redact(adminURL), err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

// DropDatabase drops database name on the server at adminURL, if it
// exists, disconnecting its sessions first.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return Explain("server", adminURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s on %s: %w", name, Redact(adminURL), err)
	}
	return nil
}
