package awslambda_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/awslambda"
	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/lambdatest"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/internal/s3test"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/star"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// password is put in every database URL the functions get (the test
// server trusts local connections, so it is never checked): no log line
// may show it.
const password = "pw-never-logged-7d1f"

// bundle is what the emulated-function tests share: the bootstrap, built
// once, and one S3 server whose bucket holds each test's lake under a
// prefix of its own.
type bundle struct {
	bootstrap string
	s3        *s3test.Server
}

// setup builds the function and starts the S3 server. The server sets the
// AWS environment with t.Setenv, so t must not be parallel; its subtests
// may be.
func setup(t *testing.T) *bundle {
	t.Helper()
	lambdatest.RIE(t) // skips now without make tools
	// The host's architecture: the emulator runs the binary natively.
	bootstrap := lambdatest.BuildBootstrap(t, "github.com/terrifictotes/tote/cmd/tote-lambda", runtime.GOARCH)
	return &bundle{bootstrap: bootstrap, s3: s3test.Start(t)}
}

// stack is one deployment: a seeded source, a warehouse, a lake (a prefix
// of the S3 server) and a Secrets Manager holding the source's URL.
type stack struct {
	b            *bundle
	prefix       string
	sourceURL    string // with the password
	warehouseURL string // with the password
	source       *pgxpool.Pool
	secrets      *httptest.Server
	env          map[string]string // every function's, beside its own
}

// newStack gives the stack a source seeded at scale with seed 1 (0: an
// empty one) and starts its Secrets Manager.
func newStack(t *testing.T, b *bundle, scale int) *stack {
	t.Helper()
	source := pgtest.NewDB(t)
	if scale > 0 {
		source = fixture.Source(scale, 1).NewDB(t)
	}
	s := &stack{
		b:            b,
		prefix:       strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()),
		sourceURL:    withPassword(t, source),
		warehouseURL: withPassword(t, pgtest.NewDB(t)),
	}
	s.source = pgtest.Pool(t, s.sourceURL)
	s.secrets = awstest.SecretsManager(t, map[string]string{"tote/source-url": s.sourceURL})
	s.env = map[string]string{
		"TOTE_LAKE_URL":                    "s3://" + b.s3.Bucket + "/" + s.prefix,
		"TOTE_S3_PATH_STYLE":               "true",
		"AWS_ENDPOINT_URL_S3":              b.s3.Endpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.secrets.URL,
		// The source by its secret, as Terraform sets it; the warehouse
		// by its URL, as a deployment without Secrets Manager would.
		"TOTE_SOURCE_URL":    "secretsmanager://tote/source-url",
		"TOTE_WAREHOUSE_URL": s.warehouseURL,
		"TOTE_LOG_LEVEL":     "debug",
		"TOTE_LAG_THRESHOLD": "30m",
		"TOTE_ENVIRONMENT":   "dev", // as Terraform sets it
	}
	return s
}

// start starts the function of stage under the emulator, with the stack's
// environment and env on top.
func (s *stack) start(t *testing.T, stage string, timeout time.Duration, env map[string]string) *lambdatest.Function {
	t.Helper()
	vars := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "tote-" + stage, "TOTE_STAGE": stage}
	for k, v := range s.env {
		vars[k] = v
	}
	for k, v := range env {
		vars[k] = v
	}
	return lambdatest.Start(t, s.b.bootstrap, vars, timeout)
}

