package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/simulate"
	"github.com/terrifictotes/tote/warehouse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bundle is a seeded source, a lake and a warehouse loaded from them in
// two runs (the seed, then simulated changes: new orders, payments paid,
// order edits), and a dashboard on the warehouse.
type bundle struct {
	src, wh *pgxpool.Pool
	whURL   string
	lake    *lake.Lake
	parts   pipeline.Parts
	srv     *Server
}

// newBundle builds a bundle of its own (for tests that change it).
func newBundle(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	srcURL, whURL := fixture.Source(1, 7).NewDB(t), pgtest.NewDB(t)
	b := &bundle{src: pgtest.Pool(t, srcURL), wh: pgtest.Pool(t, whURL), whURL: whURL}
	lk, err := lake.Open(ctx, "file://"+t.TempDir(), lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	b.lake = lk
	b.parts = pipeline.Parts{Source: b.src, Warehouse: warehouse.New(b.wh, nil), Lake: lk}
	b.run(t)
	if _, err := simulate.Run(ctx, b.src, simulate.Options{Rate: 100_000, Events: 600, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	b.run(t)
	b.srv, err = New(Config{Pool: b.wh, Warehouse: b.parts.Warehouse, Lake: lk, RunNow: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs the pipeline once and brings the summaries up to date, as a
// dashboard does after a load.
func (b *bundle) run(t *testing.T) {
	t.Helper()
	b.load(t)
	refresh(t, b.wh)
}

// load runs the pipeline once, leaving the summaries behind.
func (b *bundle) load(t *testing.T) {
	t.Helper()
	if _, err := pipeline.Run(context.Background(), b.parts, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
}

// refresh brings the summaries of the warehouse in pool up to date.
func refresh(t *testing.T, pool *pgxpool.Pool) Watermark {
	t.Helper()
	w, err := Refresh(context.Background(), warehouse.New(pool, nil))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSeededWarehouse runs the tests that only read one seeded warehouse,
// in parallel, against the same bundle.
func TestSeededWarehouse(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	for name, fn := range map[string]func(*testing.T, *bundle){
		"KPIsMatchFacts":            testKPIsMatchFacts,
		"SummariesAgreeWithFacts":   testSummariesAgreeWithFacts,
		"DrillCountsAgree":          testDrillCountsAgree,
		"EveryQueryRuns":            testEveryQueryRuns,
		"RunNowGuards":              testRunNowGuards,
		"DesignRankingMatchesFacts": testDesignRankingMatchesFacts,
		"DrillCSVAndOptions":        testDrillCSVAndOptions,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// currentSales is the truth the KPIs must match: each sales order once, at
// its newest version (newest batch), straight from the fact table.
const currentSales = `
WITH cur AS (
  SELECT DISTINCT ON (sales_order_id) f.* FROM fact_sales_order f
  ORDER BY sales_order_id, batch_id DESC, sales_record_id DESC
)
SELECT c.currency_code || ' ' || count(*) || ' ' || sum(units_sold) || ' ' || sum(units_sold * unit_price)::text
       || ' ' || round(sum(units_sold * unit_price) / count(*), 2)::text
FROM cur JOIN dim_currency c USING (currency_id)
LEFT JOIN dim_location l ON l.location_id = cur.agreed_delivery_location_id
LEFT JOIN dim_staff st ON st.staff_id = cur.sales_staff_id
WHERE cur.created_date BETWEEN $1::date AND $2::date
  AND ($3::text[] IS NULL OR l.country = ANY($3::text[]))
  AND ($4::int[] IS NULL OR cur.design_id = ANY($4::int[]))
  AND ($5::text[] IS NULL OR st.department_name = ANY($5::text[]))
GROUP BY c.currency_code ORDER BY 1`

func kpiRows(b Business) []string {
	var out []string
	for _, k := range b.KPIs {
		if k.Orders > 0 {
			out = append(out, fmt.Sprintf("%s %d %d %s %s", k.Currency, k.Orders, k.Units, k.Revenue, k.AOV))
		}
	}
	return out
}

// businessAt is the business view for the page's query string q.
func businessAt(t *testing.T, b *bundle, q string) (State, Business) {
	t.Helper()
	v, _ := url.ParseQuery(q)
	st, err := ParseState(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.srv.business(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return st, got
}

// Every KPI equals the same figure computed from the facts, whichever
// summary answers it.
func testKPIsMatchFacts(t *testing.T, b *bundle) {
	ctx := context.Background()
	country := pgtest.Texts(t, b.wh, `SELECT country FROM dim_location ORDER BY location_id LIMIT 1`)[0]
	dept := pgtest.Texts(t, b.wh, `SELECT department_name FROM dim_staff ORDER BY staff_id LIMIT 1`)[0]
	designs := pgtest.Texts(t, b.wh, `SELECT design_id::text FROM fact_sales_order GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3`)
	for _, tc := range []struct {
		name    string
		q       string
		country []string
		design  []int32
		dept    []string
		route   string
	}{
		{name: "default", q: "", route: "all"},
		{name: "all time", q: "preset=all", route: "all"},
		{name: "a country", q: "preset=all&country=" + url.QueryEscape(country), country: []string{country}, route: "location"},
		{name: "a department", q: "preset=all&dept=" + url.QueryEscape(dept), dept: []string{dept}, route: "staff"},
		{name: "designs", q: "preset=all&design=" + strings.Join(designs, "&design="), design: ids(designs), route: "facts"},
		{name: "country and department", q: "preset=all&country=" + url.QueryEscape(country) + "&xf=dept:" + url.QueryEscape(dept),
			country: []string{country}, dept: []string{dept}, route: "facts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, got := businessAt(t, b, tc.q)
			f, err := st.resolve(ctx, b.srv.db(), b.srv.now())
			if err != nil {
				t.Fatal(err)
			}
			if r := f.salesRoute(""); r != tc.route {
				t.Errorf("route %q, want %q", r, tc.route)
			}
			var design any
			if tc.design != nil {
				design = tc.design
			}
			var countries, depts any
			if tc.country != nil {
				countries = tc.country
			}
			if tc.dept != nil {
				depts = tc.dept
			}
			want := pgtest.Texts(t, b.wh, currentSales, got.Period.From, got.Period.To, countries, design, depts)
			if len(want) == 0 {
				t.Fatal("the test's filter matches no sales")
			}
			if g := kpiRows(got); !slices.Equal(g, want) {
				t.Errorf("KPIs\n got %q\nwant %q", g, want)
			}
		})
	}
}

// asOfViews returns cur and cur as of each of the ledger's seqs, read
// both ways (up to the batch, and current less what came after it).
func asOfViews(cur filter, seqs []string) []filter {
	views := []filter{cur}
	for _, seq := range seqs {
		n, _ := strconv.ParseInt(seq, 10, 64)
		for _, mode := range []string{modeUpTo, modeAfter} {
			f := cur
			f.AsOf, f.Mode = n, mode
			views = append(views, f)
		}
	}
	return views
}

// The summaries and the facts answer every chart alike: each chart's
// query through its summary, and through the facts (route 'facts'), in
// the current state and as of each loaded batch (both ways of reading the
// summaries as of a batch where both hold).
func testSummariesAgreeWithFacts(t *testing.T, b *bundle) {
	ctx := context.Background()
	d := b.srv.db()
	seqs := pgtest.Texts(t, b.wh, `SELECT seq::text FROM tote.load_ledger ORDER BY seq`)
	for _, preset := range []string{"all", "custom"} {
		st, _ := ParseState(url.Values{"preset": {preset}, "from": {"2023-02-11"}, "to": {"2024-06-30"}})
		cur, err := st.resolve(ctx, d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		views := asOfViews(cur, seqs)
		for _, f := range views {
			name := fmt.Sprintf("%s as of %d (%v)", preset, f.AsOf, f.Mode)
			for _, c := range salesCharts {
				route := f.salesRoute(c.group)
				if c.group == "design" {
					route = "design"
				}
				a, err := tableOf(ctx, d, c.query, c.columns, c.params(f, route).args())
				if err != nil {
					t.Fatal(err)
				}
				v, err := tableOf(ctx, d, c.query, c.columns, c.params(f, "facts").args())
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(a.Rows) != fmt.Sprint(v.Rows) || len(a.Rows) == 0 {
					t.Errorf("%s, %s: route %s gives %d rows, the facts %d:\n%v\n%v", name, c.name, route, len(a.Rows), len(v.Rows), a.Rows, v.Rows)
				}
			}
			cols := []Column{{"period", "", "text"}, {"currency", "", "text"}, {"orders", "", "int"}, {"quantity", "", "int"}, {"value", "", "int"}}
			all, facts := f.purchases("all"), f.purchases("facts")
			all.Grain, facts.Grain = "month", "month"
			a, err := tableOf(ctx, d, "purchase_series", cols, all.args())
			if err != nil {
				t.Fatal(err)
			}
			v, err := tableOf(ctx, d, "purchase_series", cols, facts.args())
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a.Rows) != fmt.Sprint(v.Rows) || len(a.Rows) == 0 {
				t.Errorf("%s, purchases: the summary and the facts differ:\n%v\n%v", name, a.Rows, v.Rows)
			}
		}
	}
}

// A figure's drill-down has as many rows as the figure counts.
func testDrillCountsAgree(t *testing.T, b *bundle) {
	var biz Business
	decode(t, get(t, b.srv, "/api/business?preset=all"), &biz)
	for _, k := range biz.KPIs {
		if k.Orders == 0 {
			continue
		}
		var d Drill
		decode(t, get(t, b.srv, "/api/drill?preset=all&kind=sales&xf=cur:"+k.Currency), &d)
		if d.Total != k.Orders || d.Totals.Rows[0]["revenue"] != k.Revenue {
			t.Errorf("%s: drill-down has %d rows worth %v, the KPI %d orders worth %s", k.Currency, d.Total, d.Totals.Rows[0]["revenue"], k.Orders, k.Revenue)
		}
		if len(d.Rows.Rows) != int(min(d.Total, DrillPage)) {
			t.Errorf("%s: first page has %d rows", k.Currency, len(d.Rows.Rows))
		}
	}
	for _, row := range biz.Charts["countries"].Rows[:3] {
		var d Drill
		decode(t, get(t, b.srv, "/api/drill?preset=all&kind=sales&xf=country:"+url.QueryEscape(row["country"].(string))+"&xf=cur:"+row["currency"].(string)), &d)
		if float64(d.Total) != row["orders"].(float64) {
			t.Errorf("%v %v: drill-down has %d rows, the chart %v orders", row["country"], row["currency"], d.Total, row["orders"])
		}
	}
	var overdue int64
	var cur string
	for _, k := range biz.KPIs {
		if k.Overdue > 0 {
			overdue, cur = k.Overdue, k.Currency
			break
		}
	}
	if overdue > 0 {
		var d Drill
		decode(t, get(t, b.srv, "/api/drill?preset=all&kind=payments&status=overdue&xf=cur:"+cur), &d)
		if d.Total != overdue {
			t.Errorf("overdue %s: drill-down has %d rows, the KPI %d", cur, d.Total, overdue)
		}
	}
}

// Every named query runs against a seeded warehouse with the parameters
// the dashboard gives it, and none is left untested.
func testEveryQueryRuns(t *testing.T, b *bundle) {
	ran := map[string]bool{}
	var mu sync.Mutex
	srv, err := New(Config{Pool: b.wh, Warehouse: b.parts.Warehouse, Lake: b.lake,
		Observe: func(name string, _ time.Duration) { mu.Lock(); ran[name] = true; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	order := pgtest.Texts(t, b.wh, `SELECT sales_order_id::text FROM fact_sales_order GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`)[0]
	design := pgtest.Texts(t, b.wh, `SELECT design_id::text FROM dim_design LIMIT 1`)[0]
	for _, target := range []string{
		"/?preset=all&design=" + design,
		"/api/business", "/api/business?preset=all&asof=2030-01-01T00:00",
		"/api/business?country=Peru&dept=Sales&cur=GBP&city=Peru+%2F+Lima",
		"/api/drill?kind=sales", "/api/drill?kind=payments&status=unpaid", "/api/drill?kind=purchases",
		"/api/history?order=" + order, "/api/designs?q=a", "/api/pipeline", "/api/freshness",
	} {
		if w := get(t, srv, target); w.Code != 200 {
			t.Errorf("GET %s: %d %s", target, w.Code, w.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range QueryNames() {
		if !ran[name] {
			t.Errorf("query %s never ran", name)
		}
	}
	if err := Check(context.Background(), b.wh); err != nil {
		t.Error(err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	for _, q := range []string{
		"", "preset=30d&grain=day", "preset=custom&from=2024-01-01&to=2024-03-31",
		"country=Turkey&country=Peru&city=Peru+%2F+Lima&design=3&staff=2&dept=Sales&cur=GBP&cp=4&xf=country%3ATurkey&xf=period%3A2024-01-01..2024-01-31&xf=lead%3A2",
		"asof=2024-11-15T12:00",
	} {
		v, _ := url.ParseQuery(q)
		s, err := ParseState(v)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		again, err := ParseState(s.Query())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(s) {
			t.Errorf("%q: %+v came back as %+v (%v)", q, s, again, err)
		}
	}
	for _, bad := range []string{"preset=soon", "from=yesterday", "grain=hour", "xf=colour:red", "xf=lead:x", "design=abc", "asof=later"} {
		v, _ := url.ParseQuery(bad)
		if _, err := ParseState(v); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCheckBind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true}, {"localhost:8080", "", true}, {"[::1]:8080", "", true},
		{"0.0.0.0:8080", "", false}, {":8080", "", false}, {"192.0.2.1:8080", "", false}, {"0.0.0.0:8080", "s3cret", true},
	} {
		if err := CheckBind(tc.addr, tc.token); (err == nil) != tc.ok {
			t.Errorf("CheckBind(%q, %q) = %v", tc.addr, tc.token, err)
		}
	}
}

// Run now needs the token (when there is one) and a request from the
// dashboard's own page; a read-only dashboard has no run now.
func testRunNowGuards(t *testing.T, b *bundle) {
	var runs int
	srv, err := New(Config{Pool: b.wh, Warehouse: b.parts.Warehouse, Token: "s3cret", RunNow: func() bool { runs++; return true }})
	if err != nil {
		t.Fatal(err)
	}
	post := func(h http.Handler, header ...string) int {
		r := httptest.NewRequest("POST", "http://dash.example/api/run", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		name   string
		header []string
		code   int
	}{
		{"no token", []string{"Sec-Fetch-Site", "same-origin"}, 401},
		{"wrong token", []string{"Sec-Fetch-Site", "same-origin", "X-Tote-Token", "guess"}, 401},
		{"token, another site", []string{"Sec-Fetch-Site", "cross-site", "X-Tote-Token", "s3cret"}, 403},
		{"token, foreign origin", []string{"Origin", "http://evil.example", "X-Tote-Token", "s3cret"}, 403},
		{"token, no origin at all", []string{"X-Tote-Token", "s3cret"}, 403},
		{"cookie, same origin", []string{"Origin", "http://dash.example", "Cookie", tokenCookie + "=s3cret"}, 202},
		{"token, same site", []string{"Sec-Fetch-Site", "same-origin", "X-Tote-Token", "s3cret"}, 202},
	} {
		if code := post(srv, tc.header...); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	if runs != 2 {
		t.Errorf("%d runs queued, want 2", runs)
	}
	// Pages ask for the token too; ?token= sets the cookie.
	if w := get(t, srv, "/api/business"); w.Code != 401 {
		t.Errorf("API without the token: %d", w.Code)
	}
	if w := get(t, srv, "/"); w.Code != 401 || !strings.Contains(w.Body.String(), `name="token"`) {
		t.Errorf("page without the token: %d, no login form", w.Code)
	}
	w := get(t, srv, "/?preset=all&token=s3cret")
	if w.Code != 303 || w.Header().Get("Location") != "/?preset=all" || !strings.Contains(w.Header().Get("Set-Cookie"), "HttpOnly") {
		t.Errorf("login: %d to %q, cookie %q", w.Code, w.Header().Get("Location"), w.Header().Get("Set-Cookie"))
	}
	readOnly, _ := New(Config{Pool: b.wh, Warehouse: b.parts.Warehouse})
	if code := post(readOnly, "Sec-Fetch-Site", "same-origin"); code != 404 {
		t.Errorf("read-only run now: %d", code)
	}
	if w := get(t, readOnly, "/pipeline"); strings.Contains(w.Body.String(), `id="run-now"`) {
		t.Error("the read-only pipeline view has a run-now button")
	}
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
}

// designRanking is the truth the designs chart must match: each
// currency's designs over the period, from the current version of each
// order, ranked by revenue (then id); the top $4 and, of the rest, the
// last $4.
const designRanking = `
WITH cur AS (
  SELECT DISTINCT ON (sales_order_id) f.* FROM fact_sales_order f
  ORDER BY sales_order_id, batch_id DESC, sales_record_id DESC
), s AS (
  SELECT currency_id, design_id, count(*) AS orders, sum(units_sold) AS units, sum(units_sold * unit_price) AS value
  FROM cur LEFT JOIN dim_location l ON l.location_id = cur.agreed_delivery_location_id
  WHERE created_date BETWEEN $1::date AND $2::date AND ($3::text[] IS NULL OR l.country = ANY($3::text[]))
  GROUP BY 1, 2
), r AS (
  SELECT s.*, row_number() OVER (PARTITION BY currency_id ORDER BY value DESC, design_id) AS rank,
         count(*) OVER (PARTITION BY currency_id) AS n
  FROM s
)
SELECT concat_ws(' ', CASE WHEN rank <= $4 THEN 'top' ELSE 'bottom' END, design_id, c.currency_code, orders, units, value)
FROM r JOIN dim_currency c USING (currency_id)
WHERE rank <= $4 OR rank > greatest(n - $4, $4)
ORDER BY c.currency_code, rank`

// The designs chart ranks what the facts rank, whether it reads the
// design summary or the facts (a country filter).
func testDesignRankingMatchesFacts(t *testing.T, b *bundle) {
	country := pgtest.Texts(t, b.wh, `SELECT country FROM dim_location ORDER BY location_id LIMIT 1`)[0]
	for _, tc := range []struct {
		name, q string
		country []string
	}{
		{"default", "", nil},
		{"all time", "preset=all", nil},
		// Recent days: the bounds come from the period's orders more than
		// from the all-time best and worst sellers.
		{"the last 90 days", "preset=90d", nil},
		{"a country", "preset=all&country=" + url.QueryEscape(country), []string{country}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := businessAt(t, b, tc.q)
			var countries any
			if tc.country != nil {
				countries = tc.country
			}
			want := pgtest.Texts(t, b.wh, designRanking, got.Period.From, got.Period.To, countries, 10)
			if len(want) < 20 {
				t.Fatalf("the test's period ranks only %d designs", len(want))
			}
			var rows []string
			for _, r := range got.Charts["designs"].Rows {
				rows = append(rows, fmt.Sprintf("%v %v %v %v %v %v", r["rank"], r["design_id"], r["currency"], r["orders"], r["units"], r["revenue"]))
			}
			if !slices.Equal(rows, want) {
				t.Errorf("designs\n got %q\nwant %q", rows, want)
			}
		})
	}
}

// The design rankings' edge cases rank what the facts rank, whichever way
// the ranking finds its candidates (the designs the period's orders name;
// bounds and the indexes; every design): ties at both ends (by revenue,
// then id), a design's two orders tying with another's one, a currency
// with fewer designs than the chart ranks, and a period with no sales;
// now and as of each batch.
func TestDesignRankingEdges(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx := context.Background()
	// Orders in a month between the seeded sales and the simulated ones:
	// 25 designs in GBP at four prices (ties at the top, the bottom and
	// the boundary between them), design 26 twice at the second price (its
	// sum ties with the third), three designs in another currency at one
	// price.
	const period, empty = "2025-06", "2025-08"
	if got := pgtest.Texts(t, b.wh, `SELECT count(*)::text FROM fact_sales_order WHERE to_char(created_date, 'YYYY-MM') IN ($1, $2)`, period, empty); got[0] != "0" {
		t.Fatalf("%s orders in the test's months: it needs them without", got[0])
	}
	if _, err := b.wh.Exec(ctx, `
		WITH o AS (SELECT * FROM fact_sales_order ORDER BY sales_record_id LIMIT 1),
		n AS (
		  SELECT i, (SELECT min(currency_id) FROM dim_currency) AS cur, i AS design, 10.00 * (1 + i % 4) AS price FROM generate_series(1, 25) i
		  UNION ALL SELECT 26, (SELECT min(currency_id) FROM dim_currency), 26, 10.00 * 2 FROM generate_series(1, 2)
		  UNION ALL SELECT 30 + i, (SELECT max(currency_id) FROM dim_currency), i, 5.00 FROM generate_series(1, 3) i
		)
		INSERT INTO fact_sales_order (sales_order_id, created_date, created_time, last_updated_date, last_updated_time, sales_staff_id,
		  counterparty_id, units_sold, unit_price, currency_id, design_id, agreed_payment_date, agreed_delivery_date,
		  agreed_delivery_location_id, source_xmin, batch_id)
		SELECT (SELECT max(sales_order_id) FROM fact_sales_order) + row_number() OVER (), ($1 || '-10')::date, o.created_time,
		  ($1 || '-10')::date, o.last_updated_time, o.sales_staff_id, o.counterparty_id, 1, n.price, n.cur,
		  (SELECT design_id FROM dim_design ORDER BY design_id OFFSET n.design - 1 LIMIT 1), ($1 || '-20')::date, ($1 || '-20')::date,
		  o.agreed_delivery_location_id, o.source_xmin, (SELECT batch_id FROM tote.load_ledger ORDER BY seq DESC LIMIT 1)
		FROM o, n`, period); err != nil {
		t.Fatal(err)
	}
	refresh(t, b.wh)

	d := b.srv.db()
	var designs chartSpec
	for _, c := range salesCharts {
		if c.group == "design" {
			designs = c
		}
	}
	seqs := pgtest.Texts(t, b.wh, `SELECT seq::text FROM tote.load_ledger ORDER BY seq`)
	for _, month := range []string{period, empty} {
		from, _ := time.Parse("2006-01", month)
		st, _ := ParseState(url.Values{"preset": {"custom"}, "from": {from.Format(time.DateOnly)}, "to": {from.AddDate(0, 1, -1).Format(time.DateOnly)}})
		cur, err := st.resolve(ctx, d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		views := asOfViews(cur, seqs)
		want := pgtest.Texts(t, b.wh, designRanking, cur.From, cur.To, nil, designsRanked)
		bottom := 0
		for _, w := range want {
			if strings.HasPrefix(w, "bottom ") {
				bottom++
			}
		}
		if month == period && (len(want) != 23 || bottom != 10) { // 10 top and 10 bottom, and 3 top
			t.Fatalf("the facts rank %q: the test's orders are not what it means", want)
		}
		for _, f := range views {
			facts, err := tableOf(ctx, d, designs.query, designs.columns, designs.params(f, "facts").args())
			if err != nil {
				t.Fatal(err)
			}
			if f.current() {
				var rows []string
				for _, r := range facts.Rows {
					rows = append(rows, fmt.Sprintf("%v %v %v %v %v %v", r["rank"], r["design_id"], r["currency"], r["orders"], r["units"], r["revenue"]))
				}
				if !slices.Equal(rows, want) {
					t.Fatalf("%s: the facts route ranks\n%q\nthe facts\n%q", month, rows, want)
				}
			}
			// 1000: the period's orders name its designs; 1: bounds; 0
			// also for the empty period.
			for _, listed := range []int{designsListed, 1, 0} {
				p := designs.params(f, "design")
				p.Listed = listed
				got, err := tableOf(ctx, d, designs.query, designs.columns, p.args())
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got.Rows) != fmt.Sprint(facts.Rows) {
					t.Errorf("%s as of %d (%s), listed %d: the design summary ranks\n%v\nthe facts\n%v", month, f.AsOf, f.Mode, listed, got.Rows, facts.Rows)
				}
			}
		}
	}
}
