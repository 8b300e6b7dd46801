package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// options reads the filter lists, and the names of the designs s selects.
func (s *Server) options(ctx context.Context, st State) (Options, error) {
	d := s.db()
	var o Options
	named := func(r pgx.CollectableRow) (NamedID, error) {
		var n NamedID
		var id int32
		err := r.Scan(&id, &n.Name)
		n.ID = itoa(int64(id))
		return n, err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { o.Countries, err = collect(ctx, d, "countries", nil, pgx.RowTo[string]); return })
	g.Go(func() (err error) {
		o.Cities, err = collect(ctx, d, "cities", nil, func(r pgx.CollectableRow) (string, error) {
			var country, city string
			err := r.Scan(&country, &city)
			return country + " / " + city, err
		})
		return
	})
	g.Go(func() (err error) {
		o.Staff, err = collect(ctx, d, "staff", nil, func(r pgx.CollectableRow) (NamedID, error) {
			var n NamedID
			var id int32
			err := r.Scan(&id, &n.Name, &n.Note)
			n.ID = itoa(int64(id))
			return n, err
		})
		return
	})
	g.Go(func() (err error) {
		o.Departments, err = collect(ctx, d, "departments", nil, pgx.RowTo[string])
		return
	})
	g.Go(func() (err error) {
		o.Currencies, err = collect(ctx, d, "currencies", nil, func(r pgx.CollectableRow) (NamedID, error) {
			var n NamedID
			var id int32
			err := r.Scan(&id, &n.ID, &n.Name)
			return n, err
		})
		return
	})
	g.Go(func() (err error) { o.Counterparties, err = collect(ctx, d, "counterparties", nil, named); return })
	g.Go(func() (err error) {
		var sel []int32
		for _, x := range append(st.Design, xfValues(st, "design")...) {
			if n, err := strconv.ParseInt(x, 10, 32); err == nil {
				sel = append(sel, int32(n))
			}
		}
		if len(sel) == 0 {
			o.Designs = []NamedID{}
			return nil
		}
		o.Designs, err = collect(ctx, d, "designs_by_id", pgx.NamedArgs{"ids": sel}, named)
		return
	})
	return o, g.Wait()
}

func xfValues(st State, dim string) []string {
	var out []string
	for _, x := range st.XF {
		if len(x) > len(dim) && x[:len(dim)+1] == dim+":" {
			out = append(out, x[len(dim)+1:])
		}
	}
	return out
}

