// Package simulate behaves like Terrific Totes' live business against a
// totesys database: it writes the changes the real application writes, at a
// chosen rate, so that the pipeline can be watched and tested on a moving
// source.
//
// Each event is one short transaction stamped with now(), as the real
// application does: new sales and purchase orders (each with its
// transaction and unpaid payment), payments flipped to paid (the commonest
// real update), edits to existing orders, and now and then a department
// renamed, a counterparty moved to another address, an address edited, a
// member of staff moved, a design or a currency added. On request
// (Options.Deletions) a share of the events are deletions: a payment
// deleted, or a sales order cancelled, deleted with its transaction and
// payment. The real application does not delete; a source whose operators
// do is what the pipeline must carry all the same.
//
// It does not create the schema or its first rows (see seed).
package simulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/terrifictotes/tote/seed"
)

// Event is a kind of change the simulator makes.
type Event string

// The events, from commonest to rarest.
const (
	NewSale          Event = "new_sale"
	NewPurchase      Event = "new_purchase"
	PaymentPaid      Event = "payment_paid"
	OrderUpdated     Event = "order_updated"
	DesignAdded      Event = "design_added"
	StaffMoved       Event = "staff_moved"
	AddressEdited    Event = "address_edited"
	CounterpartyMove Event = "counterparty_moved"
	DepartmentRename Event = "department_renamed"
	CurrencyAdded    Event = "currency_added"
	// Deletions, made only when Options.Deletions asks for them.
	PaymentDeleted Event = "payment_deleted"
	SaleCancelled  Event = "sale_cancelled" // the order, its transaction and its payment deleted
)

// weights says how often each event happens relative to the others.
var weights = []struct {
	event  Event
	weight int
}{
	{NewSale, 400}, {NewPurchase, 150}, {PaymentPaid, 300}, {OrderUpdated, 100},
	{DesignAdded, 15}, {StaffMoved, 8}, {AddressEdited, 8}, {CounterpartyMove, 8},
	{DepartmentRename, 8}, {CurrencyAdded, 3},
}

// deletionWeights says how often each deletion happens relative to the
// other deletions.
var deletionWeights = []struct {
	event  Event
	weight int
}{{PaymentDeleted, 1}, {SaleCancelled, 1}}

// Options controls Run.
type Options struct {
	Rate     float64       // events per second; must be positive
	Duration time.Duration // how long to run; zero runs until ctx is done
	Events   int           // stop after this many events; zero means no limit
	Seed     uint64        // seeds the choice of events and values
	// Deletions is the share of events that delete (0 to 1); zero, the
	// default, deletes nothing, as the real application never does.
	Deletions float64
	Logger    *slog.Logger
}

