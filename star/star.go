// Package star owns the warehouse model: the star schema's eleven tables
// (three facts, eight dimensions), their columns and PostgreSQL types, and
// their keys. The transform stage writes these tables to the lake's
// processed zone and the load stage puts them into the warehouse; both take
// the definitions from here.
//
// A processed Parquet file of a table holds exactly the table's Columns, in
// any order, with these Parquet types: integer as INT32, numeric(10,2) as
// DECIMAL(10,2) on INT64, date as DATE, time as TIME(MICROS) without time
// zone, boolean as BOOLEAN and text as STRING; nullable columns are
// optional. A fact's surrogate key (sales_record_id and the like) exists
// only in the warehouse.
//
// The package holds no rows and does no I/O.
package star

import (
	"fmt"

	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/lakefile"
)

// Type is a column's PostgreSQL type as the catalog spells it.
type Type string

// The column types of the star schema.
const (
	Integer Type = "integer"
	BigInt  Type = "bigint"
	Text    Type = "text"
	Money   Type = "numeric(10,2)"
	Boolean Type = "boolean"
	Date    Type = "date"
	Time    Type = "time without time zone"
	// Timestamp is used by tote's own tables only (Rejects).
	Timestamp Type = "timestamp without time zone"
)

// Column is one column of a star table.
type Column struct {
	Name     string
	Type     Type
	Nullable bool
}

// Kind tells facts from dimensions.
type Kind int

// The kinds of table.
const (
	Dimension Kind = iota // holds the current state of each entity: upsert by Key
	Fact                  // keeps history: one row per source row version
)

// Table is one table of the star schema.
type Table struct {
	Name string
	Kind Kind
	// Surrogate is a fact's SERIAL primary key, made by the warehouse.
	Surrogate string
	// Key identifies a row: a dimension's primary key, or a fact's source
	// row version (source id, last_updated_date, last_updated_time,
	// source_xmin), which the warehouse keeps unique so a repeated version
	// adds nothing.
	Key []string
	// Columns are the table's columns in the lake and the warehouse, less Surrogate.
	Columns []Column
}

