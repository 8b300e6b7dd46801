package web

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// State is what a page shows, all of it in the URL's query, so that a
// reload or a pasted link shows the same page:
//
//	preset=7d|30d|90d|ytd|12m|all|custom  from=, to= (YYYY-MM-DD, custom)
//	grain=day|week|month|quarter          asof= (a past time, RFC 3339 or YYYY-MM-DDTHH:MM in UTC)
//	country=, city= ("Country / City"), design= (id), staff= (id), dept=,
//	cur= (code), cp= (counterparty id): filters, each repeated for several
//	xf=DIM:VALUE: cross-filters from clicks on charts, DIM one of the
//	filters' names or period (FROM..TO) or lead (0-6)
type State struct {
	Preset string `json:"preset"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Grain  string `json:"grain,omitempty"`
	AsOf   string `json:"asof,omitempty"`

	Country []string `json:"country,omitempty"`
	City    []string `json:"city,omitempty"`
	Design  []string `json:"design,omitempty"`
	Staff   []string `json:"staff,omitempty"`
	Dept    []string `json:"dept,omitempty"`
	Cur     []string `json:"cur,omitempty"`
	CP      []string `json:"cp,omitempty"`
	XF      []string `json:"xf,omitempty"`
}

// Presets are the date ranges offered, counted back from the newest day
// with a sale (not from today: a quiet or seeded warehouse still shows its
// latest period).
var Presets = []struct{ Value, Label string }{
	{"7d", "Last 7 days"}, {"30d", "Last 30 days"}, {"90d", "Last 90 days"}, {"ytd", "Year to date"},
	{"12m", "Last 12 months"}, {"all", "All time"}, {"custom", "Custom range"},
}

// Grains are the periods sales over time can be shown by.
var Grains = []string{"day", "week", "month", "quarter"}

// xfDims are the dimensions a cross-filter may name.
var xfDims = []string{"country", "city", "design", "staff", "dept", "cur", "cp", "period", "lead"}

// ParseState reads a State from a URL query, rejecting values that cannot
// be right (a malformed date, an unknown preset).
func ParseState(q url.Values) (State, error) {
	s := State{
		Preset: q.Get("preset"), From: q.Get("from"), To: q.Get("to"), Grain: q.Get("grain"), AsOf: q.Get("asof"),
		Country: nonEmpty(q["country"]), City: nonEmpty(q["city"]), Design: nonEmpty(q["design"]),
		Staff: nonEmpty(q["staff"]), Dept: nonEmpty(q["dept"]), Cur: nonEmpty(q["cur"]), CP: nonEmpty(q["cp"]),
		XF: nonEmpty(q["xf"]),
	}
	if s.Preset == "" {
		s.Preset = "12m"
		if s.From != "" || s.To != "" {
			s.Preset = "custom"
		}
	}
	if !slices.ContainsFunc(Presets, func(p struct{ Value, Label string }) bool { return p.Value == s.Preset }) {
		return s, fmt.Errorf("preset %q: want one of 7d, 30d, 90d, ytd, 12m, all, custom", s.Preset)
	}
	for _, d := range []struct{ name, v string }{{"from", s.From}, {"to", s.To}} {
		if d.v != "" {
			if _, err := time.Parse(time.DateOnly, d.v); err != nil {
				return s, fmt.Errorf("%s %q: want a date YYYY-MM-DD", d.name, d.v)
			}
		}
	}
	if s.Grain != "" && !slices.Contains(Grains, s.Grain) {
		return s, fmt.Errorf("grain %q: want day, week, month or quarter", s.Grain)
	}
	if s.AsOf != "" {
		if _, err := parseAsOf(s.AsOf); err != nil {
			return s, err
		}
	}
	for _, list := range []struct {
		name string
		v    []string
	}{{"design", s.Design}, {"staff", s.Staff}, {"cp", s.CP}} {
		for _, v := range list.v {
			if _, err := strconv.ParseInt(v, 10, 32); err != nil {
				return s, fmt.Errorf("%s %q: want an id", list.name, v)
			}
		}
	}
	for _, x := range s.XF {
		dim, v, ok := strings.Cut(x, ":")
		if !ok || !slices.Contains(xfDims, dim) || v == "" {
			return s, fmt.Errorf("xf %q: want DIM:VALUE with DIM one of %s", x, strings.Join(xfDims, ", "))
		}
		switch dim {
		case "design", "staff", "cp", "lead":
			if _, err := strconv.ParseInt(v, 10, 16+16*btoi(dim != "lead")); err != nil {
				return s, fmt.Errorf("xf %q: want a number", x)
			}
		case "period":
			a, b, ok := strings.Cut(v, "..")
			_, e1 := time.Parse(time.DateOnly, a)
			_, e2 := time.Parse(time.DateOnly, b)
			if !ok || e1 != nil || e2 != nil {
				return s, fmt.Errorf("xf %q: want period:YYYY-MM-DD..YYYY-MM-DD", x)
			}
		}
	}
	return s, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonEmpty(v []string) []string {
	var out []string
	for _, s := range v {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func parseAsOf(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("asof %q: want a time, e.g. 2024-11-15T12:00 (UTC) or RFC 3339", s)
}

// Query returns the state as a URL query: ParseState(s.Query()) is s.
func (s State) Query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("preset", s.Preset)
	set("from", s.From)
	set("to", s.To)
	set("grain", s.Grain)
	set("asof", s.AsOf)
	for k, v := range map[string][]string{"country": s.Country, "city": s.City, "design": s.Design, "staff": s.Staff,
		"dept": s.Dept, "cur": s.Cur, "cp": s.CP, "xf": s.XF} {
		if len(v) > 0 {
			q[k] = v
		}
	}
	return q
}

// With returns a copy of s with cross-filters xf added.
func (s State) With(xf ...string) State {
	s.XF = append(slices.Clone(s.XF), xf...)
	return s
}

// Modes of reading a fact's summaries (summaries.sql): the current ones,
// or as of a past batch N either the log up to N or the current summaries
// less the log after N. The two as-of modes give the same figures; which
// one reads fewer rows depends on where N is.
const (
	modeCurrent = "current"
	modeUpTo    = "upto"
	modeAfter   = "after"
)

// filter is a State resolved into the ids and days the queries take.
type filter struct {
	From, To         string // the period, YYYY-MM-DD
	PrevFrom, PrevTo string // the period of the same length before it
	Grain            string
	First, Last      string // the first and last day with a sale
	Today            string // the day payments are overdue from: today, or the as-of day
	// Seq is the batch the summaries reflect (their watermark); AsOf the
	// batch the view is as of (Seq when current), read in Mode.
	Seq, AsOf int64
	AsOfTime  time.Time
	Mode      string
	// Rec is each fact's rows the summaries have, by fact name: the facts
	// are read as far as the summaries are.
	Rec map[string]int64

	// Ids to keep; nil keeps all, an empty slice none.
	Cur, Loc, Staff, CP, Design []int32
	Lead                        *int16
	Empty                       bool // the period is empty (a cross-filter outside it)
}

// current reports whether the filter shows the current state.
func (f filter) current() bool { return f.Mode == modeCurrent }

// resolve turns s into a filter: names to ids, presets to days.
func (s State) resolve(ctx context.Context, d *db, now time.Time) (filter, error) {
	f := filter{Today: now.UTC().Format(time.DateOnly), Mode: modeCurrent}
	var at *time.Time
	if s.AsOf != "" {
		t, _ := parseAsOf(s.AsOf)
		f.AsOfTime, at = t, &t
	}
	rows, err := d.query(ctx, "summary_state", pgx.NamedArgs{"at": at})
	if err != nil {
		return f, err
	}
	var asOf int64
	if _, err := pgx.ForEachRow(rows, []any{&f.Seq, &asOf, &f.Rec}, func() error { return nil }); err != nil {
		return f, fmt.Errorf("query summary_state: %w", err)
	}
	f.AsOf = f.Seq
	if at != nil {
		// As of a batch the summaries have: the watermark at the latest.
		if asOf < f.Seq {
			f.AsOf, f.Mode = asOf, asOfMode(asOf, f.Seq)
		}
		f.Today = at.Format(time.DateOnly)
	}
	bounds, err := collect(ctx, d, "data_bounds", nil, func(r pgx.CollectableRow) ([2]string, error) {
		var b [2]string
		return b, r.Scan(&b[0], &b[1])
	})
	if err != nil {
		return f, err
	}
	f.First, f.Last = bounds[0][0], bounds[0][1]
	if f.Last == "" {
		f.First, f.Last = f.Today, f.Today
	}
	last, _ := time.Parse(time.DateOnly, f.Last)
	first, _ := time.Parse(time.DateOnly, f.First)
	var from, to time.Time
	to = last
	switch s.Preset {
	case "7d":
		from = last.AddDate(0, 0, -6)
	case "30d":
		from = last.AddDate(0, 0, -29)
	case "90d":
		from = last.AddDate(0, 0, -89)
	case "ytd":
		from = time.Date(last.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case "12m":
		from = last.AddDate(-1, 0, 1)
	case "all":
		from = first
	case "custom":
		from, to = first, last
		if s.From != "" {
			from, _ = time.Parse(time.DateOnly, s.From)
		}
		if s.To != "" {
			to, _ = time.Parse(time.DateOnly, s.To)
		}
	}
	if to.Before(from) {
		from, to = to, from
	}
	// The previous period, for the change on the KPI cards: as long, just before.
	days := int(to.Sub(from).Hours()/24) + 1
	prevTo := from.AddDate(0, 0, -1)
	prevFrom := prevTo.AddDate(0, 0, -(days - 1))
	if s.Preset == "ytd" {
		prevFrom, prevTo = from.AddDate(-1, 0, 0), to.AddDate(-1, 0, 0)
	}
	f.Grain = s.Grain
	if f.Grain == "" {
		f.Grain = autoGrain(days)
	}

	var countries, cities, depts, curs []string
	countries, cities, depts, curs = s.Country, s.City, s.Dept, s.Cur
	design, staff, cp := ids(s.Design), ids(s.Staff), ids(s.CP)
	for _, x := range s.XF {
		dim, v, _ := strings.Cut(x, ":")
		switch dim {
		case "country":
			countries = intersect(countries, []string{v})
		case "city":
			cities = intersect(cities, []string{v})
		case "dept":
			depts = intersect(depts, []string{v})
		case "cur":
			curs = intersect(curs, []string{v})
		case "design":
			design = intersectIDs(design, ids([]string{v}))
		case "staff":
			staff = intersectIDs(staff, ids([]string{v}))
		case "cp":
			cp = intersectIDs(cp, ids([]string{v}))
		case "lead":
			n, _ := strconv.ParseInt(v, 10, 16)
			l := int16(n)
			if f.Lead != nil && *f.Lead != l {
				f.Empty = true
			}
			f.Lead = &l
		case "period":
			a, b, _ := strings.Cut(v, "..")
			pa, _ := time.Parse(time.DateOnly, a)
			pb, _ := time.Parse(time.DateOnly, b)
			if pa.After(from) {
				from = pa
			}
			if pb.Before(to) {
				to = pb
			}
		}
	}
	if to.Before(from) {
		f.Empty = true
		to = from
	}
	f.From, f.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	f.PrevFrom, f.PrevTo = prevFrom.Format(time.DateOnly), prevTo.Format(time.DateOnly)
	f.Design, f.CP = design, cp

	if countries != nil || cities != nil {
		if f.Loc, err = collect(ctx, d, "location_ids", pgx.NamedArgs{"countries": countries, "cities": cities}, pgx.RowTo[int32]); err != nil {
			return f, err
		}
	}
	f.Staff = staff
	if depts != nil {
		byDept, err := collect(ctx, d, "staff_ids", pgx.NamedArgs{"depts": depts}, pgx.RowTo[int32])
		if err != nil {
			return f, err
		}
		f.Staff = intersectIDs(f.Staff, byDept)
	}
	if curs != nil {
		if f.Cur, err = collect(ctx, d, "currency_ids", pgx.NamedArgs{"codes": curs}, pgx.RowTo[int32]); err != nil {
			return f, err
		}
	}
	if f.Empty {
		f.Cur = []int32{} // no currency: nothing matches
	}
	return f, nil
}

// asOfMode is the cheaper way to read the summaries as of batch n when
// they reflect batch newest: the log up to n reads the changes up to n,
// the current summaries less the log after n those after it.
func asOfMode(n, newest int64) string {
	if 2*n >= newest {
		return modeAfter
	}
	return modeUpTo
}

// autoGrain is the grain that shows a period of days in a readable number of bars.
func autoGrain(days int) string {
	switch {
	case days <= 45:
		return "day"
	case days <= 200:
		return "week"
	case days <= 1100:
		return "month"
	}
	return "quarter"
}

func ids(v []string) []int32 {
	if v == nil {
		return nil
	}
	out := []int32{}
	for _, s := range v {
		n, err := strconv.ParseInt(s, 10, 32)
		if err == nil {
			out = append(out, int32(n))
		}
	}
	return out
}

// intersect keeps the values of a that are in b; a nil a (no filter) keeps b.
func intersect(a, b []string) []string {
	if a == nil {
		return b
	}
	out := []string{}
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func intersectIDs(a, b []int32) []int32 {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := []int32{}
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// designFactsDays is the longest period over which the design rankings
// read the facts (through their design index) rather than
// tote_dash.sales_design, whose cost does not depend on the period: see
// docs/decisions/0008-dashboard.md for the measurements.
const designFactsDays = 14

// days is the number of days in the period.
func (f filter) days() int {
	from, _ := time.Parse(time.DateOnly, f.From)
	to, _ := time.Parse(time.DateOnly, f.To)
	return int(to.Sub(from).Hours()/24) + 1
}

// salesRoute says which rows answer a sales query that groups by group
// ("" for none; location, staff, counterparty, design or lead): the
// summary that has every dimension the query filters or groups on
// (tote_dash.sales_by has one at a time, or none: 'all'; the design
// rankings their own table), else the facts.
func (f filter) salesRoute(group string) string {
	dims := map[string]bool{}
	if group != "" {
		dims[group] = true
	}
	if f.Loc != nil {
		dims["location"] = true
	}
	if f.Staff != nil {
		dims["staff"] = true
	}
	if f.CP != nil {
		dims["counterparty"] = true
	}
	if f.Design != nil {
		dims["design"] = true
	}
	if f.Lead != nil {
		dims["lead"] = true
	}
	switch len(dims) {
	case 0:
		return "all"
	case 1:
		for d := range dims {
			switch {
			case d == "design" && f.Design == nil && f.days() > designFactsDays:
				return "design"
			case d == "location" || d == "staff" || d == "counterparty" || d == "lead":
				return d
			}
		}
	}
	return "facts"
}

// purchaseRoute is salesRoute for purchases, which have a location, staff
// and counterparty (but no design or lead time).
func (f filter) purchaseRoute() string {
	var dims []string
	if f.Loc != nil {
		dims = append(dims, "location")
	}
	if f.Staff != nil {
		dims = append(dims, "staff")
	}
	if f.CP != nil {
		dims = append(dims, "counterparty")
	}
	switch len(dims) {
	case 0:
		return "all"
	case 1:
		return dims[0]
	}
	return "facts"
}

// paymentRoute is the summary rows payment queries read: payments have a
// counterparty, so tote_dash.payments_by answers every filter they take.
func (f filter) paymentRoute() string {
	if f.CP != nil {
		return "counterparty"
	}
	return "all"
}

// summaryRead is what every query of a fact shares: which rows answer it,
// as of which batch, over which days.
type summaryRead struct {
	Route    string // @route
	Mode     string // @mode
	AsOf     int64  // @as_of
	Rec      int64  // @rec
	From, To string // @from, @to
}

func (r summaryRead) put(a pgx.NamedArgs) pgx.NamedArgs {
	a["route"], a["mode"], a["as_of"], a["rec"], a["from"], a["to"] = r.Route, r.Mode, r.AsOf, r.Rec, r.From, r.To
	return a
}

// read is the summaryRead of fact's queries by route over days from..to.
func (f filter) read(fact, route, from, to string) summaryRead {
	return summaryRead{Route: route, Mode: f.Mode, AsOf: f.AsOf, Rec: f.Rec[fact], From: from, To: to}
}

// page is a page of rows: @limit rows from @offset.
type page struct{ Limit, Offset int }

// salesParams are the parameters of the sales queries.
type salesParams struct {
	summaryRead
	Cur, Loc, Staff, CP, Design []int32 // @cur, @loc, @staff, @cp, @design
	Lead                        *int16  // @lead
	Since                       string  // @since: where the KPIs' period starts (the previous one is @from to the day before)
	Grain                       string  // @grain
	N                           int     // @n: designs ranked at each end
	// Listed is @listed: the design rankings take the designs a period's
	// orders name when it has fewer orders than this.
	Listed int
	page
}

func (p salesParams) args() pgx.NamedArgs {
	return p.put(pgx.NamedArgs{"cur": p.Cur, "loc": p.Loc, "staff": p.Staff, "cp": p.CP, "design": p.Design,
		"lead": p.Lead, "since": p.Since, "grain": p.Grain, "n": p.N, "listed": p.Listed, "limit": p.Limit, "offset": p.Offset})
}

// sales are the sales parameters of route over days from..to.
func (f filter) sales(route, from, to string) salesParams {
	return salesParams{summaryRead: f.read("fact_sales_order", route, from, to),
		Cur: f.Cur, Loc: f.Loc, Staff: f.Staff, CP: f.CP, Design: f.Design, Lead: f.Lead, Grain: f.Grain}
}

// purchaseParams are the parameters of the purchase queries.
type purchaseParams struct {
	summaryRead
	Cur, Loc, Staff, CP []int32 // @cur, @loc, @staff, @cp
	Grain               string  // @grain
	page
}

func (p purchaseParams) args() pgx.NamedArgs {
	return p.put(pgx.NamedArgs{"cur": p.Cur, "loc": p.Loc, "staff": p.Staff, "cp": p.CP, "grain": p.Grain,
		"limit": p.Limit, "offset": p.Offset})
}

// purchases are the purchase parameters of route over the period.
func (f filter) purchases(route string) purchaseParams {
	return purchaseParams{summaryRead: f.read("fact_purchase_order", route, f.From, f.To),
		Cur: f.Cur, Loc: f.Loc, Staff: f.Staff, CP: f.CP, Grain: f.Grain}
}

// paymentParams are the parameters of the payment queries.
type paymentParams struct {
	summaryRead
	Cur, CP []int32 // @cur, @cp
	Today   string  // @today: unpaid payments due before it are overdue
	Since   string  // @since: where the KPIs' period starts
	Status  *string // @status: paid, unpaid, overdue or due; nil for any
	Grain   string  // @grain
	page
}

func (p paymentParams) args() pgx.NamedArgs {
	return p.put(pgx.NamedArgs{"cur": p.Cur, "cp": p.CP, "today": p.Today, "since": p.Since, "status": p.Status,
		"grain": p.Grain, "limit": p.Limit, "offset": p.Offset})
}

// payments are the payment parameters over days from..to.
func (f filter) payments(from, to string) paymentParams {
	return paymentParams{summaryRead: f.read("fact_payment", f.paymentRoute(), from, to),
		Cur: f.Cur, CP: f.CP, Today: f.Today, Grain: f.Grain}
}
