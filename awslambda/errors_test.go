package awslambda_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jackc/pgx/v5"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/awslambda"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/warehouse"
)

// TestClassify classifies real errors where this machine can make them,
// each also as a stage would return it (inside a *tote.Error and wrapped),
// and stand-ins for the rest.
func TestClassify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.NewDB(t)

	type tc struct {
		name string
		err  error
		want string
	}
	var cases []tc
	add := func(name string, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error to classify", name)
		}
		cases = append(cases, tc{name, err, want})
	}

	// A refused connection.
	_, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=5")
	add("connection refused", err, awslambda.Transient)

	// A server that hangs up while the connection starts.
	hangup, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangup.Close()
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = pgx.Connect(ctx, "postgres://postgres@"+hangup.Addr().String()+"/x?sslmode=disable&connect_timeout=5")
	add("hung up while connecting", err, awslambda.Transient)

	// Errors the server sends, with the codes that matter.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	raise := func(code string) error {
		_, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '%s'; END $$`, code))
		return err
	}
	for code, want := range map[string]string{
		"40001": awslambda.Transient, // serialization_failure
		"40P01": awslambda.Transient, // deadlock_detected
		"55P03": awslambda.Transient, // lock_not_available
		"57P01": awslambda.Transient, // admin_shutdown
		"57P03": awslambda.Transient, // cannot_connect_now
		"53300": awslambda.Transient, // too_many_connections
		"08006": awslambda.Transient, // connection_failure
		"28P01": awslambda.Fatal,     // invalid_password
		"42P01": awslambda.Fatal,     // undefined_table
		"23505": awslambda.Fatal,     // unique_violation
	} {
		add("SQLSTATE "+code, raise(code), want)
	}
	_, err = conn.Exec(ctx, `SELECT 1/0`)
	add("division by zero", err, awslambda.Fatal)
	// A real lock timeout.
	other, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE locked (id int)`); err != nil {
		t.Fatal(err)
	}
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE locked`); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SET lock_timeout = '50ms'; SELECT * FROM locked`)
	add("lock timeout", err, awslambda.Transient)
	tx.Rollback(ctx)

	// A query that outlives its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = conn.Exec(short, `SELECT pg_sleep(5)`)
	cancel()
	add("deadline", err, awslambda.Transient)

	// Two writers commit the same lake batch: the second loses.
	lk := laketest.Mem(t)
	if _, err := lk.NewBatch(lake.Raw, 1, time.Now()).Commit(ctx, "test", nil); err != nil {
		t.Fatal(err)
	}
	_, err = lk.NewBatch(lake.Raw, 1, time.Now()).Commit(ctx, "test", nil)
	add("lake commit race", err, awslambda.RunInProgress)

	// Another run holds the warehouse's run lock.
	wh, err := warehouse.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	release, err := pipeline.LockRun(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.LockRun(ctx, wh)
	release()
	add("run lock held", err, awslambda.RunInProgress)

	// A lake object that is not what it should be.
	dir := t.TempDir()
	flk, err := lake.Open(ctx, "file://"+dir, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "status"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status", "load.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st awslambda.LoadStatus
	_, err = flk.Status(ctx, awslambda.LoadStatusName, &st)
	add("corrupt lake object", err, awslambda.Fatal)

	// Parts that do not answer within their bounds: a database and an S3
	// endpoint that accept connections and say nothing, a statement on
	// which nothing moves.
	hole := hangtest.BlackHole(t)
	_, err = postgres.OpenWith(ctx, "source", "postgres://postgres@"+hole+"/x", postgres.Options{ConnectTimeout: time.Second})
	add("database connect timeout", err, awslambda.Transient)
	stalling, err := postgres.OpenWith(ctx, "warehouse", db, postgres.Options{StallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stalling.Close()
	_, err = stalling.Exec(ctx, `SELECT pg_sleep(2)`)
	add("database stall timeout", err, awslambda.Transient)
	_, err = lake.Open(ctx, "s3://b/p?"+url.Values{"endpoint": {"http://" + hole}, "use_path_style": {"true"},
		"region": {"us-east-1"}, "anonymous": {"true"}}.Encode(), lake.Options{StallTimeout: 200 * time.Millisecond})
	add("S3 stall timeout", err, awslambda.Transient)

	// Stand-ins for what this machine cannot provoke.
	add("drift", &extract.DriftError{Changes: []string{"address.phone: column dropped (was text NOT NULL)"}}, awslambda.Fatal)
	add("bad value", tote.ValueError("agreed_delivery_date", "soon", "is not a date (YYYY-MM-DD)"), awslambda.Fatal)
	add("secret not found", errors.New(`TOTE_SOURCE_URL: secret "tote/source-url" not found in AWS Secrets Manager`), awslambda.Fatal)
	add("reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, awslambda.Transient)
	add("DNS", &net.DNSError{Err: "no such host", Name: "db.example", IsNotFound: true}, awslambda.Transient)
	add("broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), awslambda.Transient)
	for code, want := range map[string]string{
		"SlowDown":              awslambda.Transient,
		"Throttling":            awslambda.Transient,
		"ThrottlingException":   awslambda.Transient,
		"RequestTimeout":        awslambda.Transient,
		"InternalError":         awslambda.Transient,
		"ServiceUnavailable":    awslambda.Transient,
		"AccessDenied":          awslambda.Fatal,
		"NoSuchBucket":          awslambda.Fatal,
		"AccessDeniedException": awslambda.Fatal,
	} {
		add("AWS "+code, &smithy.GenericAPIError{Code: code, Message: "test"}, want)
	}
	// tote's list of throttling and service-side codes holds every code
	// the AWS SDK retries.
	for _, codes := range []map[string]struct{}{retry.DefaultThrottleErrorCodes, retry.DefaultRetryableErrorCodes} {
		for code := range codes {
			add("AWS SDK retries "+code, &smithy.GenericAPIError{Code: code, Message: "test"}, awslambda.Transient)
		}
	}
	for status, want := range map[int]string{503: awslambda.Transient, 500: awslambda.Transient, 429: awslambda.Transient, 403: awslambda.Fatal} {
		add(fmt.Sprintf("HTTP %d", status), &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("test")}, want)
	}

	for _, c := range cases {
		// As a stage returns it: in a *tote.Error, with context below and
		// a note above.
		staged := fmt.Errorf("%w (noted)", tote.At(fmt.Errorf("query: %w", c.err), tote.Where{Stage: tote.Load, Table: "fact_sales_order"}))
		for _, err := range []error{c.err, staged} {
			if got := awslambda.Classify(err); got != c.want {
				t.Errorf("%s: Classify(%v) = %s, want %s", c.name, err, got, c.want)
			}
		}
	}
	if got := awslambda.Classify(nil); got != "" {
		t.Errorf("Classify(nil) = %q", got)
	}
}
