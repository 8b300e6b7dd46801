package transform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/laketest"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/transform"
)

// capturedState is the State of processed batch 1 as tote at commit
// e6f8a86 recorded it, having transformed capturedBatch as raw batch 1:
// the shape of every lake written before the transform read the model.
const capturedState = "testdata/state-e6f8a86.json"

// capturedBatch is the raw batch that capturedState was made from.
func capturedBatch() map[string][]row {
	addr := func(id int, line2, district any, city string) row {
		return row{"address_id": id, "address_line_1": "1 High St", "address_line_2": line2, "district": district,
			"city": city, "postal_code": "LS1 4AP", "country": "UK", "phone": "0113 496 0000", "last_updated": at(1)}
	}
	staff := func(id, dept int, last string) row {
		return row{"staff_id": id, "first_name": "Ann", "last_name": last, "department_id": dept,
			"email_address": "ann@terrifictotes.com", "last_updated": at(2)}
	}
	return map[string][]row{
		"address": {addr(1, nil, nil, "Leeds"), addr(2, "Flat 2", "Kirkstall", "Bradford"), addr(3, nil, "Headingley", "Leeds")},
		"department": {{"department_id": 1, "department_name": "Sales", "location": "Leds", "manager": nil, "last_updated": at(1)},
			{"department_id": 2, "department_name": "Finance", "location": nil, "manager": "Bo", "last_updated": at(1)},
			{"department_id": 3, "department_name": "Purchasing", "location": "Manchester", "manager": "Cy", "last_updated": at(1)}},
		"staff": {staff(1, 1, "Ó Briain"), staff(2, 2, "Smith"), staff(3, 1, "Jones"), staff(4, 3, "Patel"), staff(5, 9, "Lost")},
		"counterparty": {{"counterparty_id": 1, "counterparty_legal_name": "Acme Ltd", "legal_address_id": 1,
			"commercial_contact": nil, "delivery_contact": nil, "last_updated": at(1)},
			{"counterparty_id": 2, "counterparty_legal_name": "Bloggs & Co", "legal_address_id": 2,
				"commercial_contact": "Jo", "delivery_contact": "Al", "last_updated": at(3)},
			{"counterparty_id": 3, "counterparty_legal_name": "Cyan plc", "legal_address_id": 1,
				"commercial_contact": nil, "delivery_contact": nil, "last_updated": at(3).Add(123 * time.Millisecond)}},
		"currency": {{"currency_id": 1, "currency_code": "GBP", "last_updated": at(1)},
			{"currency_id": 2, "currency_code": "XYZ", "last_updated": at(1)}},
	}
}

