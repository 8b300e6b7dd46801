// Command dashbench measures the dashboard against a loaded warehouse.
//
// For each view (the default page, each date preset, all time, as of the
// first load, one filter, two filters, a design filter, the drill-downs,
// an order's history, the design search, the filter lists, the pipeline
// view) it calls the page's API several times and reports every query the
// call ran, with its median and worst time, and the view's worst query
// against the 200 ms target. Queries run one at a time (one connection),
// so each time is the query's own, not its wait behind the others the page
// runs at once. Then it measures the first paint of the business and
// pipeline pages in headless Chromium (web/e2e/paint.mjs): first
// contentful paint, and every chart drawn, cold and with cached assets.
//
//	go run ./cmd/dashbench -warehouse postgres://…/warehouse [-lake file://…] [-runs 5]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/warehouse"
	"github.com/terrifictotes/tote/web"
)

// Targets the dashboard issue sets.
const (
	queryTarget = 200 * time.Millisecond
	paintTarget = time.Second
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "dashbench:", err)
		os.Exit(1)
	}
}

// view is one API call a page makes.
type view struct{ name, target string }

// result is what the runs of one view measured.
type result struct {
	view
	queries map[string][]time.Duration // each query's time, per run
	calls   []time.Duration            // the whole call's, per run
}

