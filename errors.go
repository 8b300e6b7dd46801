package tote

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Where says where in the pipeline something happened. A zero field is not
// known, or does not apply.
type Where struct {
	Stage Stage `json:"stage,omitempty"`
	// Batch is a lake batch id: the raw batch being written (extract) or
	// read (transform), or the processed batch being loaded (load).
	Batch string `json:"batch,omitempty"`
	// Table is a totesys table (extract, transform) or a star table (load).
	Table string `json:"table,omitempty"`
	// ID is the source row's primary key; totesys ids start at 1.
	ID int64 `json:"id,omitempty"`
	// Version is the source row version's last_updated. Messages leave it
	// out (the table, id and batch find the row); rejects and the
	// dashboard use it.
	Version time.Time `json:"version,omitzero"`
	Column  string    `json:"column,omitempty"`
	// Value is the offending value as text; nil when there is none (a
	// NULL, or an error that is not about one value). Messages quote it,
	// unless it is a whole number.
	Value *string `json:"value,omitempty"`
}

// Error is an error of the pipeline with where it happened. Callers read it
// with errors.As, or Locate; alerts, the run history and the rejects take
// their table, batch and value from it, never from the message.
//
// Who adds what: each field is added once, with At, by the layer that
// knows it, and no layer writes these fields into a message of its own:
//
//   - the code that checks a value adds Column and Value;
//   - the code that walks a table's rows adds Table, ID and Version (or
//     Table alone, for what concerns a whole table: its query, its file);
//   - a stage's loop over batches adds Batch;
//   - a stage's entry point (extract.Run, transform.Run, warehouse.Load)
//     adds Stage.
//
// Any other context ("query", "commit", a file's path) belongs to Err's own
// text, wrapped with fmt.Errorf below the Error and never above it, so that
// the message reads from the stage down to the cause and says each thing
// once: `transform raw batch 000000000003-…: sales_order 7:
// agreed_delivery_date "soon" is not a date (YYYY-MM-DD)`.
type Error struct {
	Where
	// Err is what went wrong, in words that do not repeat the fields.
	// For a Value, it reads on from the value: "is not a date".
	Err error
}

// Error says where, then what.
func (e *Error) Error() string {
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
	}
	b.WriteString(string(e.Stage))
	if e.Batch != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if zone := e.Stage.reads(); zone != "" {
			b.WriteString(zone + " ")
		}
		b.WriteString("batch " + e.Batch)
	}
	if e.Table != "" || e.ID != 0 {
		sep()
		b.WriteString(e.Table)
		if e.ID != 0 {
			if e.Table == "" {
				b.WriteString("id")
			}
			b.WriteString(" " + strconv.FormatInt(e.ID, 10))
		}
	}
	cause := "unknown error"
	if e.Err != nil {
		cause = e.Err.Error()
	}
	switch {
	case e.Column != "" && e.Value != nil:
		sep()
		b.WriteString(e.Column + " " + quote(*e.Value) + " " + cause)
	case e.Column != "":
		sep()
		b.WriteString("column " + e.Column + ": " + cause)
	default:
		sep()
		b.WriteString(cause)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// reads names the lake zone whose batches the stage's errors refer to.
func (s Stage) reads() string {
	switch s {
	case Extract, Transform:
		return "raw"
	case Load:
		return "processed"
	}
	return ""
}

// At returns err with the fields of w that it does not carry yet: if err
// carries an *Error, that Error's zero fields are filled in from w and err
// is returned as it is; otherwise err is wrapped in a new *Error. A nil err
// stays nil.
func At(err error, w Where) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Where: w, Err: err}
	}
	f := &e.Where
	if f.Stage == "" {
		f.Stage = w.Stage
	}
	if f.Batch == "" {
		f.Batch = w.Batch
	}
	if f.Table == "" {
		f.Table = w.Table
	}
	if f.ID == 0 {
		f.ID = w.ID
	}
	if f.Version.IsZero() {
		f.Version = w.Version
	}
	if f.Column == "" {
		f.Column = w.Column
	}
	if f.Value == nil {
		f.Value = w.Value
	}
	return err
}

// ValueError reports that value, in column, is wrong: reason reads on from
// the value ("is not a date (YYYY-MM-DD)"). The layers above add the table,
// id, batch and stage with At.
func ValueError(column, value, reason string) error {
	return &Error{Where: Where{Column: column, Value: &value}, Err: errors.New(reason)}
}

// Locate returns where err happened, as far as it says: the fields of the
// *Error it carries, or none.
func Locate(err error) Where {
	var e *Error
	if errors.As(err, &e) {
		return e.Where
	}
	return Where{}
}

// quote quotes a value for a message, unless it is a whole number.
func quote(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return v
	}
	return strconv.Quote(v)
}
