package seed

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/totesys"
)

// Sizes at scale 1, close to the real system after two years. The order
// tables (and designs, which keep being added) grow linearly with the scale;
// the reference tables do not.
const (
	addressCount      = 30
	counterpartyCount = 20
	staffCount        = 20
	designsPerScale   = 400
	salesPerScale     = 12000
	purchasesPerScale = 4600
	// MaxScale keeps every id within totesys' 32-bit integer keys.
	MaxScale = 10000
)

// The real data's time span: the first rows were written on 2022-11-03 and
// the snapshot ends on 2024-11-15.
var (
	// Epoch is when the seeded reference tables were created.
	Epoch = time.Date(2022, 11, 3, 14, 20, 49, 962_000_000, time.UTC)
	// DefaultUntil is the default creation time of the last seeded order.
	DefaultUntil = time.Date(2024, 11, 15, 14, 40, 10, 188_000_000, time.UTC)
)

// generator derives every seeded row from (seed, scale, until) alone. Each
// order is computed from its own random stream, so the order tables can be
// produced independently and in parallel and still agree with one another.
type generator struct {
	seed    uint64
	designs int // number of designs
	orders  int // sales plus purchase orders (= transactions = payments)
	first   time.Time
	span    time.Duration // from the first order to the last
}

func newGenerator(seed uint64, scale int, until time.Time) *generator {
	first := Epoch.Add(2224 * time.Millisecond)
	return &generator{
		seed:    seed,
		designs: designsPerScale * scale,
		orders:  (salesPerScale + purchasesPerScale) * scale,
		first:   first,
		span:    until.Sub(first),
	}
}

// stream returns the random stream of one entity: a table's reference rows
// (kind < 0) or one order (kind = 0, i = its index).
func (g *generator) stream(kind, i int) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed^splitmix(uint64(kind)+0x9e37), splitmix(uint64(i))))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// order is one sales or purchase order with its transaction and payment.
type order struct {
	sale           bool
	created        time.Time
	designID       int
	staffID        int
	counterpartyID int
	quantity       int   // units_sold or item_quantity
	priceCents     int64 // unit_price or item_unit_price
	itemCode       string
	currencyID     int
	deliveryDate   string
	paymentDate    string
	locationID     int
	paid           bool
	paidAt         time.Time // last_updated of the payment
	companyAC      int
	counterpartyAC int
}

const (
	saleShare = float64(salesPerScale) / float64(salesPerScale+purchasesPerScale)
	paidShare = 0.62
	dateOnly  = "2006-01-02"
)

