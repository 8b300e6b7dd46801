package warehouse

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MonthSales is the value of the sales agreed in one month in one currency.
type MonthSales struct {
	Month    string `json:"month"` // YYYY-MM
	Currency string `json:"currency"`
	Orders   int64  `json:"orders"`
	Units    int64  `json:"units"`
	Value    string `json:"value"` // numeric, exact
}

// salesByMonthSQL counts each sales order once, at its latest version:
// the one of the newest batch (batches are in the order versions became
// visible in the source, whatever their stamps).
const salesByMonthSQL = `
WITH current AS (
  SELECT DISTINCT ON (sales_order_id) sales_order_id, created_date, units_sold, unit_price, currency_id
  FROM fact_sales_order
  ORDER BY sales_order_id, batch_id DESC, last_updated_date DESC, last_updated_time DESC
), months AS (
  SELECT DISTINCT date_trunc('month', created_date) AS m FROM current ORDER BY m DESC LIMIT $1
)
SELECT to_char(date_trunc('month', c.created_date), 'YYYY-MM'), d.currency_code, count(*),
       sum(c.units_sold)::bigint, sum(c.units_sold * c.unit_price)::text
FROM current c JOIN dim_currency d USING (currency_id)
WHERE date_trunc('month', c.created_date) IN (SELECT m FROM months)
GROUP BY 1, 2 ORDER BY 1 DESC, 2`

// SalesByMonth returns the value of sales per month and currency for the
// latest months that have sales, newest first.
func (w *Warehouse) SalesByMonth(ctx context.Context, months int) ([]MonthSales, error) {
	rows, err := w.pool.Query(ctx, salesByMonthSQL, months)
	if err != nil {
		return nil, fmt.Errorf("warehouse: sales by month: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[MonthSales])
	if err != nil {
		return nil, fmt.Errorf("warehouse: sales by month: %w", err)
	}
	return out, nil
}
