package web

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// Column describes one column of a Table. Kind is text, int, money (a
// decimal string, exact), date or bool.
type Column struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Kind  string `json:"kind"`
}

// Row is one row of a Table, by column key. A row may carry fields that
// no column shows (a lead-time bucket's index, say).
type Row map[string]any

// Table is a chart's data, as the table beside it and its CSV show it:
// Columns in order, each row's values by column key.
type Table struct {
	Columns []Column `json:"columns"`
	Rows    []Row    `json:"rows"`
	// Source says which summary answered (route), for the curious.
	Source string `json:"source,omitempty"`
}

// KPI is one currency's headline figures for the period and the period
// before it. Money is a decimal string.
type KPI struct {
	Currency       string `json:"currency"`
	Revenue        string `json:"revenue"`
	PrevRevenue    string `json:"prev_revenue"`
	Orders         int64  `json:"orders"`
	PrevOrders     int64  `json:"prev_orders"`
	Units          int64  `json:"units"`
	PrevUnits      int64  `json:"prev_units"`
	AOV            string `json:"aov"`
	PrevAOV        string `json:"prev_aov"`
	Overdue        int64  `json:"overdue"`
	PrevOverdue    int64  `json:"prev_overdue"`
	OverdueAmount  string `json:"overdue_amount"`
	PrevOverdueAmt string `json:"prev_overdue_amount"`
	OldestOverdue  string `json:"oldest_overdue,omitempty"`
}

// Period is the resolved date range of a business view.
type Period struct {
	From     string `json:"from"`
	To       string `json:"to"`
	PrevFrom string `json:"prev_from"`
	PrevTo   string `json:"prev_to"`
	Grain    string `json:"grain"`
	First    string `json:"first"` // the first and last day with a sale
	Last     string `json:"last"`
	Today    string `json:"today"` // overdue means unpaid and due before this day
	// Seq is the batch the figures reflect: the summaries' watermark, or
	// the batch the view is as of.
	Seq      int64  `json:"seq"`
	AsOf     int64  `json:"as_of"` // the batch the view is as of; 0 for current
	AsOfTime string `json:"as_of_time,omitempty"`
}

// Business is the business view's data: KPI cards and every chart.
type Business struct {
	State   State              `json:"state"`
	Period  Period             `json:"period"`
	KPIs    []KPI              `json:"kpis"`
	Charts  map[string]Table   `json:"charts"`
	Timings map[string]float64 `json:"timings_ms"`
	// LeadBuckets name the lead-time buckets, by index (the lead_time
	// chart's rows have the index as bucket, the cross-filter lead:N).
	LeadBuckets []LeadBucket `json:"lead_buckets"`
}

var (
	colCurrency = Column{"currency", "Currency", "text"}
	colOrders   = Column{"orders", "Orders", "int"}
	colUnits    = Column{"units", "Units", "int"}
	colRevenue  = Column{"revenue", "Revenue", "money"}
	salesCols   = []Column{colCurrency, colOrders, colUnits, colRevenue}
)

// chartSpec is one sales chart of the business view: the query that
// answers it and the columns it returns.
type chartSpec struct {
	name, query string
	group       string // what it groups by, for the route
	columns     []Column
}

// designsRanked is how many designs the designs chart ranks at each end.
const designsRanked = 10

// designsListed is how many of a period's orders the design rankings read
// from the facts (by day) to name the designs that sold in it: when it has
// fewer, they rank those designs alone (a few hundred index entries and
// summary rows, where bounds would read most designs: a bound from a
// sparse period's few designs keeps nearly every design's all-time
// revenue above it).
const designsListed = 1000