// order computes order i (0-based); the same i always gives the same order.
func (g *generator) order(i int) order {
	r := g.stream(0, i)
	step := g.span / time.Duration(g.orders)
	created := g.first.Add(time.Duration(i) * step)
	if step > time.Millisecond {
		created = created.Add(time.Duration(r.Int64N(int64(step))))
	}
	o := order{
		sale:           r.Float64() < saleShare,
		created:        created.Truncate(time.Millisecond),
		staffID:        between(r, 1, staffCount),
		counterpartyID: between(r, 1, counterpartyCount),
		currencyID:     between(r, 1, len(currencies)),
		locationID:     between(r, 1, addressCount),
		companyAC:      between(r, 10_000_000, 99_999_999),
		counterpartyAC: between(r, 10_000_000, 99_999_999),
	}
	if o.sale {
		o.designID = between(r, 1, g.designsAt(o.created))
		o.quantity = between(r, 1000, 100_000)
		o.priceCents = int64(between(r, 200, 400))
	} else {
		o.quantity = between(r, 1, 999)
		o.priceCents = int64(between(r, 100, 99_999))
		var code [7]byte
		for k := range code {
			code[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[r.IntN(36)]
		}
		o.itemCode = string(code[:])
	}
	// Most deliveries are agreed within a week; some run up to ~620 days out.
	delivery := between(r, 0, 7)
	if r.IntN(10) == 0 {
		delivery = between(r, 8, 620)
	}
	o.deliveryDate = o.created.AddDate(0, 0, delivery).Format(dateOnly)
	o.paymentDate = o.created.AddDate(0, 0, between(r, 0, 7)).Format(dateOnly)
	// Payments flip to paid 13 to 144 hours after they are created.
	o.paidAt = o.created.Add(13*time.Hour + time.Duration(r.Int64N(int64(131*time.Hour)))).Truncate(time.Millisecond)
	o.paid = r.Float64() < paidShare && !o.paidAt.After(g.first.Add(g.span))
	if !o.paid {
		o.paidAt = o.created
	}
	return o
}

// designCreated is when design j (1-based) was added: a tenth of them at the
// start, the rest spread evenly over the order span.
func (g *generator) designCreated(j int) time.Time {
	initial := g.designs / 10
	if j <= initial {
		return Epoch
	}
	return g.first.Add(time.Duration(float64(g.span) * float64(j-initial) / float64(g.designs-initial))).Truncate(time.Millisecond)
}

// designsAt is how many designs exist at time t.
func (g *generator) designsAt(t time.Time) int {
	initial := g.designs / 10
	n := initial + int(float64(g.designs-initial)*float64(t.Sub(g.first))/float64(g.span))
	return max(1, min(n, g.designs))
}

// rowSource is one table's rows, produced on demand.
type rowSource struct {
	table totesys.Table
	next  postgres.RowFunc
}

// sources returns the row producers of every table, largest first.
func (g *generator) sources() []rowSource {
	return []rowSource{
		g.orderTable("payment", g.paymentRow),
		g.orderTable("transaction", g.transactionRow),
		g.orderTable("sales_order", g.salesRow),
		g.orderTable("purchase_order", g.purchaseRow),
		g.counted("design", g.designs, g.designRow),
		g.counted("address", addressCount, g.addressRow),
		g.counted("counterparty", counterpartyCount, g.counterpartyRow),
		g.counted("currency", len(currencies), func(w *postgres.RowWriter, i int) {
			w.Int(int64(i))
			w.Text(currencies[i-1])
			stamps(w, Epoch, Epoch)
		}),
		g.counted("department", len(departments), func(w *postgres.RowWriter, i int) {
			d := departments[i-1]
			w.Int(int64(i))
			w.Text(d.name)
			w.Text(d.location)
			w.Text(d.manager)
			stamps(w, Epoch, Epoch)
		}),
		g.counted("staff", staffCount, g.staffRow),
		g.counted("payment_type", len(totesys.PaymentTypeNames), func(w *postgres.RowWriter, i int) {
			w.Int(int64(i))
			w.Text(totesys.PaymentTypeNames[i-1])
			stamps(w, Epoch, Epoch)
		}),
	}
}

func mustTable(name string) totesys.Table {
	t, err := totesys.Lookup(name)
	if err != nil {
		panic(err)
	}
	return t
}

// counted is a table of n rows with ids 1..n.
func (g *generator) counted(name string, n int, row func(w *postgres.RowWriter, id int)) rowSource {
	id := 0
	return rowSource{mustTable(name), func(w *postgres.RowWriter) (bool, error) {
		if id == n {
			return false, nil
		}
		id++
		row(w, id)
		w.End()
		return true, nil
	}}
}

// orderTable is a table with at most one row per order. row writes the row
// for order i, given how many sales and purchases came before it, and
// reports whether the order has one.
func (g *generator) orderTable(name string, row func(w *postgres.RowWriter, i int, o *order, sales, purchases int) bool) rowSource {
	i, sales, purchases := 0, 0, 0
	return rowSource{mustTable(name), func(w *postgres.RowWriter) (bool, error) {
		for i < g.orders {
			o := g.order(i)
			if o.sale {
				sales++
			} else {
				purchases++
			}
			i++
			if row(w, i-1, &o, sales, purchases) {
				w.End()
				return true, nil
			}
		}
		return false, nil
	}}
}

func stamps(w *postgres.RowWriter, created, updated time.Time) {
	w.Timestamp(created)
	w.Timestamp(updated)
}

// orderTerms writes the columns sales_order and purchase_order both end
// with, in the same order: quantity, price, currency, agreed dates,
// delivery location and the stamps.
func orderTerms(w *postgres.RowWriter, o *order) {
	w.Int(int64(o.quantity))
	w.Cents(o.priceCents)
	w.Int(int64(o.currencyID))
	w.Text(o.deliveryDate)
	w.Text(o.paymentDate)
	w.Int(int64(o.locationID))
	stamps(w, o.created, o.created)
}

func (g *generator) salesRow(w *postgres.RowWriter, _ int, o *order, sales, _ int) bool {
	if !o.sale {
		return false
	}
	w.Int(int64(sales))
	w.Int(int64(o.designID))
	w.Int(int64(o.staffID))
	w.Int(int64(o.counterpartyID))
	orderTerms(w, o)
	return true
}

func (g *generator) purchaseRow(w *postgres.RowWriter, _ int, o *order, _, purchases int) bool {
	if o.sale {
		return false
	}
	w.Int(int64(purchases))
	w.Int(int64(o.staffID))
	w.Int(int64(o.counterpartyID))
	w.Text(o.itemCode)
	orderTerms(w, o)
	return true
}

func (g *generator) transactionRow(w *postgres.RowWriter, i int, o *order, sales, purchases int) bool {
	w.Int(int64(i + 1))
	if o.sale {
		w.Text("SALE")
		w.Int(int64(sales))
		w.Null()
	} else {
		w.Text("PURCHASE")
		w.Null()
		w.Int(int64(purchases))
	}
	stamps(w, o.created, o.created)
	return true
}

func (g *generator) paymentRow(w *postgres.RowWriter, i int, o *order, _, _ int) bool {
	paymentType := 3 // PURCHASE_PAYMENT
	if o.sale {
		paymentType = 1 // SALES_RECEIPT
	}
	w.Int(int64(i + 1))
	w.Int(int64(i + 1))
	w.Int(int64(o.counterpartyID))
	w.Cents(int64(o.quantity) * o.priceCents)
	w.Int(int64(o.currencyID))
	w.Int(int64(paymentType))
	w.Bool(o.paid)
	w.Text(o.paymentDate)
	w.Int(int64(o.companyAC))
	w.Int(int64(o.counterpartyAC))
	stamps(w, o.created, o.paidAt)
	return true
}

func (g *generator) designRow(w *postgres.RowWriter, id int) {
	r := g.stream(-1, id)
	name := pick(r, DesignMaterials)
	created := g.designCreated(id)
	drawn := created.AddDate(0, 0, -between(r, 30, 500)).Format("20060102")
	var tag [4]byte
	for k := range tag {
		tag[k] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
	}
	w.Int(int64(id))
	w.Text(name)
	w.Text(pick(r, DesignDirs))
	w.Text(strings.ToLower(name) + "-" + drawn + "-" + string(tag[:]) + ".json")
	stamps(w, created, created)
}

func (g *generator) addressRow(w *postgres.RowWriter, id int) {
	r := g.stream(-2, id)
	w.Int(int64(id))
	w.Text(strconv.Itoa(between(r, 1, 99999)) + " " + pick(r, lastNames) + " " + pick(r, streetSuffixes))
	if r.IntN(3) == 0 {
		w.Text(pick(r, lastNames) + " " + pick(r, streetSuffixes))
	} else {
		w.Null()
	}
	if r.IntN(2) == 0 {
		w.Text(pick(r, districts))
	} else {
		w.Null()
	}
	w.Text(pick(r, cityPrefixes) + pick(r, lastNames) + pick(r, citySuffixes))
	postal := fmt.Sprintf("%05d", r.IntN(100000))
	if r.IntN(3) == 0 {
		postal += fmt.Sprintf("-%04d", r.IntN(10000))
	}
	w.Text(postal)
	w.Text(pick(r, countries))
	w.Text(fmt.Sprintf("%04d %06d", r.IntN(10000), r.IntN(1000000)))
	stamps(w, Epoch, Epoch)
}

func (g *generator) counterpartyRow(w *postgres.RowWriter, id int) {
	r := g.stream(-3, id)
	form := pick(r, companyForms)
	args := make([]any, strings.Count(form, "%s"))
	for k := range args {
		args[k] = pick(r, lastNames)
	}
	created := Epoch.Add(1601 * time.Millisecond)
	w.Int(int64(id))
	w.Text(fmt.Sprintf(form, args...))
	w.Int(int64(between(r, 1, addressCount)))
	w.Text(pick(r, firstNames) + " " + pick(r, lastNames))
	w.Text(pick(r, firstNames) + " " + pick(r, lastNames))
	stamps(w, created, created)
}

func (g *generator) staffRow(w *postgres.RowWriter, id int) {
	r := g.stream(-4, id)
	first, last := pick(r, firstNames), pick(r, lastNames)
	created := Epoch.Add(1601 * time.Millisecond)
	w.Int(int64(id))
	w.Text(first)
	w.Text(last)
	w.Int(int64(between(r, 2, len(departments))))
	w.Text(strings.ToLower(first) + "." + strings.ToLower(last) + "@terrifictotes.com")
	stamps(w, created, created)
}