// Stats counts the events a run made.
type Stats struct {
	Events  map[Event]int `json:"events"`
	Skipped int           `json:"skipped"` // events with nothing to act on (e.g. no unpaid payment)
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Total is the number of events made.
func (s Stats) Total() int {
	n := 0
	for _, c := range s.Events {
		n += c
	}
	return n
}

// Run makes events against pool's totesys database until ctx is done, the
// duration has passed or the event limit is reached. Cancelling ctx is a
// clean stop: the event under way finishes, and Run returns its stats with
// a nil error.
func Run(ctx context.Context, pool *pgxpool.Pool, opts Options) (Stats, error) {
	if opts.Rate <= 0 {
		return Stats{}, fmt.Errorf("simulate: rate must be positive, got %v", opts.Rate)
	}
	if opts.Duration < 0 || opts.Events < 0 {
		return Stats{}, errors.New("simulate: duration and event count must not be negative")
	}
	if !(opts.Deletions >= 0 && opts.Deletions <= 1) {
		return Stats{}, fmt.Errorf("simulate: the share of deletions must be from 0 to 1, got %v", opts.Deletions)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &sim{pool: pool, r: rand.New(rand.NewPCG(opts.Seed, 0x70735)), log: log, deletions: opts.Deletions}
	if err := s.load(ctx); err != nil {
		return Stats{}, err
	}
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	stats := Stats{Events: map[Event]int{}}
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
	defer tick.Stop()
	for opts.Events == 0 || stats.Total() < opts.Events {
		select {
		case <-ctx.Done():
			stats.Elapsed = time.Since(start)
			return stats, nil
		case <-tick.C:
		}
		ev := s.choose()
		// The event under way completes even if we are asked to stop.
		did, err := s.do(context.WithoutCancel(ctx), ev)
		if err != nil {
			stats.Elapsed = time.Since(start)
			return stats, fmt.Errorf("simulate %s: %w", ev, err)
		}
		if did {
			stats.Events[ev]++
		} else {
			stats.Skipped++
		}
	}
	stats.Elapsed = time.Since(start)
	return stats, nil
}

// sim holds what the simulator knows of the database between events.
type sim struct {
	pool      *pgxpool.Pool
	r         *rand.Rand
	log       *slog.Logger
	max       map[string]int // largest id per table, as far as we know
	deletions float64        // share of events that delete
}

var idTables = []struct{ table, key string }{
	{"address", "address_id"}, {"counterparty", "counterparty_id"}, {"currency", "currency_id"},
	{"department", "department_id"}, {"design", "design_id"}, {"staff", "staff_id"},
	{"sales_order", "sales_order_id"}, {"purchase_order", "purchase_order_id"}, {"payment", "payment_id"},
}

func (s *sim) load(ctx context.Context) error {
	s.max = map[string]int{}
	for _, t := range idTables {
		var n int
		sql := fmt.Sprintf("SELECT coalesce(max(%s), 0) FROM %s", t.key, pgx.Identifier{t.table}.Sanitize())
		if err := s.pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			return fmt.Errorf("simulate: read %s: %w (has the source been seeded?)", t.table, err)
		}
		s.max[t.table] = n
	}
	for _, t := range []string{"address", "counterparty", "currency", "staff", "department"} {
		if s.max[t] == 0 {
			return fmt.Errorf("simulate: table %s is empty: seed the source first", t)
		}
	}
	return nil
}

func (s *sim) choose() Event {
	// No draw when deletions are off: the same seed makes the same events
	// as before they existed.
	if s.deletions > 0 && s.r.Float64() < s.deletions {
		return pick(s.r, deletionWeights)
	}
	return pick(s.r, weights)
}

// pick draws an event by weight.
func pick(r *rand.Rand, ws []struct {
	event  Event
	weight int
}) Event {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	n := r.IntN(total)
	for _, w := range ws {
		if n < w.weight {
			return w.event
		}
		n -= w.weight
	}
	return ws[0].event
}

// id returns a random id of table up to the largest known: ids are dense
// unless rows were deleted, so it may be gone.
func (s *sim) id(table string) int { return 1 + s.r.IntN(max(1, s.max[table])) }

func (s *sim) date(daysFromNow int) string {
	return time.Now().UTC().AddDate(0, 0, daysFromNow).Format("2006-01-02")
}

// do makes one event in its own transaction and reports whether it changed anything.
func (s *sim) do(ctx context.Context, ev Event) (bool, error) {
	var did bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		did, err = s.apply(ctx, tx, ev)
		return err
	})
	if err == nil && did {
		s.log.Debug("simulated", "event", ev)
	}
	return did, err
}

