package web

import (
	"encoding/csv"
	"strings"
	"testing"
)

// The drill-down's CSV holds every row the drill-down counts (not one
// page), under a header of its column labels, as an attachment; the
// filter options name what the warehouse holds.
func testDrillCSVAndOptions(t *testing.T, b *bundle) {
	var biz Business
	decode(t, get(t, b.srv, "/api/business?preset=all"), &biz)
	checked := 0
	for _, k := range biz.KPIs {
		if k.Orders == 0 {
			continue
		}
		var d Drill
		decode(t, get(t, b.srv, "/api/drill?preset=all&kind=sales&xf=cur:"+k.Currency), &d)
		w := get(t, b.srv, "/api/drill.csv?preset=all&kind=sales&xf=cur:"+k.Currency)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") ||
			!strings.Contains(w.Header().Get("Content-Disposition"), `attachment; filename="tote-sales-`) {
			t.Fatalf("%s: drill.csv answered %d %q %q: %s", k.Currency, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"), w.Body)
		}
		recs, err := csv.NewReader(w.Body).ReadAll()
		if err != nil {
			t.Fatalf("%s: drill.csv is not CSV: %v", k.Currency, err)
		}
		if int64(len(recs)-1) != d.Total {
			t.Errorf("%s: drill.csv has %d rows, the drill-down counts %d", k.Currency, len(recs)-1, d.Total)
		}
		if len(recs) > 0 && len(d.Rows.Columns) > 0 && recs[0][0] != d.Rows.Columns[0].Label {
			t.Errorf("%s: drill.csv's header %v, want the drill-down's labels (first %q)", k.Currency, recs[0], d.Rows.Columns[0].Label)
		}
		if checked++; checked == 2 {
			break
		}
	}
	if checked == 0 {
		t.Fatal("no currency with orders to drill into")
	}
	if w := get(t, b.srv, "/api/drill.csv?preset=all&kind=nonsense"); w.Code != 400 {
		t.Errorf("drill.csv of an unknown kind answered %d, want 400", w.Code)
	}

	var o Options
	decode(t, get(t, b.srv, "/api/options?preset=all"), &o)
	if len(o.Countries) == 0 || len(o.Cities) == 0 || len(o.Staff) == 0 || len(o.Currencies) == 0 || len(o.Counterparties) == 0 {
		t.Errorf("options of a loaded warehouse leave a list empty: %+v", o)
	}
	var staff int
	if err := b.wh.QueryRow(t.Context(), `SELECT count(*) FROM dim_staff WHERE NOT is_deleted`).Scan(&staff); err != nil {
		t.Fatal(err)
	}
	if len(o.Staff) != staff {
		t.Errorf("options name %d staff, the warehouse holds %d", len(o.Staff), staff)
	}
	if w := get(t, b.srv, "/api/options?preset=nonsense"); w.Code != 400 {
		t.Errorf("options with a bad preset answered %d, want 400", w.Code)
	}
}
