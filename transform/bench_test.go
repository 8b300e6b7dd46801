package transform_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/transform"
)

// BenchmarkDimensionJoins transforms a raw batch whose staff, counterparties
// and sales orders must be joined to departments and addresses, with a fact
// per sales order.
func BenchmarkDimensionJoins(b *testing.B) {
	const (
		addresses = 2_000
		staff     = 2_000
		orders    = 50_000
	)
	rows := map[string][]row{}
	lu := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= addresses; i++ {
		rows["address"] = append(rows["address"], row{"address_id": i, "address_line_1": fmt.Sprintf("%d High St", i),
			"address_line_2": nil, "district": "Kirkstall", "city": "Leeds", "postal_code": "LS1", "country": "UK", "phone": "0113", "last_updated": lu})
		rows["counterparty"] = append(rows["counterparty"], row{"counterparty_id": i, "counterparty_legal_name": fmt.Sprintf("Firm %d", i),
			"legal_address_id": i, "commercial_contact": nil, "delivery_contact": "Jo", "last_updated": lu})
	}
	for i := 1; i <= 8; i++ {
		rows["department"] = append(rows["department"], row{"department_id": i, "department_name": fmt.Sprintf("Dept %d", i),
			"location": "Leeds", "manager": nil, "last_updated": lu})
	}
	for i := 1; i <= staff; i++ {
		rows["staff"] = append(rows["staff"], row{"staff_id": i, "first_name": "Ann", "last_name": fmt.Sprint(i),
			"department_id": 1 + i%8, "email_address": "ann@example.com", "last_updated": lu})
	}
	rows["currency"] = []row{{"currency_id": 1, "currency_code": "GBP", "last_updated": lu}}
	rows["design"] = []row{{"design_id": 1, "design_name": "Wooden", "file_location": "/x", "file_name": "w.json", "last_updated": lu}}
	for i := 1; i <= orders; i++ {
		rows["sales_order"] = append(rows["sales_order"], row{"sales_order_id": i, "design_id": 1, "staff_id": 1 + i%staff,
			"counterparty_id": 1 + i%addresses, "units_sold": i % 1000, "unit_price": int64(i % 500), "currency_id": 1,
			"agreed_delivery_date": "2024-05-01", "agreed_payment_date": "2024-05-03", "agreed_delivery_location_id": 1 + i%addresses,
			"created_at": lu.Add(-time.Duration(i) * time.Minute), "last_updated": lu})
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		lk, err := lake.Open(context.Background(), "mem://", lake.Options{})
		if err != nil {
			b.Fatal(err)
		}
		writeRaw(b, lk, 1, rows)
		b.StartTimer()
		if _, err := transform.Run(context.Background(), lk, transform.Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		lk.Close()
		b.StartTimer()
	}
}
