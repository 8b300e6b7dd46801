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
// # Deletions
//
// A source row that the extraction finds deleted is history, not a gap:
// every fact and every dimension made from a source (all but the
// calendar) has IsDeleted, false on every row made from a source row. A
// fact gets one more version for the deletion, with the row's last values,
// last_updated_date and last_updated_time the time the deletion was seen,
// and IsDeleted true; the warehouse makes it, from the newest version it
// holds, when it loads the batch's Deletions (the transform knows the
// deleted id, not the row's last values). A dimension keeps a deleted
// entity's row, which facts refer to, flagged. A fact's CurrentView is its
// newest version of every source id, deleted ids left out: what figures
// count.
//
// The package holds no rows and does no I/O.
package star

import (
	"fmt"
	"slices"
	"strings"

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

// Conversion is how a star column's value is made from its source.
type Conversion int

// The conversions. Each takes one source value (Column.From) unless it
// says otherwise; a NULL stays NULL.
const (
	// Copy takes the value as it is: integer, money, boolean, text, or an
	// enum as its text.
	Copy Conversion = iota
	// DateOf is the date of a timestamp, TimeOf its time of day.
	DateOf
	TimeOf
	// ParseDate parses a text date, 'YYYY-MM-DD'.
	ParseDate
	// CurrencyName is the ISO 4217 English name of a currency code.
	CurrencyName
	// Xmin is the 32-bit id of the transaction that wrote the source row
	// version (From is empty).
	Xmin
	// Batch is the id of the processed batch that brings the row (From is
	// empty).
	Batch
	// Calendar is one part of a date_id's calendar (dim_date's columns,
	// named after the part: year, month, day_name, …; From is empty).
	Calendar
	// Deleted says whether the row records the deletion of its source row:
	// false for a row made from a source row, true on a fact's deletion
	// version and on a deleted entity's dimension row (From is empty).
	Deleted
)

var conversionNames = [...]string{"copy", "date of", "time of", "parse date", "currency name", "xmin", "batch", "calendar", "deleted"}

func (c Conversion) String() string {
	if int(c) < len(conversionNames) {
		return conversionNames[c]
	}
	return fmt.Sprintf("Conversion(%d)", int(c))
}

// Column is one column of a star table: its name and type, and how its
// value is made.
type Column struct {
	Name     string
	Type     Type
	Nullable bool
	// From is the source column the value is made from: a column of the
	// table's Source, or "table.column" of one of its Joins. Empty for a
	// conversion that takes no source value (Xmin, Batch, Calendar).
	From string
	Conv Conversion
	// References names the dimension whose key the values are (a fact's
	// foreign keys); empty if none.
	References string
	// Comment says what the column means, for the warehouse's COMMENT ON
	// and the docs.
	Comment string
}

// FromTable splits From into the source table it reads, given the star
// table's Source, and the column.
func (c Column) FromTable(source string) (table, column string) {
	if t, col, ok := strings.Cut(c.From, "."); ok {
		return t, col
	}
	return source, c.From
}

// Kind tells facts from dimensions.
type Kind int

// The kinds of table.
const (
	Dimension Kind = iota // holds the current state of each entity: upsert by Key
	Fact                  // keeps history: one row per source row version
)

// Join is a lookup: the row of Table whose key is in column On of the star
// table's Source. A dimension that joins follows changes on either side
// (renaming a department changes dim_staff rows of every staff member in
// it).
type Join struct {
	Table string // a totesys table
	On    string // the Source column holding Table's key
}

// Table is one table of the star schema.
type Table struct {
	Name string
	Kind Kind
	// Source is the totesys table whose rows make this table's: a fact
	// row per source row version, a dimension row per entity. Empty for
	// dim_date, which is made of the dates the facts refer to.
	Source string
	// Joins are the lookups the table's columns read besides Source.
	Joins []Join
	// Surrogate is a fact's SERIAL primary key, made by the warehouse.
	// The warehouse numbers each batch's new versions after the largest,
	// so of an id's versions the newest has the largest.
	Surrogate string
	// Key identifies a row: a dimension's primary key, or a fact's source
	// row version (source id, last_updated_date, last_updated_time,
	// source_xmin), which the warehouse keeps unique so a repeated version
	// adds nothing.
	Key []string
	// Columns are the table's columns in the lake and the warehouse, less Surrogate.
	Columns []Column
	// Comment says what a row of the table is.
	Comment string
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

// ID is the name of the column holding the source row's id: a
// dimension's key, a fact's source id (the first column).
func (t Table) ID() string { return t.Columns[0].Name }

// CurrentView is the name of a fact's view of its current versions: the
// newest version of every source id, deleted ids left out. Empty for a
// dimension, which holds only current rows.
func (t Table) CurrentView() string {
	if t.Kind != Fact {
		return ""
	}
	return t.Name + "_current"
}

// References returns the columns that hold another table's key, in
// column order.
func (t Table) References() []Column {
	var out []Column
	for _, c := range t.Columns {
		if c.References != "" {
			out = append(out, c)
		}
	}
	return out
}

// SourceTables returns the totesys tables the table is made from: Source,
// then its Joins' tables. None for dim_date.
func (t Table) SourceTables() []string {
	if t.Source == "" {
		return nil
	}
	out := []string{t.Source}
	for _, j := range t.Joins {
		out = append(out, j.Table)
	}
	return out
}

// JoinSources returns the totesys tables on either side of a Join: the
// Source of every table that joins and every table joined, in the order
// Tables first names them, each once. A table that joins is made from the
// current rows of these, so the transform keeps them from batch to batch.
func JoinSources() []string {
	var out []string
	for _, t := range Tables {
		if len(t.Joins) == 0 {
			continue
		}
		for _, s := range t.SourceTables() {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// ColumnsRead returns the columns of totesys table source that the star
// reads: those its columns are made from (From), in the tables made from
// source or joining it, and the On of the joins of tables made from
// source; in the order Tables first names them, each once. The source's
// key and stamps are not among them unless a column is made from them.
func ColumnsRead(source string) []string {
	var out []string
	add := func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, t := range Tables {
		if !slices.Contains(t.SourceTables(), source) {
			continue
		}
		for _, c := range t.Columns {
			if c.From == "" {
				continue
			}
			if table, name := c.FromTable(t.Source); table == source {
				add(name)
			}
		}
		if t.Source == source {
			for _, j := range t.Joins {
				add(j.On)
			}
		}
	}
	return out
}

// column makes a column named name of type t from the source column of the
// same name, copied.
func column(name string, t Type, comment string) Column {
	return Column{Name: name, Type: t, From: name, Comment: comment}
}

// from sets the source column; conv, if given, the conversion.
func (c Column) from(src string, conv ...Conversion) Column {
	c.From = src
	if len(conv) > 0 {
		c.Conv = conv[0]
	}
	return c
}

func (c Column) null() Column                 { c.Nullable = true; return c }
func (c Column) references(dim string) Column { c.References = dim; return c }

// derived makes a column that takes no source value.
func derived(name string, t Type, conv Conversion, comment string) Column {
	return Column{Name: name, Type: t, Conv: conv, Comment: comment}
}

// dim makes a dimension table: cols, then, if it is made from a source,
// whether its entity was deleted there.
func dim(name, source, comment string, cols ...Column) Table {
	if source != "" {
		cols = append(cols, derived(IsDeleted, Boolean, Deleted,
			"Whether the "+strings.ReplaceAll(source, "_", " ")+" was deleted in totesys: its row stays, with the last values it had, for the facts that refer to it."))
	}
	return Table{Name: name, Kind: Dimension, Source: source, Key: []string{cols[0].Name}, Columns: cols, Comment: comment}
}

func (t Table) joins(js ...Join) Table { t.Joins = js; return t }

// The columns every fact ends with: where the version came from.
const (
	// SourceXmin is the xmin of the source row version: the 32-bit id of
	// the transaction that wrote it, as PostgreSQL shows it. With the
	// source id and last_updated it identifies the version, even one whose
	// writer did not move last_updated on. It is 0 on a deletion version;
	// a version that came back after its deletion unchanged (a source
	// restored from a physical copy) has it raised by 2^32 (see package
	// warehouse).
	SourceXmin = "source_xmin"
	// BatchID is the processed batch that brought the version. Batches are
	// numbered in the order their versions became visible in the source,
	// so a row's versions are in order of batch_id whatever their stamps.
	BatchID = "batch_id"
	// IsDeleted is the column made by Deleted, on every table made from a
	// source (see the package comment).
	IsDeleted = "is_deleted"
	// LastUpdatedDate and LastUpdatedTime are a fact version's stamp: when
	// it was written, or, on a deletion version, when the deletion was seen.
	LastUpdatedDate = "last_updated_date"
	LastUpdatedTime = "last_updated_time"
)

// fact makes a fact table: the source id, the version's stamps split into
// dates and times, cols, then where the version came from.
func fact(name, source, surrogate, id, comment string, cols ...Column) Table {
	all := []Column{
		column(id, Integer, "The "+strings.ReplaceAll(source, "_", " ")+"'s id in totesys; every version of the row has it."),
		column("created_date", Date, "The day the source row was created.").from("created_at", DateOf).references("dim_date"),
		column("created_time", Time, "The time of day the source row was created.").from("created_at", TimeOf),
		column(LastUpdatedDate, Date, "The day this version was written (a deletion: the day it was seen).").from("last_updated", DateOf).references("dim_date"),
		column(LastUpdatedTime, Time, "The time of day this version was written (a deletion: when it was seen).").from("last_updated", TimeOf),
	}
	all = append(all, cols...)
	all = append(all,
		derived(SourceXmin, BigInt, Xmin, "The id of the source transaction that wrote this version (32-bit xmin); 0 on a deletion."),
		derived(BatchID, Text, Batch, "The tote lake batch that brought this version; batches are in the order versions became visible."),
		derived(IsDeleted, Boolean, Deleted, "Whether this version records the deletion of the "+strings.ReplaceAll(source, "_", " ")+
			" in totesys: true on that version only, which keeps the row's last values."))
	return Table{Name: name, Kind: Fact, Source: source, Surrogate: surrogate,
		Key: []string{id, LastUpdatedDate, LastUpdatedTime, SourceXmin}, Columns: all, Comment: comment}
}

// Tables lists the star schema, dimensions before facts (the order in
// which a batch is loaded).
var Tables = []Table{
	dim("dim_date", "", "One row per calendar day that a fact refers to.",
		derived("date_id", Date, Calendar, "The day."),
		derived("year", Integer, Calendar, "The year, e.g. 2024."),
		derived("month", Integer, Calendar, "The month, 1 to 12."),
		derived("day", Integer, Calendar, "The day of the month, 1 to 31."),
		derived("day_of_week", Integer, Calendar, "The ISO day of the week: 1 Monday to 7 Sunday."),
		derived("day_name", Text, Calendar, "The day's English name, e.g. Monday."),
		derived("month_name", Text, Calendar, "The month's English name, e.g. January."),
		derived("quarter", Integer, Calendar, "The calendar quarter, 1 to 4.")),
	dim("dim_staff", "staff", "A member of staff, with their department as it is now.",
		column("staff_id", Integer, "The staff member's id in totesys."),
		column("first_name", Text, "First name."),
		column("last_name", Text, "Last name."),
		column("department_name", Text, "The name of the staff member's department.").from("department.department_name"),
		column("location", Text, "Where the department is (as totesys spells it).").from("department.location").null(),
		column("email_address", Text, "Work email address.")).
		joins(Join{Table: "department", On: "department_id"}),
	dim("dim_location", "address", "An address: a delivery location, or a counterparty's legal address.",
		column("location_id", Integer, "The address's id in totesys.").from("address_id"),
		column("address_line_1", Text, "First line of the address."),
		column("address_line_2", Text, "Second line of the address, if any.").null(),
		column("district", Text, "District, if any.").null(),
		column("city", Text, "City."),
		column("postal_code", Text, "Postal code."),
		column("country", Text, "Country."),
		column("phone", Text, "Telephone number.")),
	dim("dim_design", "design", "A tote bag design.",
		column("design_id", Integer, "The design's id in totesys."),
		column("design_name", Text, "The design's name."),
		column("file_location", Text, "Where the design's file is kept."),
		column("file_name", Text, "The design's file name.")),
	dim("dim_currency", "currency", "A currency.",
		column("currency_id", Integer, "The currency's id in totesys."),
		column("currency_code", Text, "ISO 4217 code, e.g. GBP."),
		column("currency_name", Text, "ISO 4217 English name, e.g. Pound Sterling.").from("currency_code", CurrencyName)),
	dim("dim_counterparty", "counterparty", "A counterparty (customer or supplier), with its legal address as it is now.",
		column("counterparty_id", Integer, "The counterparty's id in totesys."),
		column("counterparty_legal_name", Text, "The counterparty's legal name."),
		column("counterparty_legal_address_line_1", Text, "First line of the legal address.").from("address.address_line_1"),
		column("counterparty_legal_address_line_2", Text, "Second line of the legal address, if any.").from("address.address_line_2").null(),
		column("counterparty_legal_district", Text, "District of the legal address, if any.").from("address.district").null(),
		column("counterparty_legal_city", Text, "City of the legal address.").from("address.city"),
		column("counterparty_legal_postal_code", Text, "Postal code of the legal address.").from("address.postal_code"),
		column("counterparty_legal_country", Text, "Country of the legal address.").from("address.country"),
		column("counterparty_legal_phone_number", Text, "Telephone number at the legal address.").from("address.phone")).
		joins(Join{Table: "address", On: "legal_address_id"}),
	dim("dim_transaction", "transaction", "A transaction: a sale or a purchase, with its order.",
		column("transaction_id", Integer, "The transaction's id in totesys."),
		column("transaction_type", Text, "SALE or PURCHASE."),
		column("sales_order_id", Integer, "The sales order of a SALE.").null(),
		column("purchase_order_id", Integer, "The purchase order of a PURCHASE.").null()),
	dim("dim_payment_type", "payment_type", "A kind of payment.",
		column("payment_type_id", Integer, "The payment type's id in totesys."),
		column("payment_type_name", Text, "SALES_RECEIPT, SALES_REFUND, PURCHASE_PAYMENT or PURCHASE_REFUND.")),
	fact("fact_sales_order", "sales_order", "sales_record_id", "sales_order_id",
		"One version of a sales order: every change to an order adds a row.",
		column("sales_staff_id", Integer, "The member of staff who made the sale.").from("staff_id").references("dim_staff"),
		column("counterparty_id", Integer, "The customer.").references("dim_counterparty"),
		column("units_sold", Integer, "Units sold."),
		column("unit_price", Money, "Price per unit, in the order's currency."),
		column("currency_id", Integer, "The order's currency.").references("dim_currency"),
		column("design_id", Integer, "The design sold.").references("dim_design"),
		column("agreed_payment_date", Date, "The day payment is agreed for.").from("agreed_payment_date", ParseDate).references("dim_date"),
		column("agreed_delivery_date", Date, "The day delivery is agreed for.").from("agreed_delivery_date", ParseDate).references("dim_date"),
		column("agreed_delivery_location_id", Integer, "Where the order is delivered.").references("dim_location")),
	fact("fact_purchase_order", "purchase_order", "purchase_record_id", "purchase_order_id",
		"One version of a purchase order: every change to an order adds a row.",
		column("staff_id", Integer, "The member of staff who placed the order.").references("dim_staff"),
		column("counterparty_id", Integer, "The supplier.").references("dim_counterparty"),
		column("item_code", Text, "The supplier's code for the item."),
		column("item_quantity", Integer, "Quantity ordered."),
		column("item_unit_price", Money, "Price per item, in the order's currency."),
		column("currency_id", Integer, "The order's currency.").references("dim_currency"),
		column("agreed_delivery_date", Date, "The day delivery is agreed for.").from("agreed_delivery_date", ParseDate).references("dim_date"),
		column("agreed_payment_date", Date, "The day payment is agreed for.").from("agreed_payment_date", ParseDate).references("dim_date"),
		column("agreed_delivery_location_id", Integer, "Where the order is delivered.").references("dim_location")),
	fact("fact_payment", "payment", "payment_record_id", "payment_id",
		"One version of a payment: every change (a payment marked paid, say) adds a row.",
		column("transaction_id", Integer, "The transaction paid.").references("dim_transaction"),
		column("counterparty_id", Integer, "The counterparty paid or paying.").references("dim_counterparty"),
		column("payment_amount", Money, "The amount, in the payment's currency."),
		column("currency_id", Integer, "The payment's currency.").references("dim_currency"),
		column("payment_type_id", Integer, "The kind of payment.").references("dim_payment_type"),
		column("paid", Boolean, "Whether the payment has been made."),
		column("payment_date", Date, "The day of payment.").from("payment_date", ParseDate).references("dim_date")),
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

// col and nullable make the columns of tote's own tables, which have no
// source.
func col(name string, t Type) Column      { return Column{Name: name, Type: t} }
func nullable(name string, t Type) Column { return Column{Name: name, Type: t, Nullable: true} }

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

// Deletions is the model of a processed batch's deletions file: one row
// per row of a star table made from a source row that the extraction found
// deleted (a raw batch's tombstone, totesys.DeletedFile, for each table
// made from its source table), with the time the deletion was seen split
// as a fact's stamp is. The load makes them into deletion versions and
// flags (see the package comment).
var Deletions = Table{Name: "tote_deleted", Kind: Dimension, Columns: []Column{
	col("star_table", Text), col("id", Integer), col("seen_date", Date), col("seen_time", Time),
}}

// The kinds of row in a rejects file.
const (
	Rejected = "rejected"
	Resolved = "resolved"
)