func readCaptured(t *testing.T) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(capturedState)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// jsonValue decodes data into plain values, for comparison whatever the
// order of keys and spaces.
func jsonValue(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The state a release of today records holds what the earlier release
// recorded for the same raw batch: the same tables and rows, each column
// with the same value. (A column the model has come to read since is
// recorded as well.)
func TestStateKeepsItsShape(t *testing.T) {
	t.Parallel()
	lk := laketest.Mem(t)
	writeRaw(t, lk, 1, capturedBatch())
	transformRun(t, lk)
	got, want := jsonValue(t, latest(t, lk, lake.Processed).State), jsonValue(t, readCaptured(t))
	got["raw_batch"] = want["raw_batch"] // made of the time it was committed
	for key, w := range want {
		rows, ok := w.([]any)
		if !ok {
			if !reflect.DeepEqual(got[key], w) {
				t.Errorf("%s: %v, the earlier release %v", key, got[key], w)
			}
			continue
		}
		g, _ := got[key].([]any)
		if len(g) != len(rows) {
			t.Errorf("%s: %d rows, the earlier release %d", key, len(g), len(rows))
			continue
		}
		for i, r := range rows {
			for col, v := range r.(map[string]any) {
				if gv, ok := g[i].(map[string]any)[col]; !ok || !reflect.DeepEqual(gv, v) {
					t.Errorf("%s row %d: %s is %v, the earlier release %v", key, i+1, col, gv, v)
				}
			}
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("state has %s, which the earlier release did not record", key)
		}
	}
}

// A lake whose latest processed batch an earlier release wrote carries on:
// the next raw batch joins its rows to the state that release recorded.
func TestStateOfAnEarlierRelease(t *testing.T) {
	t.Parallel()
	lk := laketest.Mem(t)
	ctx := context.Background()
	w := lk.NewBatch(lake.Processed, 1, time.Now())
	if _, err := w.Commit(ctx, "tote e6f8a86", readCaptured(t)); err != nil {
		t.Fatal(err)
	}
	state, err := transform.LoadState(latest(t, lk, lake.Processed))
	if err != nil {
		t.Fatal(err)
	}
	if n := []int{len(state.Rows("address")), len(state.Rows("department")), len(state.Rows("staff")), len(state.Rows("counterparty"))}; !slices.Equal(n, []int{3, 3, 5, 3}) ||
		state.RawSeq != 1 || len(state.OpenRejects) != 2 {
		t.Fatalf("state of the earlier release: %d addresses, departments, staff, counterparties; raw seq %d; %d open rejects",
			n, state.RawSeq, len(state.OpenRejects))
	}
	if got := state.Rows("counterparty")[2]["last_updated"]; got != at(3).Add(123*time.Millisecond) {
		t.Errorf("counterparty 3 last_updated %v", got)
	}

	// Department 1 renamed (staff 1 and 3 in it), address 2 moved (the
	// legal address of counterparty 2), department 9 made (staff 5's,
	// rejected until now), currency 2 fixed, a new member of staff in
	// department 2.
	writeRaw(t, lk, 2, map[string][]row{
		"department": {
			{"department_id": 1, "department_name": "Sales & Marketing", "location": "Leds", "manager": nil, "last_updated": at(5)},
			{"department_id": 9, "department_name": "Research", "location": "York", "manager": nil, "last_updated": at(5)}},
		"address": {{"address_id": 2, "address_line_1": "2 Low St", "address_line_2": nil, "district": "Kirkstall",
			"city": "Wakefield", "postal_code": "WF1 1AA", "country": "UK", "phone": "01924 000000", "last_updated": at(5)}},
		"currency": {{"currency_id": 2, "currency_code": "CHF", "last_updated": at(5)}},
		"staff": {{"staff_id": 6, "first_name": "Bo", "last_name": "New", "department_id": 2,
			"email_address": "bo@terrifictotes.com", "last_updated": at(5)}},
	})
	res := transformRun(t, lk)
	m := latest(t, lk, lake.Processed)
	if got := texts(readTable(t, lk, m, "dim_staff"), "staff_id", "last_name", "department_name", "location"); !slices.Equal(got, []string{
		"1/Ó Briain/Sales & Marketing/Leds", "3/Jones/Sales & Marketing/Leds", "5/Lost/Research/York", "6/New/Finance/NULL"}) {
		t.Errorf("dim_staff %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_counterparty"), "counterparty_id", "counterparty_legal_name",
		"counterparty_legal_address_line_1", "counterparty_legal_address_line_2", "counterparty_legal_city"); !slices.Equal(got,
		[]string{"2/Bloggs & Co/2 Low St/NULL/Wakefield"}) {
		t.Errorf("dim_counterparty %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_location"), "location_id", "city"); !slices.Equal(got, []string{"2/Wakefield"}) {
		t.Errorf("dim_location %v", got)
	}
	if got := texts(readTable(t, lk, m, "dim_currency"), "currency_id", "currency_name"); !slices.Equal(got, []string{"2/Swiss Franc"}) {
		t.Errorf("dim_currency %v", got)
	}
	var resolved []string
	for _, r := range res.Batches[0].Resolved {
		resolved = append(resolved, fmt.Sprintf("%s/%d", r.Table, r.ID))
	}
	if slices.Sort(resolved); !slices.Equal(resolved, []string{"currency/2", "staff/5"}) || len(res.Batches[0].Rejects) != 0 {
		t.Errorf("rejects %v, resolved %v; want currency 2 and staff 5 resolved", res.Batches[0].Rejects, resolved)
	}

	next, err := transform.LoadState(m)
	if err != nil {
		t.Fatal(err)
	}
	if n := []int{len(next.Rows("address")), len(next.Rows("department")), len(next.Rows("staff")), len(next.Rows("counterparty"))}; !slices.Equal(n, []int{3, 4, 6, 3}) ||
		next.RawSeq != 2 || len(next.OpenRejects) != 0 {
		t.Errorf("next state: %d addresses, departments, staff, counterparties; raw seq %d; open rejects %v", n, next.RawSeq, next.OpenRejects)
	}
	if a := next.Rows("address")[1]; a["city"] != "Wakefield" || a["address_line_2"] != nil || a["last_updated"] != at(5) {
		t.Errorf("address 2 in the next state: %v", a)
	}
}