func run(ctx context.Context) error {
	whURL := flag.String("warehouse", os.Getenv("TOTE_WAREHOUSE_URL"), "warehouse `URL` (env TOTE_WAREHOUSE_URL)")
	lakeURL := flag.String("lake", "", "lake `URL` (optional)")
	runs := flag.Int("runs", 5, "times each view is loaded, after one that warms the caches")
	paint := flag.Bool("paint", true, "measure the first paint in headless Chromium (needs web/e2e/node_modules)")
	flag.Parse()
	pcfg, err := pgxpool.ParseConfig(*whURL)
	if err != nil {
		return fmt.Errorf("warehouse URL %s: %w", postgres.Redact(*whURL), err)
	}
	pcfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := web.Check(ctx, pool); err != nil {
		return err
	}
	// As a dashboard does at start: the summaries caught up with the loads.
	start := time.Now()
	w, err := web.Refresh(ctx, warehouse.New(pool, nil))
	if err != nil {
		return err
	}
	fmt.Printf("dashboard summaries as of batch %d, brought up to date in %.2fs\n", w.Seq, time.Since(start).Seconds())
	var rows, batches int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM fact_sales_order) + (SELECT count(*) FROM fact_purchase_order)
		+ (SELECT count(*) FROM fact_payment), (SELECT count(*) FROM tote.load_ledger)`).Scan(&rows, &batches); err != nil {
		return err
	}

	var mu sync.Mutex
	var current map[string][]time.Duration // the queries of the call being measured
	cfg := web.Config{Pool: pool, Warehouse: warehouse.New(pool, nil), Observe: func(q string, d time.Duration) {
		mu.Lock()
		if current != nil {
			current[q] = append(current[q], d)
		}
		mu.Unlock()
	}}
	if *lakeURL != "" {
		if cfg.Lake, err = lake.Open(ctx, *lakeURL, lake.Options{}); err != nil {
			return err
		}
	}
	srv, err := web.New(cfg)
	if err != nil {
		return err
	}
	views, err := views(ctx, pool)
	if err != nil {
		return err
	}

	results := make([]*result, len(views))
	for i, v := range views {
		results[i] = &result{view: v, queries: map[string][]time.Duration{}}
	}
	for i := -1; i < *runs; i++ { // run -1 warms the connection and the caches, and is not counted
		for _, r := range results {
			calls := map[string][]time.Duration{}
			mu.Lock()
			current = calls
			mu.Unlock()
			req := httptest.NewRequest("GET", r.target, nil)
			w := httptest.NewRecorder()
			start := time.Now()
			srv.ServeHTTP(w, req)
			took := time.Since(start)
			mu.Lock()
			current = nil
			mu.Unlock()
			if w.Code != 200 {
				return fmt.Errorf("%s: %d %s", r.target, w.Code, w.Body.String())
			}
			if i < 0 {
				continue
			}
			r.calls = append(r.calls, took)
			for q, ds := range calls {
				// A query a call runs twice counts as its worst.
				r.queries[q] = append(r.queries[q], slices.Max(ds))
			}
		}
	}

	fmt.Printf("dashboard bench: %d fact rows, %d batches loaded, %d runs of each view, %d CPUs\n",
		rows, batches, *runs, runtime.NumCPU())
	over := 0
	for _, r := range results {
		fmt.Printf("\n%s  %s\n", r.name, r.target)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  query\tmedian ms\tworst ms\t\n")
		for _, q := range sortedKeys(r.queries) {
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t\n", q, ms(median(r.queries[q])), ms(slices.Max(r.queries[q])))
		}
		tw.Flush()
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "view\tworst query\tits median ms\tits worst ms\t< 200 ms\tcall median ms\t\n")
	for _, r := range results {
		q, worst := worstQuery(r.queries)
		ok := worst < queryTarget
		if !ok {
			over++
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%s\t%.1f\t\n", r.name, q, ms(median(r.queries[q])), ms(worst), yes(ok), ms(median(r.calls)))
	}
	tw.Flush()
	if *paint {
		if err := firstPaint(ctx, srv); err != nil {
			return err
		}
	}
	if over > 0 {
		fmt.Printf("\n%d views have a query over %v\n", over, queryTarget)
	}
	return nil
}

// views are the API calls measured, with filter values taken from the
// warehouse: its first location's country, a department of staff who sold
// there, its best-selling design, its newest order.
func views(ctx context.Context, pool *pgxpool.Pool) ([]view, error) {
	var country, dept, design, order string
	var firstLoad time.Time
	for _, q := range []struct {
		sql  string
		dest any
	}{
		{`SELECT country FROM dim_location ORDER BY location_id LIMIT 1`, &country},
		{`SELECT s.department_name FROM dim_staff s JOIN dim_location l ON l.location_id = 1
		  GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`, &dept},
		{`SELECT design_id::text FROM fact_sales_order GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`, &design},
		{`SELECT sales_order_id::text FROM fact_sales_order ORDER BY sales_record_id DESC LIMIT 1`, &order},
		{`SELECT loaded_at FROM tote.load_ledger ORDER BY seq LIMIT 1`, &firstLoad},
	} {
		if err := pool.QueryRow(ctx, q.sql).Scan(q.dest); err != nil {
			return nil, fmt.Errorf("choose the views' filters: %w", err)
		}
	}
	c, d := url.QueryEscape(country), url.QueryEscape(dept)
	return []view{
		{"default (last 12 months)", "/api/business"},
		{"preset 7d", "/api/business?preset=7d"},
		{"preset 30d", "/api/business?preset=30d"},
		{"preset 90d", "/api/business?preset=90d"},
		{"preset ytd", "/api/business?preset=ytd"},
		{"preset 12m", "/api/business?preset=12m"},
		{"all time", "/api/business?preset=all"},
		{"custom, 200 days", "/api/business?preset=custom&from=2023-06-01&to=2023-12-17"},
		{"as of the first load", "/api/business?asof=" + url.QueryEscape(firstLoad.Add(time.Second).Format(time.RFC3339))},
		{"as of the first load, all time", "/api/business?preset=all&asof=" + url.QueryEscape(firstLoad.Add(time.Second).Format(time.RFC3339))},
		{"one filter (country " + country + ")", "/api/business?country=" + c},
		{"two filters (country, department " + dept + ")", "/api/business?country=" + c + "&dept=" + d},
		{"a design filter", "/api/business?preset=all&design=" + design},
		{"drill-down, sales", "/api/drill?kind=sales"},
		{"drill-down, sales, two filters", "/api/drill?kind=sales&country=" + c + "&dept=" + d},
		{"drill-down, overdue payments", "/api/drill?kind=payments&status=overdue"},
		{"drill-down, purchases", "/api/drill?kind=purchases"},
		{"order history", "/api/history?order=" + order},
		{"design search", "/api/designs?q=a"},
		{"page (filter lists)", "/"},
		{"pipeline view", "/api/pipeline"},
	}, nil
}

// firstPaint serves the dashboard and has web/e2e/paint.mjs load it in
// headless Chromium.
func firstPaint(ctx context.Context, srv *web.Server) error {
	dir := filepath.Join("web", "e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		return fmt.Errorf("first paint: run npm ci in %s first (or -paint=false)", dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	out, err := exec.CommandContext(ctx, "node", filepath.Join(dir, "paint.mjs"), "http://"+ln.Addr().String()).Output()
	if err != nil {
		return fmt.Errorf("first paint: %w", err)
	}
	var res []struct {
		View   string  `json:"view"`
		FCP    float64 `json:"fcp_ms"`
		Charts float64 `json:"charts_ms"`
		Warm   bool    `json:"warm"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("first paint: %w: %s", err, out)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "page\tfirst contentful paint ms\t< 1 s\tevery chart drawn ms\t\n")
	for _, r := range res {
		name := r.View + " (cold)"
		if r.Warm {
			name = r.View + " (cached assets)"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t\n", name, r.FCP, yes(r.FCP >= 0 && r.FCP < float64(paintTarget.Milliseconds())), r.Charts)
	}
	return tw.Flush()
}

func worstQuery(qs map[string][]time.Duration) (string, time.Duration) {
	var name string
	var worst time.Duration
	for _, q := range sortedKeys(qs) {
		if d := slices.Max(qs[q]); d > worst {
			name, worst = q, d
		}
	}
	return name, worst
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func sortedKeys(m map[string][]time.Duration) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