// ColumnNames returns the names of the table's Columns.
func (t Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Column returns the named column and whether the table has it.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

func col(name string, t Type) Column      { return Column{Name: name, Type: t} }
func nullable(name string, t Type) Column { return Column{Name: name, Type: t, Nullable: true} }

func dim(name, key string, cols ...Column) Table {
	return Table{Name: name, Kind: Dimension, Key: []string{key}, Columns: cols}
}

// versionColumns are the columns every fact starts with after its source id.
var versionColumns = []Column{
	col("created_date", Date), col("created_time", Time),
	col("last_updated_date", Date), col("last_updated_time", Time),
}

// The columns every fact ends with: where the version came from.
const (
	// SourceXmin is the xmin of the source row version: the 32-bit id of
	// the transaction that wrote it, as PostgreSQL shows it. With the
	// source id and last_updated it identifies the version, even one whose
	// writer did not move last_updated on.
	SourceXmin = "source_xmin"
	// BatchID is the processed batch that brought the version. Batches are
	// numbered in the order their versions became visible in the source,
	// so a row's versions are in order of batch_id whatever their stamps.
	BatchID = "batch_id"
)

func fact(name, surrogate, id string, cols ...Column) Table {
	all := append([]Column{col(id, Integer)}, versionColumns...)
	all = append(all, cols...)
	all = append(all, col(SourceXmin, BigInt), col(BatchID, Text))
	return Table{Name: name, Kind: Fact, Surrogate: surrogate,
		Key: []string{id, "last_updated_date", "last_updated_time", SourceXmin}, Columns: all}
}

// Tables lists the star schema, dimensions before facts (the order in
// which a batch is loaded).
var Tables = []Table{
	dim("dim_date", "date_id",
		col("date_id", Date), col("year", Integer), col("month", Integer), col("day", Integer),
		col("day_of_week", Integer), col("day_name", Text), col("month_name", Text), col("quarter", Integer)),
	dim("dim_staff", "staff_id",
		col("staff_id", Integer), col("first_name", Text), col("last_name", Text),
		col("department_name", Text), nullable("location", Text), col("email_address", Text)),
	dim("dim_location", "location_id",
		col("location_id", Integer), col("address_line_1", Text), nullable("address_line_2", Text),
		nullable("district", Text), col("city", Text), col("postal_code", Text), col("country", Text), col("phone", Text)),
	dim("dim_design", "design_id",
		col("design_id", Integer), col("design_name", Text), col("file_location", Text), col("file_name", Text)),
	dim("dim_currency", "currency_id",
		col("currency_id", Integer), col("currency_code", Text), col("currency_name", Text)),
	dim("dim_counterparty", "counterparty_id",
		col("counterparty_id", Integer), col("counterparty_legal_name", Text),
		col("counterparty_legal_address_line_1", Text), nullable("counterparty_legal_address_line_2", Text),
		nullable("counterparty_legal_district", Text), col("counterparty_legal_city", Text),
		col("counterparty_legal_postal_code", Text), col("counterparty_legal_country", Text),
		col("counterparty_legal_phone_number", Text)),
	dim("dim_transaction", "transaction_id",
		col("transaction_id", Integer), col("transaction_type", Text),
		nullable("sales_order_id", Integer), nullable("purchase_order_id", Integer)),
	dim("dim_payment_type", "payment_type_id",
		col("payment_type_id", Integer), col("payment_type_name", Text)),
	fact("fact_sales_order", "sales_record_id", "sales_order_id",
		col("sales_staff_id", Integer), col("counterparty_id", Integer), col("units_sold", Integer),
		col("unit_price", Money), col("currency_id", Integer), col("design_id", Integer),
		col("agreed_payment_date", Date), col("agreed_delivery_date", Date), col("agreed_delivery_location_id", Integer)),
	fact("fact_purchase_order", "purchase_record_id", "purchase_order_id",
		col("staff_id", Integer), col("counterparty_id", Integer), col("item_code", Text), col("item_quantity", Integer),
		col("item_unit_price", Money), col("currency_id", Integer), col("agreed_delivery_date", Date),
		col("agreed_payment_date", Date), col("agreed_delivery_location_id", Integer)),
	fact("fact_payment", "payment_record_id", "payment_id",
		col("transaction_id", Integer), col("counterparty_id", Integer), col("payment_amount", Money),
		col("currency_id", Integer), col("payment_type_id", Integer), col("paid", Boolean), col("payment_date", Date)),
}

// Lookup returns the star table with the given name.
func Lookup(name string) (Table, error) {
	for _, t := range Tables {
		if t.Name == name {
			return t, nil
		}
	}
	return Table{}, fmt.Errorf("star: no table %q in the warehouse model", name)
}

// lakeKinds is how each type's values are kept in the processed zone.
var lakeKinds = map[Type]lakefile.Kind{
	Integer:   lakefile.Int32,
	BigInt:    lakefile.Int64,
	Text:      lakefile.Text,
	Money:     lakefile.Cents,
	Boolean:   lakefile.Bool,
	Date:      lakefile.Date,
	Time:      lakefile.TimeOfDay,
	Timestamp: lakefile.Timestamp,
}

// Schema is the Parquet schema of the table's processed files.
func (t Table) Schema() *parquet.Schema {
	cols := make([]lakefile.Column, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = lakefile.Column{Name: c.Name, Kind: lakeKinds[c.Type], Nullable: c.Nullable}
	}
	return lakefile.Schema(t.Name, cols)
}

// Rejects is the model of a processed batch's rejects file (the lake's
// rejects zone) and of tote.rejects: one row per source row version the
// transform quarantined (Kind "rejected"), or per earlier reject whose row
// then transformed (Kind "resolved", which sets only the source columns and
// raw_batch).
var Rejects = Table{Name: "rejects", Kind: Dimension, Columns: []Column{
	col("kind", Text), col("source_table", Text), col("source_id", BigInt), nullable("version", Timestamp),
	col("source_xmin", BigInt), nullable("column_name", Text), nullable("value", Text), nullable("reason", Text),
	col("raw_batch", Text),
}}

// The kinds of row in a rejects file.
const (
	Rejected = "rejected"
	Resolved = "resolved"
)
