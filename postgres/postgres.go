// Package postgres owns tote's connections to PostgreSQL servers (the totesys
// source and the warehouse): opening them with errors a user can act on,
// showing their URLs without passwords, and streaming rows in COPY text
// format.
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
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open connects to the database at rawURL and checks that it answers.
// role names the database in messages ("source", "warehouse").
func Open(ctx context.Context, role, rawURL string) (*pgxpool.Pool, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%s database: no URL configured", role)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s database: invalid URL %s: %w", role, Redact(rawURL), unwrapParse(err))
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "tote"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s database %s: %w", role, Redact(rawURL), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, Explain(role, rawURL, err)
	}
	return pool, nil
}

// Explain turns a connection error into one sentence that names the database
// and says what to check.
func Explain(role, rawURL string, err error) error {
	where := Redact(rawURL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		var msg string
		switch pgErr.Code {
		case "28P01", "28000":
			msg = fmt.Sprintf("%s database %s: authentication failed (%s): check the user and password", role, where, pgErr.Message)
		case "3D000":
			msg = fmt.Sprintf("%s database %s: %s: create it or fix the URL", role, where, pgErr.Message)
		default:
			msg = fmt.Sprintf("%s database %s: %s (SQLSTATE %s)", role, where, pgErr.Message, pgErr.Code)
		}
		return &explained{msg: msg, cause: pgErr}
	}
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) || errors.As(err, &netErr):
		return fmt.Errorf("%s database %s: server unreachable: is PostgreSQL running and listening there? (%w)", role, where, rootCause(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s database %s: gave up connecting: %w", role, where, err)
	}
	return fmt.Errorf("%s database %s: %w", role, where, err)
}

// explained is a server's error as Explain words it, which still unwraps
// to the server's error, so that callers can tell its SQLSTATE (too many
// connections, starting up) without parsing the sentence.
type explained struct {
	msg   string
	cause *pgconn.PgError
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