func (s *sim) apply(ctx context.Context, tx pgx.Tx, ev Event) (bool, error) {
	r := s.r
	switch ev {
	case NewSale, NewPurchase:
		return true, s.newOrder(ctx, tx, ev == NewSale)
	case PaymentPaid:
		tag, err := tx.Exec(ctx, `UPDATE payment SET paid = true, last_updated = now()
			WHERE payment_id = (SELECT payment_id FROM payment WHERE NOT paid AND payment_id >= $1 ORDER BY payment_id LIMIT 1)`,
			s.id("payment"))
		return tag.RowsAffected() > 0, err
	case OrderUpdated:
		// An order edit also changes the amount of its payment while unpaid.
		var (
			sql string
			id  int
		)
		if r.IntN(3) > 0 {
			id = s.id("sales_order")
			sql = `WITH o AS (UPDATE sales_order SET units_sold = $2, unit_price = $3::numeric / 100,
				agreed_delivery_date = $4, last_updated = now() WHERE sales_order_id = $1
				RETURNING sales_order_id, units_sold * unit_price AS amount)
			UPDATE payment p SET payment_amount = o.amount, last_updated = now()
			FROM o JOIN transaction t ON t.sales_order_id = o.sales_order_id
			WHERE p.transaction_id = t.transaction_id AND NOT p.paid`
			_, err := tx.Exec(ctx, sql, id, 1000+r.IntN(99_000), 200+r.IntN(201), s.date(1+r.IntN(30)))
			return true, err
		}
		id = s.id("purchase_order")
		sql = `WITH o AS (UPDATE purchase_order SET item_quantity = $2, item_unit_price = $3::numeric / 100,
			agreed_payment_date = $4, last_updated = now() WHERE purchase_order_id = $1
			RETURNING purchase_order_id, item_quantity * item_unit_price AS amount)
		UPDATE payment p SET payment_amount = o.amount, last_updated = now()
		FROM o JOIN transaction t ON t.purchase_order_id = o.purchase_order_id
		WHERE p.transaction_id = t.transaction_id AND NOT p.paid`
		_, err := tx.Exec(ctx, sql, id, 1+r.IntN(999), 100+r.IntN(99_900), s.date(r.IntN(8)))
		return true, err
	case DesignAdded:
		name := seed.DesignMaterials[r.IntN(len(seed.DesignMaterials))]
		var id int
		err := tx.QueryRow(ctx, `INSERT INTO design (design_name, file_location, file_name, last_updated)
			VALUES ($1, $2, $3, now()) RETURNING design_id`,
			name, seed.DesignDirs[r.IntN(len(seed.DesignDirs))],
			fmt.Sprintf("%s-%s-%04x.json", strings.ToLower(name), time.Now().UTC().Format("20060102"), r.IntN(1<<16))).Scan(&id)
		s.max["design"] = max(s.max["design"], id)
		return true, err
	case StaffMoved:
		tag, err := tx.Exec(ctx, `UPDATE staff SET department_id = $2, last_updated = now() WHERE staff_id = $1`,
			s.id("staff"), s.id("department"))
		return tag.RowsAffected() > 0, err
	case AddressEdited:
		tag, err := tx.Exec(ctx, `UPDATE address SET phone = $2, address_line_2 = $3, last_updated = now() WHERE address_id = $1`,
			s.id("address"), fmt.Sprintf("%04d %06d", r.IntN(10000), r.IntN(1000000)), fmt.Sprintf("Unit %d", 1+r.IntN(40)))
		return tag.RowsAffected() > 0, err
	case CounterpartyMove:
		address := s.id("address")
		if r.IntN(2) == 0 {
			if err := tx.QueryRow(ctx, `INSERT INTO address (address_line_1, city, postal_code, country, phone, last_updated)
				VALUES ($1, $2, $3, $4, $5, now()) RETURNING address_id`,
				fmt.Sprintf("%d Market Street", 1+r.IntN(500)), "Leeds", fmt.Sprintf("LS%d %dAB", 1+r.IntN(20), r.IntN(10)),
				"United Kingdom", fmt.Sprintf("0113 %06d", r.IntN(1000000))).Scan(&address); err != nil {
				return false, err
			}
			s.max["address"] = max(s.max["address"], address)
		}
		tag, err := tx.Exec(ctx, `UPDATE counterparty SET legal_address_id = $2, last_updated = now() WHERE counterparty_id = $1`,
			s.id("counterparty"), address)
		return tag.RowsAffected() > 0, err
	case DepartmentRename:
		id := s.id("department")
		tag, err := tx.Exec(ctx, `UPDATE department SET department_name = CASE WHEN department_name = $2 THEN $3 ELSE $2 END,
			last_updated = now() WHERE department_id = $1`, id, renames[(id-1)%len(renames)][0], renames[(id-1)%len(renames)][1])
		return tag.RowsAffected() > 0, err
	case PaymentDeleted:
		// Payments reference transactions, nothing references payments.
		tag, err := tx.Exec(ctx, `DELETE FROM payment
			WHERE payment_id = (SELECT payment_id FROM payment WHERE payment_id >= $1 ORDER BY payment_id LIMIT 1)`, s.id("payment"))
		return tag.RowsAffected() > 0, err
	case SaleCancelled:
		return s.cancelSale(ctx, tx)
	case CurrencyAdded:
		code := extraCurrencies[r.IntN(len(extraCurrencies))]
		var id int
		err := tx.QueryRow(ctx, `INSERT INTO currency (currency_code, last_updated)
			SELECT $1, now() WHERE NOT EXISTS (SELECT 1 FROM currency WHERE currency_code = $1) RETURNING currency_id`, code).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		s.max["currency"] = max(s.max["currency"], id)
		return err == nil, err
	}
	return false, fmt.Errorf("unknown event %q", ev)
}