func (s *Server) apiBusiness(w http.ResponseWriter, r *http.Request) {
	st, err := ParseState(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	b, err := s.business(r.Context(), st)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) apiFreshness(w http.ResponseWriter, r *http.Request) {
	f, err := s.freshness(r.Context())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) apiOptions(w http.ResponseWriter, r *http.Request) {
	st, err := ParseState(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	o, err := s.options(r.Context(), st)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// Drill is one page of the fact rows behind a figure.
type Drill struct {
	Kind    string `json:"kind"`
	Total   int64  `json:"total"`
	Totals  Table  `json:"totals"` // per currency: rows and their sum
	Rows    Table  `json:"rows"`
	Page    int    `json:"page"`
	Pages   int    `json:"pages"`
	PerPage int    `json:"per_page"`
	Period  Period `json:"period"`
}

// DrillPage is the number of rows on a page of a drill-down.
const DrillPage = 50

var drillColumns = map[string][]Column{
	"sales": {{"id", "Sales order", "int"}, {"version", "Version (last_updated)", "text"}, {"batch", "Batch", "text"},
		{"record", "Fact row", "int"}, {"created", "Created", "date"}, colCurrency, {"design", "Design", "text"},
		{"staff", "Staff", "text"}, {"counterparty", "Counterparty", "text"}, {"country", "Country", "text"},
		{"city", "City", "text"}, {"units", "Units", "int"}, {"unit_price", "Unit price", "text"},
		{"value", "Value", "text"}, {"delivery", "Agreed delivery", "date"}},
	"payments": {{"id", "Payment", "int"}, {"version", "Version (last_updated)", "text"}, {"batch", "Batch", "text"},
		{"record", "Fact row", "int"}, {"payment_date", "Payment date", "date"}, colCurrency, {"type", "Type", "text"},
		{"counterparty", "Counterparty", "text"}, {"paid", "Paid", "bool"}, {"amount", "Amount", "text"},
		{"transaction", "Transaction", "int"}},
	"purchases": {{"id", "Purchase order", "int"}, {"version", "Version (last_updated)", "text"}, {"batch", "Batch", "text"},
		{"record", "Fact row", "int"}, {"created", "Created", "date"}, colCurrency, {"item", "Item code", "text"},
		{"staff", "Staff", "text"}, {"counterparty", "Counterparty", "text"}, {"quantity", "Quantity", "int"},
		{"unit_price", "Unit price", "text"}, {"value", "Value", "text"}},
}

// drillQuery is a drill-down request resolved: its kind, filter and the
// arguments of its count query (the summary that answers the figure) and
// of its rows query (the facts, as far as the summaries have them), less
// the page.
type drillQuery struct {
	kind        string
	f           filter
	count, rows func(page) pgx.NamedArgs
}

// drillOf resolves a drill-down request.
func (s *Server) drillOf(ctx context.Context, r *http.Request, d *db) (drillQuery, error) {
	q := r.URL.Query()
	dq := drillQuery{kind: q.Get("kind")}
	if dq.kind == "" {
		dq.kind = "sales"
	}
	if _, ok := drillColumns[dq.kind]; !ok {
		return dq, fmt.Errorf("kind %q: want sales, payments or purchases", dq.kind)
	}
	st, err := ParseState(q)
	if err != nil {
		return dq, err
	}
	if dq.f, err = st.resolve(ctx, d, s.now()); err != nil {
		return dq, err
	}
	f := dq.f
	switch dq.kind {
	case "payments":
		p := f.payments(f.From, f.To)
		if v := q.Get("status"); v != "" {
			switch v {
			case "paid", "unpaid", "overdue", "due":
				p.Status = &v
			default:
				return dq, fmt.Errorf("status %q: want paid, unpaid, overdue or due", v)
			}
		}
		dq.count = func(pg page) pgx.NamedArgs { q := p; q.page = pg; return q.args() }
		dq.rows = dq.count
	case "purchases":
		dq.count = func(pg page) pgx.NamedArgs { p := f.purchases(f.purchaseRoute()); p.page = pg; return p.args() }
		dq.rows = func(pg page) pgx.NamedArgs { p := f.purchases("facts"); p.page = pg; return p.args() }
	default:
		dq.count = func(pg page) pgx.NamedArgs {
			p := f.sales(f.salesRoute(""), f.From, f.To)
			p.page = pg
			return p.args()
		}
		dq.rows = func(pg page) pgx.NamedArgs { p := f.sales("facts", f.From, f.To); p.page = pg; return p.args() }
	}
	return dq, nil
}

func (s *Server) apiDrill(w http.ResponseWriter, r *http.Request) {
	d := s.db()
	dq, err := s.drillOf(r.Context(), r, d)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	pageNo := 1
	if v := r.URL.Query().Get("page"); v != "" {
		if pageNo, err = strconv.Atoi(v); err != nil || pageNo < 1 {
			s.fail(w, r, http.StatusBadRequest, errors.New("page: want a whole number from 1"))
			return
		}
	}
	countCols := []Column{colCurrency, {"rows", "Rows", "int"}}
	switch dq.kind {
	case "sales":
		countCols = append(countCols, colUnits, colRevenue)
	case "purchases":
		countCols = append(countCols, Column{"quantity", "Quantity", "int"}, Column{"value", "Value", "money"})
	default:
		countCols = append(countCols, Column{"amount", "Amount", "money"})
	}
	f := dq.f
	out := Drill{Kind: dq.kind, Page: pageNo, PerPage: DrillPage, Period: Period{From: f.From, To: f.To, Today: f.Today, Seq: f.AsOf}}
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() (err error) {
		out.Totals, err = tableOf(ctx, d, "drill_"+singular(dq.kind)+"_count", countCols, dq.count(page{}))
		return
	})
	g.Go(func() (err error) {
		out.Rows, err = tableOf(ctx, d, "drill_"+singular(dq.kind)+"_rows", drillColumns[dq.kind],
			dq.rows(page{Limit: DrillPage, Offset: (pageNo - 1) * DrillPage}))
		return
	})
	if err := g.Wait(); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	for _, row := range out.Totals.Rows {
		out.Total += row["rows"].(int64)
	}
	out.Pages = int((out.Total + DrillPage - 1) / DrillPage)
	writeJSON(w, http.StatusOK, out)
}

func singular(kind string) string {
	switch kind {
	case "payments":
		return "payment"
	case "purchases":
		return "purchase"
	}
	return "sales"
}

// maxCSVRows bounds a drill-down's CSV.
const maxCSVRows = 1_000_000

func (s *Server) apiDrillCSV(w http.ResponseWriter, r *http.Request) {
	d := s.db()
	dq, err := s.drillOf(r.Context(), r, d)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	t, err := tableOf(r.Context(), d, "drill_"+singular(dq.kind)+"_rows", drillColumns[dq.kind], dq.rows(page{Limit: maxCSVRows}))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tote-%s-%s.csv"`, dq.kind, s.now().UTC().Format("20060102T150405Z")))
	writeCSV(w, t)
}

// writeCSV writes a table as CSV with a header row of its column labels.
func writeCSV(w http.ResponseWriter, t Table) {
	cw := csv.NewWriter(w)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Label
	}
	_ = cw.Write(head)
	rec := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, c := range t.Columns {
			if v := row[c.Key]; v == nil {
				rec[i] = ""
			} else {
				rec[i] = fmt.Sprint(v)
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
}

// historyColumns are the columns of an order's version history.
var historyColumns = []Column{{"record", "Fact row", "int"}, {"change", "Change", "text"}, {"version", "Version (last_updated)", "text"},
	{"batch", "Batch", "text"}, {"loaded_at", "Loaded", "text"}, {"created", "Created", "text"}, colCurrency,
	{"design", "Design", "text"}, {"staff", "Staff", "text"}, {"counterparty", "Counterparty", "text"},
	{"country", "Country", "text"}, {"city", "City", "text"}, {"units", "Units", "int"},
	{"unit_price", "Unit price", "text"}, {"delivery", "Agreed delivery", "date"}, {"payment", "Agreed payment", "date"},
	{"xmin", "Source xmin", "int"}}

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("order"), 10, 32)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, errors.New("order: want a sales order id"))
		return
	}
	t, err := tableOf(r.Context(), s.db(), "order_history", historyColumns, pgx.NamedArgs{"order": int32(id)})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": id, "versions": t})
}

func (s *Server) apiDesigns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" {
		writeJSON(w, http.StatusOK, []NamedID{})
		return
	}
	out, err := collect(r.Context(), s.db(), "design_search", pgx.NamedArgs{"q": q}, func(r pgx.CollectableRow) (NamedID, error) {
		var n NamedID
		var id int32
		err := r.Scan(&id, &n.Name)
		n.ID = itoa(int64(id))
		return n, err
	})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// events streams a server-sent event to the page whenever a batch is
// loaded ("loaded", with the batch id), and when the dashboard's
// connection to the warehouse came back ("resync": loads may have been
// missed).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ch, cancel := s.hub.subscribe()
	defer cancel()
	if _, err := fmt.Fprint(w, "retry: 2000\n: hello\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		case ev := <-ch:
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.kind, ev.data); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
