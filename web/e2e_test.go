package web

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/terrifictotes/tote/internal/pgtest"
)

// chromium is Debian's headless browser, which the end-to-end tests drive
// with playwright-core (never a browser that playwright downloads).
const chromium = "/usr/bin/chromium"

// browserTest skips the test unless node, Debian's chromium and
// web/e2e/node_modules (npm ci there) are all present.
func browserTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skipped in -short mode")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is missing: apt-get install -y chromium to run the dashboard's browser tests", chromium)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is missing: the dashboard's browser tests need it")
	}
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "playwright-core")); err != nil {
		t.Skip("web/e2e/node_modules is missing: run `npm ci` in web/e2e to run the dashboard's browser tests")
	}
}

// serve starts srv on a loopback port of its own until the test ends.
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestBrowser runs web/e2e/dashboard.test.mjs in headless Chromium against
// a real dashboard on a seeded warehouse, with the figures it must show
// computed here in SQL, and a control endpoint through which the script
// has a sale inserted in the source and loaded while its page is open, and
// one deleted.
func TestBrowser(t *testing.T) {
	browserTest(t)
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	base := serve(t, b.srv)

	// The same dashboard as reached beyond the loopback: it has a token.
	var runs atomic.Int32
	guarded, err := New(Config{Pool: b.wh, Warehouse: b.parts.Warehouse, Token: "e2e-token",
		RunNow: func() bool { runs.Add(1); return true }})
	if err != nil {
		t.Fatal(err)
	}
	guardedURL := serve(t, guarded)

	// What the default view must show: the orders and revenue of each
	// currency in the last 12 months up to the newest sale, from the facts.
	var biz Business
	decode(t, get(t, b.srv, "/api/business"), &biz)
	expect := map[string]map[string]string{}
	for _, row := range pgtest.Texts(t, b.wh, `
		WITH cur AS (SELECT DISTINCT ON (sales_order_id) f.* FROM fact_sales_order f
		             ORDER BY sales_order_id, batch_id DESC, sales_record_id DESC)
		SELECT json_build_object('currency', c.currency_code, 'orders', count(*)::text,
		                         'revenue', sum(units_sold * unit_price)::text)::text
		FROM cur JOIN dim_currency c USING (currency_id)
		WHERE created_date BETWEEN $1::date AND $2::date GROUP BY c.currency_code`, biz.Period.From, biz.Period.To) {
		var k map[string]string
		if err := json.Unmarshal([]byte(row), &k); err != nil {
			t.Fatal(err)
		}
		expect[k["currency"]] = k
	}
	if len(expect) == 0 {
		t.Fatal("no sales in the default view")
	}
	expectFile := filepath.Join(t.TempDir(), "expect.json")
	data, _ := json.Marshal(map[string]any{"kpis": expect})
	if err := os.WriteFile(expectFile, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// The control endpoint: a new sale in the source (GBP, today), then a
	// pipeline run, as the business and tote serve would do; the dashboard
	// hears of the load and brings its summaries up to date. POST /delete
	// deletes the newest GBP sale instead, and says which.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/delete" {
			var order int64
			err := b.src.QueryRow(r.Context(), `DELETE FROM sales_order WHERE sales_order_id = (
				SELECT max(sales_order_id) FROM sales_order WHERE currency_id = (SELECT currency_id FROM currency WHERE currency_code = 'GBP'))
				RETURNING sales_order_id`).Scan(&order)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			b.load(t)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]int64{"order": order})
			return
		}
		_, err := b.src.Exec(r.Context(), `
			INSERT INTO sales_order (sales_order_id, created_at, last_updated, design_id, staff_id, counterparty_id,
			    units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
			SELECT max(sales_order_id) + 1, now(), now(), 1, 1, 1, 1000, 2.50,
			       (SELECT currency_id FROM currency WHERE currency_code = 'GBP'),
			       to_char(now() + interval '7 days', 'YYYY-MM-DD'), to_char(now() + interval '30 days', 'YYYY-MM-DD'), 1
			FROM sales_order`)
		if err == nil {
			b.load(t) // the dashboard brings its summaries up to date itself
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(204)
	}))
	defer control.Close()

	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "--test-concurrency=1", "e2e/dashboard.test.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "GUARDED_URL="+guardedURL, "CONTROL_URL="+control.URL,
		"EXPECT_FILE="+expectFile, "CHROMIUM="+chromium, "DOWNLOADS="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("node e2e/dashboard.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("run now with the token queued %d runs, want 1", n)
	}
	var orders int64
	if err := b.wh.QueryRow(ctx, `SELECT count(DISTINCT sales_order_id) FROM fact_sales_order`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	_ = pgx.ErrNoRows
}