var salesCharts = []chartSpec{
	{"series", "sales_series", "", append([]Column{{"period", "Period", "date"}}, salesCols...)},
	{"countries", "sales_by_country", "location", append([]Column{{"country", "Country", "text"}}, salesCols...)},
	{"cities", "sales_by_city", "location", append([]Column{{"city", "City", "text"}}, salesCols...)},
	{"designs", "sales_by_design", "design", append([]Column{{"rank", "Rank", "text"}, {"design_id", "Design id", "int"},
		{"design", "Design", "text"}}, salesCols...)},
	{"counterparties", "sales_by_counterparty", "counterparty", append([]Column{{"cp", "Counterparty id", "int"},
		{"counterparty", "Counterparty", "text"}}, salesCols...)},
	{"staff", "sales_by_staff", "staff", append([]Column{{"staff", "Staff id", "int"}, {"name", "Staff", "text"}}, salesCols...)},
	{"departments", "sales_by_department", "staff", append([]Column{{"dept", "Department", "text"}}, salesCols...)},
	{"lead_time", "sales_lead_time", "lead", append([]Column{{"lead", "Lead time", "text"}}, salesCols...)},
}

// salesParams are chart c's parameters under filter f, through route.
func (c chartSpec) params(f filter, route string) salesParams {
	p := f.sales(route, f.From, f.To)
	p.N, p.Listed = designsRanked, designsListed
	return p
}

// business runs every query of the business view for state s, at once.
func (srv *Server) business(ctx context.Context, s State) (Business, error) {
	var mu sync.Mutex
	b := Business{State: s, Charts: map[string]Table{}, Timings: map[string]float64{}, LeadBuckets: LeadBuckets}
	d := &db{pool: srv.pool, observe: func(name string, t time.Duration) {
		mu.Lock()
		b.Timings[name] += float64(t.Microseconds()) / 1000
		mu.Unlock()
		srv.observe(name, t)
	}}
	f, err := s.resolve(ctx, d, srv.now())
	if err != nil {
		return b, err
	}
	b.Period = Period{From: f.From, To: f.To, PrevFrom: f.PrevFrom, PrevTo: f.PrevTo, Grain: f.Grain,
		First: f.First, Last: f.Last, Today: f.Today, Seq: f.AsOf}
	if !f.current() {
		b.Period.AsOf, b.Period.AsOfTime = f.AsOf, f.AsOfTime.Format(time.RFC3339)
	}

	g, gctx := errgroup.WithContext(ctx)
	put := func(name string, t Table) {
		mu.Lock()
		b.Charts[name] = t
		mu.Unlock()
	}
	for _, c := range salesCharts {
		g.Go(func() error {
			route := f.salesRoute(c.group)
			cf := f
			if route == "design" && f.Mode == modeUpTo {
				// The design rankings read only the designs that can rank
				// the 'after' way; 'upto' adds up every design's log up to
				// the batch (2 s at scale 100 as of the first load, all
				// time, against 50-90 ms).
				cf.Mode = modeAfter
			}
			t, err := tableOf(gctx, d, c.query, c.columns, c.params(cf, route).args())
			if err != nil {
				return err
			}
			t.Source = route
			put(c.name, t)
			return nil
		})
	}
	var kpis, pkpis []KPI
	g.Go(func() error {
		var err error
		kpis, err = salesKPIsOf(gctx, d, f)
		return err
	})
	g.Go(func() error {
		var err error
		pkpis, err = paymentKPIsOf(gctx, d, f)
		return err
	})
	g.Go(func() error {
		t, err := tableOf(gctx, d, "payment_status", []Column{colCurrency, {"type", "Payment type", "text"},
			{"status", "Status", "text"}, {"payments", "Payments", "int"}, {"amount", "Amount", "money"},
			{"oldest", "Oldest payment date", "date"}}, f.payments(f.From, f.To).args())
		if err != nil {
			return err
		}
		put("payments", t)
		return nil
	})
	g.Go(func() error {
		t, err := tableOf(gctx, d, "payment_series", []Column{{"period", "Period", "date"}, colCurrency,
			{"paid", "Paid", "bool"}, {"payments", "Payments", "int"}, {"amount", "Amount", "money"}},
			f.payments(f.From, f.To).args())
		if err != nil {
			return err
		}
		put("payment_series", t)
		return nil
	})
	g.Go(func() error {
		t, err := tableOf(gctx, d, "purchase_series", []Column{{"period", "Period", "date"}, colCurrency,
			{"orders", "Purchase orders", "int"}, {"quantity", "Quantity", "int"}, {"value", "Purchases", "money"}},
			f.purchases(f.purchaseRoute()).args())
		if err != nil {
			return err
		}
		put("purchases", t)
		return nil
	})
	if err := g.Wait(); err != nil {
		return b, err
	}
	labelLeadTimes(b.Charts["lead_time"])
	b.KPIs = mergeKPIs(kpis, pkpis)
	b.Charts["currency_mix"] = currencyMix(b.KPIs)
	b.Charts["purchases_vs_sales"] = purchasesVsSales(b.Charts["series"], b.Charts["purchases"])
	return b, nil
}

