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

// Table is a chart's data, as the table beside it and its CSV show it.
type Table struct {
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"rows"`
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
}

// LeadLabels name the lead-time buckets of tote.lead_bucket.
var LeadLabels = []string{"same day", "1–7 days", "8–30 days", "31–90 days", "91–180 days", "181–365 days", "over a year"}

var (
	colCurrency = Column{"currency", "Currency", "text"}
	colOrders   = Column{"orders", "Orders", "int"}
	colUnits    = Column{"units", "Units", "int"}
	colRevenue  = Column{"revenue", "Revenue", "money"}
	salesCols   = []Column{colCurrency, colOrders, colUnits, colRevenue}
)

// chartSpec is one chart of the business view: the query that answers it
// and the columns it returns.
type chartSpec struct {
	name, query string
	group       string // what it groups by, for the route
	columns     []Column
	extra       func(f filter) []any // parameters after the sales parameters
}

func grainArg(f filter) []any { return []any{f.Grain} }

var salesCharts = []chartSpec{
	{"series", "sales_series", "", append([]Column{{"period", "Period", "date"}}, salesCols...), grainArg},
	{"countries", "sales_by_country", "location", append([]Column{{"country", "Country", "text"}}, salesCols...), nil},
	{"cities", "sales_by_city", "location", append([]Column{{"city", "City", "text"}}, salesCols...), nil},
	{"designs", "sales_by_design", "design", append([]Column{{"rank", "Rank", "text"}, {"design_id", "Design id", "int"},
		{"design", "Design", "text"}}, salesCols...), func(filter) []any { return []any{10} }},
	{"counterparties", "sales_by_counterparty", "counterparty", append([]Column{{"cp", "Counterparty id", "int"},
		{"counterparty", "Counterparty", "text"}}, salesCols...), nil},
	{"staff", "sales_by_staff", "staff", append([]Column{{"staff", "Staff id", "int"}, {"name", "Staff", "text"}}, salesCols...), nil},
	{"departments", "sales_by_department", "staff", append([]Column{{"dept", "Department", "text"}}, salesCols...), nil},
	{"lead_time", "sales_lead_time", "lead", append([]Column{{"lead", "Lead time bucket", "int"}}, salesCols...), nil},
}

// business runs every query of the business view for state s, at once.
func (srv *Server) business(ctx context.Context, s State) (Business, error) {
	var mu sync.Mutex
	b := Business{State: s, Charts: map[string]Table{}, Timings: map[string]float64{}}
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
		First: f.First, Last: f.Last, Today: f.Today}
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
			args := f.salesArgs(route, f.From, f.To)
			if c.extra != nil {
				args = append(args, c.extra(f)...)
			}
			t, err := tableOf(gctx, d, c.query, c.columns, args...)
			if err != nil {
				return err
			}
			t.Source = route
			if c.name == "lead_time" {
				for _, r := range t.Rows {
					if n, ok := r[0].(int64); ok && n >= 0 && int(n) < len(LeadLabels) {
						r[0] = LeadLabels[n]
					}
				}
				t.Columns = append([]Column{{"lead", "Lead time", "text"}}, t.Columns[1:]...)
			}
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
			{"oldest", "Oldest payment date", "date"}}, append(f.paymentArgs(f.From, f.To), f.Today)...)
		if err != nil {
			return err
		}
		put("payments", t)
		return nil
	})
	g.Go(func() error {
		t, err := tableOf(gctx, d, "payment_series", []Column{{"period", "Period", "date"}, colCurrency,
			{"paid", "Paid", "bool"}, {"payments", "Payments", "int"}, {"amount", "Amount", "money"}},
			append(f.paymentArgs(f.From, f.To), f.Grain)...)
		if err != nil {
			return err
		}
		put("payment_series", t)
		return nil
	})
	g.Go(func() error {
		t, err := tableOf(gctx, d, "purchase_series", []Column{{"period", "Period", "date"}, colCurrency,
			{"orders", "Purchase orders", "int"}, {"quantity", "Quantity", "int"}, {"value", "Purchases", "money"}},
			append(f.purchaseArgs(f.purchaseRoute()), f.Grain)...)
		if err != nil {
			return err
		}
		put("purchases", t)
		return nil
	})
	if err := g.Wait(); err != nil {
		return b, err
	}
	b.KPIs = mergeKPIs(kpis, pkpis)
	b.Charts["currency_mix"] = currencyMix(b.KPIs)
	b.Charts["purchases_vs_sales"] = purchasesVsSales(b.Charts["series"], b.Charts["purchases"])
	return b, nil
}

// tableOf runs a query whose columns are cols, in order.
func tableOf(ctx context.Context, d *db, name string, cols []Column, args ...any) (Table, error) {
	rows, err := collect(ctx, d, name, func(r pgx.CollectableRow) ([]any, error) {
		dest := make([]any, len(cols))
		for i, c := range cols {
			switch c.Kind {
			case "int", "money":
				dest[i] = new(*int64)
			case "bool":
				dest[i] = new(*bool)
			default:
				dest[i] = new(*string)
			}
		}
		if err := r.Scan(dest...); err != nil {
			return nil, err
		}
		out := make([]any, len(cols))
		for i, c := range cols {
			switch p := dest[i].(type) {
			case **int64:
				if *p == nil {
					continue
				}
				if c.Kind == "money" {
					out[i] = money(**p)
				} else {
					out[i] = **p
				}
			case **bool:
				if *p != nil {
					out[i] = **p
				}
			case **string:
				if *p != nil {
					out[i] = **p
				}
			}
		}
		return out, nil
	}, args...)
	if err != nil {
		return Table{}, err
	}
	return Table{Columns: cols, Rows: rows}, nil
}

func salesKPIsOf(ctx context.Context, d *db, f filter) ([]KPI, error) {
	args := append(f.salesArgs(f.salesRoute(""), f.PrevFrom, f.To), f.From)
	return collect(ctx, d, "sales_kpis", func(r pgx.CollectableRow) (KPI, error) {
		var k KPI
		var v, pv int64
		if err := r.Scan(&k.Currency, &k.Orders, &k.Units, &v, &k.PrevOrders, &k.PrevUnits, &pv); err != nil {
			return k, err
		}
		k.Revenue, k.PrevRevenue = money(v), money(pv)
		k.AOV, k.PrevAOV = average(v, k.Orders), average(pv, k.PrevOrders)
		return k, nil
	}, args...)
}

func paymentKPIsOf(ctx context.Context, d *db, f filter) ([]KPI, error) {
	args := append(f.paymentArgs(f.PrevFrom, f.To), f.Today, f.From)
	return collect(ctx, d, "payment_kpis", func(r pgx.CollectableRow) (KPI, error) {
		var k KPI
		var a, pa int64
		var oldest *string
		if err := r.Scan(&k.Currency, &k.Overdue, &a, &k.PrevOverdue, &pa, &oldest); err != nil {
			return k, err
		}
		k.OverdueAmount, k.PrevOverdueAmt = money(a), money(pa)
		if oldest != nil {
			k.OldestOverdue = *oldest
		}
		return k, nil
	}, args...)
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
	t := Table{Columns: []Column{colCurrency, colOrders, colRevenue}, Rows: [][]any{}}
	for _, k := range kpis {
		if k.Orders > 0 {
			t.Rows = append(t.Rows, []any{k.Currency, k.Orders, k.Revenue})
		}
	}
	return t
}

// purchasesVsSales sets each period's purchases beside its sales, per currency.
func purchasesVsSales(sales, purchases Table) Table {
	t := Table{Columns: []Column{{"period", "Period", "date"}, colCurrency, {"sales", "Sales", "money"},
		{"purchases", "Purchases", "money"}}, Rows: [][]any{}}
	type key struct{ period, cur string }
	at := map[key]int{}
	row := func(p, c any) []any {
		k := key{fmt.Sprint(p), fmt.Sprint(c)}
		i, ok := at[k]
		if !ok {
			i = len(t.Rows)
			at[k] = i
			t.Rows = append(t.Rows, []any{p, c, "0.00", "0.00"})
		}
		return t.Rows[i]
	}
	for _, r := range sales.Rows {
		row(r[0], r[1])[2] = r[4]
	}
	for _, r := range purchases.Rows {
		row(r[0], r[1])[3] = r[4]
	}
	sortRows(t.Rows)
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

func sortRows(rows [][]any) {
	slices.SortStableFunc(rows, func(a, b []any) int {
		if c := strings.Compare(fmt.Sprint(a[0]), fmt.Sprint(b[0])); c != 0 {
			return c
		}
		return strings.Compare(fmt.Sprint(a[1]), fmt.Sprint(b[1]))
	})
}

// itoa is strconv.FormatInt for an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
