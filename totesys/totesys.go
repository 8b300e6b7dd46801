// Package totesys owns the source model: the eleven business tables of
// Terrific Totes' operational database (totesys), their columns with the exact
// PostgreSQL types the real database uses, their keys, and the DDL that
// creates them.
//
// Every other package that needs to know what a source table looks like
// imports it from here; nothing else defines a totesys column, nor how a
// table's rows are kept in the lake's raw zone (Table.Schema). The package
// does not read or write business rows (see seed, simulate and extract); it
// only creates, drops and inspects the schema.
//
// The quirks of the real schema are kept on purpose: agreed dates are text
// ('YYYY-MM-DD'), money is numeric(10,2), payment_type_name and
// transaction_type are enums, created_at and last_updated are timestamp(3)
// without time zone, and a Prisma bookkeeping table (_prisma_migrations)
// sits beside the business tables and is never extracted.
package totesys

import "fmt"

// Type is a column's PostgreSQL type as the catalog spells it
// (format_type(atttypid, atttypmod)).
type Type string

// The column types that occur in totesys.
const (
	Integer         Type = "integer"
	Text            Type = "text"
	Money           Type = "numeric(10,2)"
	Boolean         Type = "boolean"
	Timestamp       Type = "timestamp(3) without time zone"
	PaymentTypeName Type = `"PaymentTypeName"`
	TransactionType Type = `"TransactionType"`
)

// Enum values, in the order the database declares them.
var (
	PaymentTypeNames = []string{"SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"}
	TransactionTypes = []string{"SALE", "PURCHASE"}
)

// Column is one column of a source table.
type Column struct {
	Name     string
	Type     Type
	Nullable bool
}

// ForeignKey says that Column references the primary key of Table.
type ForeignKey struct {
	Column string
	Table  string
}

// Table is one totesys business table. Its first column is the integer
// primary key; the last two are created_at and last_updated.
type Table struct {
	Name        string
	Columns     []Column
	Unique      []string     // columns with a UNIQUE constraint, besides the key
	ForeignKeys []ForeignKey // declared foreign keys
}

// Key is the name of the table's primary key column.
func (t Table) Key() string { return t.Columns[0].Name }

// Column returns the named column and whether the table has it.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// ColumnNames returns the table's column names in declaration order.
func (t Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// CreatedAt and LastUpdated are the stamp columns every table ends with.
const (
	CreatedAt   = "created_at"
	LastUpdated = "last_updated"
)

// MigrationsTable is Prisma's bookkeeping table: in the schema, never extracted.
const MigrationsTable = "_prisma_migrations"

func table(name string, cols ...Column) Table {
	all := make([]Column, 0, len(cols)+2)
	all = append(all, cols...)
	all = append(all, Column{CreatedAt, Timestamp, false}, Column{LastUpdated, Timestamp, false})
	return Table{Name: name, Columns: all}
}

func col(name string, t Type) Column      { return Column{Name: name, Type: t} }
func nullable(name string, t Type) Column { return Column{Name: name, Type: t, Nullable: true} }

func (t Table) withUnique(cols ...string) Table { t.Unique = cols; return t }
func (t Table) withFK(fks ...ForeignKey) Table  { t.ForeignKeys = fks; return t }

// Tables lists the business tables in an order that respects their foreign
// keys: every table comes after the tables it references.
var Tables = []Table{
	table("address",
		col("address_id", Integer), col("address_line_1", Text), nullable("address_line_2", Text),
		nullable("district", Text), col("city", Text), col("postal_code", Text), col("country", Text),
		col("phone", Text)),
	table("counterparty",
		col("counterparty_id", Integer), col("counterparty_legal_name", Text), col("legal_address_id", Integer),
		nullable("commercial_contact", Text), nullable("delivery_contact", Text)).
		withFK(ForeignKey{"legal_address_id", "address"}),
	table("currency", col("currency_id", Integer), col("currency_code", Text)),
	table("department",
		col("department_id", Integer), col("department_name", Text), nullable("location", Text),
		nullable("manager", Text)),
	table("design",
		col("design_id", Integer), col("design_name", Text), col("file_location", Text), col("file_name", Text)),
	table("staff",
		col("staff_id", Integer), col("first_name", Text), col("last_name", Text), col("department_id", Integer),
		col("email_address", Text)).
		withFK(ForeignKey{"department_id", "department"}),
	table("payment_type", col("payment_type_id", Integer), col("payment_type_name", PaymentTypeName)),
	table("sales_order",
		col("sales_order_id", Integer), col("design_id", Integer), col("staff_id", Integer),
		col("counterparty_id", Integer), col("units_sold", Integer), col("unit_price", Money),
		col("currency_id", Integer), col("agreed_delivery_date", Text), col("agreed_payment_date", Text),
		col("agreed_delivery_location_id", Integer)).
		withFK(ForeignKey{"agreed_delivery_location_id", "address"}),
	table("purchase_order",
		col("purchase_order_id", Integer), col("staff_id", Integer), col("counterparty_id", Integer),
		col("item_code", Text), col("item_quantity", Integer), col("item_unit_price", Money),
		col("currency_id", Integer), col("agreed_delivery_date", Text), col("agreed_payment_date", Text),
		col("agreed_delivery_location_id", Integer)).
		withFK(ForeignKey{"agreed_delivery_location_id", "address"}),
	table("transaction",
		col("transaction_id", Integer), col("transaction_type", TransactionType),
		nullable("sales_order_id", Integer), nullable("purchase_order_id", Integer)).
		withUnique("sales_order_id", "purchase_order_id"),
	table("payment",
		col("payment_id", Integer), col("transaction_id", Integer), col("counterparty_id", Integer),
		col("payment_amount", Money), col("currency_id", Integer), col("payment_type_id", Integer),
		col("paid", Boolean), col("payment_date", Text), col("company_ac_number", Integer),
		col("counterparty_ac_number", Integer)).
		withUnique("transaction_id").
		withFK(ForeignKey{"transaction_id", "transaction"}),
}

// Lookup returns the business table with the given name.
func Lookup(name string) (Table, error) {
	for _, t := range Tables {
		if t.Name == name {
			return t, nil
		}
	}
	return Table{}, fmt.Errorf("totesys: no table %q in the source model", name)
}

// TableNames returns the business table names in dependency order.
func TableNames() []string {
	names := make([]string, len(Tables))
	for i, t := range Tables {
		names[i] = t.Name
	}
	return names
}