// labelLeadTimes names each row's lead-time bucket (its index, bucket).
func labelLeadTimes(t Table) {
	for _, r := range t.Rows {
		if n, ok := r["bucket"].(int64); ok && n >= 0 && int(n) < len(LeadBuckets) {
			r["lead"] = LeadBuckets[n].Label
		}
	}
}

// tableOf runs a query whose result has a column named as each of cols'
// keys (and maybe more, kept as they are): money comes as cents and
// leaves as a decimal string, integers as int64.
func tableOf(ctx context.Context, d *db, name string, cols []Column, args pgx.NamedArgs) (Table, error) {
	kinds := map[string]string{}
	for _, c := range cols {
		kinds[c.Key] = c.Kind
	}
	rows, err := collect(ctx, d, name, args, func(r pgx.CollectableRow) (Row, error) {
		vals, err := r.Values()
		if err != nil {
			return nil, err
		}
		row := Row{}
		for i, fd := range r.FieldDescriptions() {
			v := vals[i]
			switch n := v.(type) {
			case int16:
				v = int64(n)
			case int32:
				v = int64(n)
			}
			if n, ok := v.(int64); ok && kinds[fd.Name] == "money" {
				v = money(n)
			}
			row[fd.Name] = v
		}
		for _, c := range cols {
			if _, ok := row[c.Key]; !ok && c.Key != "lead" {
				return nil, fmt.Errorf("no column %s in its result", c.Key)
			}
		}
		return row, nil
	})
	if err != nil {
		return Table{}, err
	}
	return Table{Columns: cols, Rows: rows}, nil
}

// salesKPIRow is a row of sales_kpis.
type salesKPIRow struct {
	Currency   string `db:"currency"`
	Orders     int64  `db:"orders"`
	Units      int64  `db:"units"`
	Value      int64  `db:"value"`
	PrevOrders int64  `db:"prev_orders"`
	PrevUnits  int64  `db:"prev_units"`
	PrevValue  int64  `db:"prev_value"`
}

// paymentKPIRow is a row of payment_kpis.
type paymentKPIRow struct {
	Currency          string  `db:"currency"`
	Overdue           int64   `db:"overdue"`
	OverdueAmount     int64   `db:"overdue_amount"`
	PrevOverdue       int64   `db:"prev_overdue"`
	PrevOverdueAmount int64   `db:"prev_overdue_amount"`
	OldestOverdue     *string `db:"oldest_overdue"`
}

func salesKPIsOf(ctx context.Context, d *db, f filter) ([]KPI, error) {
	p := f.sales(f.salesRoute(""), f.PrevFrom, f.To)
	p.Since = f.From
	return collect(ctx, d, "sales_kpis", p.args(), func(r pgx.CollectableRow) (KPI, error) {
		v, err := pgx.RowToStructByName[salesKPIRow](r)
		k := KPI{Currency: v.Currency, Orders: v.Orders, Units: v.Units, PrevOrders: v.PrevOrders, PrevUnits: v.PrevUnits,
			Revenue: money(v.Value), PrevRevenue: money(v.PrevValue),
			AOV: average(v.Value, v.Orders), PrevAOV: average(v.PrevValue, v.PrevOrders)}
		return k, err
	})
}