// cancelSale deletes a sales order with its transaction and its payment,
// the payment first (it references the transaction).
func (s *sim) cancelSale(ctx context.Context, tx pgx.Tx) (bool, error) {
	var order int
	err := tx.QueryRow(ctx, `SELECT sales_order_id FROM sales_order WHERE sales_order_id >= $1 ORDER BY sales_order_id LIMIT 1`,
		s.id("sales_order")).Scan(&order)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, sql := range []string{
		`DELETE FROM payment WHERE transaction_id IN (SELECT transaction_id FROM transaction WHERE sales_order_id = $1)`,
		`DELETE FROM transaction WHERE sales_order_id = $1`,
		`DELETE FROM sales_order WHERE sales_order_id = $1`,
	} {
		if _, err := tx.Exec(ctx, sql, order); err != nil {
			return false, err
		}
	}
	return true, nil
}

// renames gives each department a second name to alternate with.
var renames = [][2]string{
	{"Sales", "Sales and Marketing"}, {"Purchasing", "Procurement"}, {"Production", "Manufacturing"},
	{"Dispatch", "Logistics"}, {"Finance", "Accounts"}, {"Facilities", "Estates"},
	{"Communications", "Marketing"}, {"HR", "People"},
}

// extraCurrencies are ISO 4217 codes the business may start trading in.
var extraCurrencies = []string{"CHF", "JPY", "AUD", "CAD", "SEK", "NOK", "DKK", "PLN", "CZK", "NZD"}

// newOrder inserts a sales or purchase order with its transaction and its
// (unpaid) payment, the way the application records one.
func (s *sim) newOrder(ctx context.Context, tx pgx.Tx, sale bool) error {
	r := s.r
	staff, counterparty, currency := s.id("staff"), s.id("counterparty"), s.id("currency")
	delivery, payDate := s.date(r.IntN(8)), s.date(r.IntN(8))
	var orderID, txID int
	var amount string
	order, txType, paymentType := "sales_order", "SALE", 1
	if sale {
		units, cents := 1000+r.IntN(99_000), 200+r.IntN(201)
		err := tx.QueryRow(ctx, `INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price,
			currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
			VALUES ($1, $2, $3, $4, $5::numeric / 100, $6, $7, $8, $9, now())
			RETURNING sales_order_id, (units_sold * unit_price)::text`,
			s.id("design"), staff, counterparty, units, cents, currency, delivery, payDate, s.id("address")).Scan(&orderID, &amount)
		if err != nil {
			return err
		}
	} else {
		order, txType, paymentType = "purchase_order", "PURCHASE", 3
		qty, cents := 1+r.IntN(999), 100+r.IntN(99_900)
		code := make([]byte, 7)
		for k := range code {
			code[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[r.IntN(36)]
		}
		err := tx.QueryRow(ctx, `INSERT INTO purchase_order (staff_id, counterparty_id, item_code, item_quantity,
			item_unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, last_updated)
			VALUES ($1, $2, $3, $4, $5::numeric / 100, $6, $7, $8, $9, now())
			RETURNING purchase_order_id, (item_quantity * item_unit_price)::text`,
			staff, counterparty, string(code), qty, cents, currency, delivery, payDate, s.id("address")).Scan(&orderID, &amount)
		if err != nil {
			return err
		}
	}
	s.max[order] = max(s.max[order], orderID)
	err := tx.QueryRow(ctx, `INSERT INTO transaction (transaction_type, `+order+`_id, last_updated)
		VALUES ($1, $2, now()) RETURNING transaction_id`, txType, orderID).Scan(&txID)
	if err != nil {
		return err
	}
	var paymentID int
	err = tx.QueryRow(ctx, `INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id,
		payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number, last_updated)
		VALUES ($1, $2, $3::numeric, $4, $5, false, $6, $7, $8, now()) RETURNING payment_id`,
		txID, counterparty, amount, currency, paymentType, payDate,
		10_000_000+r.IntN(90_000_000), 10_000_000+r.IntN(90_000_000)).Scan(&paymentID)
	if err != nil {
		return err
	}
	s.max["payment"] = max(s.max["payment"], paymentID)
	return nil
}