// lake opens the stack's lake from the test.
func (s *stack) lake(t *testing.T) *lake.Lake {
	t.Helper()
	lk, err := lake.Open(t.Context(), s.b.s3.URL(s.prefix), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	return lk
}

// reference is the warehouse the functions must match on a stack seeded at
// scale 1: what pipeline.Run builds from the same seeded source, into a
// lake and warehouse of its own. It is built once, for every test that
// compares with it.
var reference = &pgtest.Template{Name: "reference", Setup: func(ctx context.Context, url string) error {
	src, drop, err := fixture.Source(1, 1).Copy(ctx)
	if err != nil {
		return err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, src)
	if err != nil {
		return err
	}
	defer pool.Close()
	wh, err := warehouse.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer wh.Close()
	lk, err := lake.Open(ctx, "mem://", lake.Options{})
	if err != nil {
		return err
	}
	defer lk.Close()
	if _, err := pipeline.Run(ctx, pipeline.Parts{Source: pool, Warehouse: wh, Lake: lk}, pipeline.Options{}); err != nil {
		return fmt.Errorf("reference pipeline.Run: %w", err)
	}
	return nil
}}

// reference returns the warehouse the functions must match; the stack
// must have been seeded at scale 1, and its source left as seeded.
func (s *stack) reference(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.Pool(t, reference.NewDB(t))
}

// sameWarehouse compares every star table of got with want, row for row,
// surrogate keys included, batch_id (which holds times) left out.
func sameWarehouse(t *testing.T, got, want *pgxpool.Pool) {
	t.Helper()
	for _, tb := range star.Tables {
		q := `SELECT (to_jsonb(t) - 'batch_id')::text FROM ` + pgx.Identifier{tb.Name}.Sanitize() + ` t ORDER BY 1`
		g, w := pgtest.Texts(t, got, q), pgtest.Texts(t, want, q)
		if len(g) != len(w) {
			t.Errorf("%s: %d rows, want %d", tb.Name, len(g), len(w))
			continue
		}
		for i := range g {
			if g[i] != w[i] {
				t.Errorf("%s: row %d is\n%s\nwant\n%s", tb.Name, i, g[i], w[i])
				break
			}
		}
	}
}

// starRows counts the rows of every star table that exists.
func starRows(t *testing.T, p *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	for _, tb := range star.Tables {
		var exists bool
		if err := p.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, tb.Name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			continue
		}
		var c int64
		if err := p.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{tb.Name}.Sanitize()).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

func withPassword(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// invoke invokes f with event and decodes a successful Output.
func invoke(t *testing.T, f *lambdatest.Function, event string) (lambdatest.Result, awslambda.Output) {
	t.Helper()
	r, err := f.Invoke(t.Context(), []byte(event))
	if err != nil {
		t.Fatal(err)
	}
	var out awslambda.Output
	if !r.Failed() {
		if err := json.Unmarshal(r.Payload, &out); err != nil {
			t.Fatalf("%s's response %s: %v", f.Name(), r.Payload, err)
		}
	}
	return r, out
}

// mustInvoke is invoke that fails the test on a function error.
func mustInvoke(t *testing.T, f *lambdatest.Function, event string) (lambdatest.Result, awslambda.Output) {
	t.Helper()
	r, out := invoke(t, f, event)
	if r.Failed() {
		t.Fatalf("%s failed: %s: %s\n%s", f.Name(), r.ErrorType, r.ErrorMessage, r.Logs)
	}
	return r, out
}

// logLines returns the function's log lines (tote's JSON lines, not the
// emulator's or the EMF documents) of one invocation.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("a log line is not JSON: %v\n%s", err, line)
			continue
		}
		if _, emf := m["_aws"]; !emf {
			out = append(out, m)
		}
	}
	return out
}

// emf returns the Embedded Metric Format documents of one invocation.
func emf(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(line, `{"`) || !strings.Contains(line, `"_aws"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("an EMF line is not JSON: %v\n%s", err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// holdLock locks table in mode (ACCESS EXCLUSIVE, SHARE, ...) in the
// database at u, in a transaction of its own, until the returned function
// is called (or the test ends): a stage that needs a conflicting lock waits
// there.
func holdLock(t *testing.T, u, table, mode string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE `+table+` IN `+mode+` MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(context.Background())
			_ = conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	return release
}

// waitForLockWaiters waits until n sessions wait for a lock on table.
func waitForLockWaiters(t *testing.T, p *pgxpool.Pool, table string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		err := p.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)`, table).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for %s after 30s, want %d", waiting, table, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flakyProxy forwards TCP connections to a server, but resets new ones
// while it is refusing: a database that refuses connections for a moment.
type flakyProxy struct {
	ln       net.Listener
	target   string
	refusing atomic.Bool
	refused  atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *flakyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut(false)
	})
	return p
}

// Addr is the proxy's host:port.
func (p *flakyProxy) Addr() string { return p.ln.Addr().String() }

// cut closes every connection open through the proxy and, if refuse,
// resets new ones until refusing is turned off.
func (p *flakyProxy) cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.refusing.Store(refuse)
}

func (p *flakyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refusing.Load() {
			p.mu.Unlock()
			p.refused.Add(1)
			c.(*net.TCPConn).SetLinger(0) // close with a reset
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go pipe(c, up)
		go pipe(up, c)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// viaProxy returns the database URL u reached through the proxy.
func viaProxy(t *testing.T, u string, p *flakyProxy) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Host = p.Addr()
	return parsed.String()
}

// secretsFront is a Secrets Manager whose secrets can change: it forwards
// to one awstest endpoint or another, and counts the reads.
type secretsFront struct {
	*httptest.Server
	target atomic.Pointer[url.URL]
	reads  atomic.Int64
}

func startSecretsFront(t *testing.T, first *httptest.Server) *secretsFront {
	t.Helper()
	f := &secretsFront{}
	f.use(t, first)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(f.target.Load())
	}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reads.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// use makes the front serve the secrets of s from now on.
func (f *secretsFront) use(t *testing.T, s *httptest.Server) {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	f.target.Store(u)
}

// dropDatabase drops the database at u, ending its sessions.
func dropDatabase(t *testing.T, u string) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.DropDatabase(t.Context(), pgtest.AdminURL(t), strings.TrimPrefix(parsed.Path, "/")); err != nil {
		t.Fatal(err)
	}
}