func paymentKPIsOf(ctx context.Context, d *db, f filter) ([]KPI, error) {
	p := f.payments(f.PrevFrom, f.To)
	p.Since = f.From
	return collect(ctx, d, "payment_kpis", p.args(), func(r pgx.CollectableRow) (KPI, error) {
		v, err := pgx.RowToStructByName[paymentKPIRow](r)
		k := KPI{Currency: v.Currency, Overdue: v.Overdue, PrevOverdue: v.PrevOverdue,
			OverdueAmount: money(v.OverdueAmount), PrevOverdueAmt: money(v.PrevOverdueAmount)}
		if v.OldestOverdue != nil {
			k.OldestOverdue = *v.OldestOverdue
		}
		return k, err
	})
}

// mergeKPIs puts each currency's payment figures on its sales card.
func mergeKPIs(sales, payments []KPI) []KPI {
	out := sales
	for _, p := range payments {
		i := -1
		for j := range out {
			if out[j].Currency == p.Currency {
				i = j
			}
		}
		if i < 0 {
			if p.Overdue == 0 && p.PrevOverdue == 0 {
				continue
			}
			out = append(out, KPI{Currency: p.Currency, Revenue: "0.00", PrevRevenue: "0.00", AOV: "", PrevAOV: ""})
			i = len(out) - 1
		}
		out[i].Overdue, out[i].PrevOverdue = p.Overdue, p.PrevOverdue
		out[i].OverdueAmount, out[i].PrevOverdueAmt, out[i].OldestOverdue = p.OverdueAmount, p.PrevOverdueAmt, p.OldestOverdue
	}
	for i := range out {
		if out[i].OverdueAmount == "" {
			out[i].OverdueAmount, out[i].PrevOverdueAmt = "0.00", "0.00"
		}
	}
	return out
}

func currencyMix(kpis []KPI) Table {
	t := Table{Columns: []Column{colCurrency, colOrders, colRevenue}, Rows: []Row{}}
	for _, k := range kpis {
		if k.Orders > 0 {
			t.Rows = append(t.Rows, Row{"currency": k.Currency, "orders": k.Orders, "revenue": k.Revenue})
		}
	}
	return t
}

// purchasesVsSales sets each period's purchases beside its sales, per currency.
func purchasesVsSales(sales, purchases Table) Table {
	t := Table{Columns: []Column{{"period", "Period", "date"}, colCurrency, {"sales", "Sales", "money"},
		{"purchases", "Purchases", "money"}}, Rows: []Row{}}
	type key struct{ period, cur string }
	at := map[key]Row{}
	row := func(r Row) Row {
		k := key{fmt.Sprint(r["period"]), fmt.Sprint(r["currency"])}
		out, ok := at[k]
		if !ok {
			out = Row{"period": r["period"], "currency": r["currency"], "sales": "0.00", "purchases": "0.00"}
			at[k] = out
			t.Rows = append(t.Rows, out)
		}
		return out
	}
	for _, r := range sales.Rows {
		row(r)["sales"] = r["revenue"]
	}
	for _, r := range purchases.Rows {
		row(r)["purchases"] = r["value"]
	}
	slices.SortStableFunc(t.Rows, func(a, b Row) int {
		if c := strings.Compare(fmt.Sprint(a["period"]), fmt.Sprint(b["period"])); c != 0 {
			return c
		}
		return strings.Compare(fmt.Sprint(a["currency"]), fmt.Sprint(b["currency"]))
	})
	return t
}

// money formats cents as a decimal string with two places.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// average is cents/n rounded half away from zero, as PostgreSQL's round
// does; empty when n is 0.
func average(cents, n int64) string {
	if n == 0 {
		return ""
	}
	neg := cents < 0
	if neg {
		cents = -cents
	}
	q := (2*cents + n) / (2 * n)
	if neg {
		q = -q
	}
	return money(q)
}

// itoa is strconv.FormatInt for an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
