package tote

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	// Kind says what trying again can do about the error, where the code
	// that made it knows (ValueError: Fatal); zero leaves it to Err (see
	// KindOf).
	Kind Kind
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
// A bad value is Fatal: the same row gives the same error until the
// source is fixed.
func ValueError(column, value, reason string) error {
	return &Error{Where: Where{Column: column, Value: &value}, Kind: Fatal, Err: errors.New(reason)}
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

// Kind says what trying again can do about an error. KindOf gives the kind
// of any error: it is the one retry policy, which the daemon (tote serve)
// and the Lambda functions (their errorType) both follow.
type Kind uint8

// The kinds of error. The zero Kind is none: no error, or (in an Error's
// Kind field) nothing said.
const (
	// Transient errors may pass by themselves: a dropped connection, a
	// deadlock, a server starting up, throttling. Try again with backoff.
	Transient Kind = iota + 1
	// Busy means another run got there first: it holds the warehouse's
	// run lock, or committed the batch this one was making. Nothing was
	// doubled; try again a little later.
	Busy
	// Fatal errors need a person: a drifted source schema, another source
	// than the lake's, a lake object that does not match its manifest, a
	// bad value in strict mode, a wrong password. Trying again gives the
	// same error, so alert at once and let the next scheduled run try.
	Fatal
)

// String names the kind, as logs and the Lambda's errorType say it.
func (k Kind) String() string {
	switch k {
	case Transient:
		return "Transient"
	case Busy:
		return "Busy"
	case Fatal:
		return "Fatal"
	}
	return ""
}

// Retryable reports whether trying again may help: err is Transient or
// Busy.
func Retryable(err error) bool {
	k := KindOf(err)
	return k == Transient || k == Busy
}

// kinded is an error that says its own Kind: a sentinel made by Sentinel,
// or a package's error type (extract's drift and identity errors).
type kinded interface {
	error
	ErrorKind() Kind
}

// Sentinel returns a new error with text msg that says it is of kind k,
// for a package's sentinel errors (compared with errors.Is):
//
//	var ErrCorrupt = tote.Sentinel(tote.Fatal, "lake: object does not match its manifest")
func Sentinel(k Kind, msg string) error { return &sentinel{kind: k, msg: msg} }

type sentinel struct {
	kind Kind
	msg  string
}

func (e *sentinel) Error() string   { return e.msg }
func (e *sentinel) ErrorKind() Kind { return e.kind }

// KindOf returns the kind of err, 0 if err is nil. The first of these
// that applies decides:
//
//  1. What the error says of itself: the first error in its chain (as
//     errors.As walks it) that has a kind, an *Error with Kind set or an
//     error with an ErrorKind method.
//  2. The server's word, when one answered: a database error's SQLSTATE
//     (an error with a SQLState method, as pgx's and lib/pq's have) is
//     Transient for a connection exception (class 08), a serialization
//     failure or deadlock (40001, 40P01), a lock not available (55P03),
//     a server shutting down or starting up (57P01-57P03) or too many
//     connections (53300), and Fatal otherwise, among them a failed
//     authentication (class 28). An API error (an ErrorCode method, as
//     AWS's have) is Transient for throttling or a failure on the
//     service's side (its code, or an HTTP status of 429 or 5xx), and
//     Fatal otherwise (access denied, no such bucket).
//  3. The way there: a deadline or cancellation reached downstream, a
//     network error (refused, reset, timed out, DNS), a connection that
//     dropped mid-message, or an error that says it failed before
//     anything was sent (a SafeToRetry method, as pgconn's have) or that
//     it may be retried (a RetryableError method, as AWS's have): all
//     Transient.
//  4. Anything else is Fatal: what no rule knows, a retry most likely
//     repeats, and the schedule tries again anyway.
//
// The rules see libraries' errors through the methods above, so that this
// package imports nothing but the standard library.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var k Kind
	walk(err, func(e error) bool {
		switch e := e.(type) {
		case *Error:
			k = e.Kind
		case kinded:
			k = e.ErrorKind()
		}
		return k != 0
	})
	if k != 0 {
		return k
	}
	var sql interface{ SQLState() string }
	if errors.As(err, &sql) {
		return sqlStateKind(sql.SQLState())
	}
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) && slices.Contains(transientAPICodes, api.ErrorCode()) {
		return Transient
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && (status.HTTPStatusCode() == 429 || status.HTTPStatusCode() >= 500) {
		return Transient
	}
	if api != nil {
		return Fatal
	}
	// Not net.Error: every syscall.Errno is one, a full disk included.
	var op *net.OpError
	var dns *net.DNSError
	var timeout interface{ Timeout() bool }
	var safe interface{ SafeToRetry() bool }
	var retryable interface{ RetryableError() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &op), errors.As(err, &dns), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &timeout) && timeout.Timeout(),
		errors.As(err, &safe) && safe.SafeToRetry(),
		errors.As(err, &retryable) && retryable.RetryableError():
		return Transient
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return Transient
		}
	}
	return Fatal
}

// sqlStateKind is the kind of a database error by its SQLSTATE.
func sqlStateKind(code string) Kind {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now
		"53300": // too_many_connections
		return Transient
	}
	if strings.HasPrefix(code, "08") { // connection_exception
		return Transient
	}
	return Fatal
}

// transientAPICodes are the error codes of throttling and of failures on
// the service's side: those AWS's SDK retries (its retry package's
// DefaultThrottleErrorCodes and DefaultRetryableErrorCodes; a test in
// awslambda keeps the two lists together) and S3's own.
var transientAPICodes = []string{
	// Throttling.
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
	"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
	"SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
	// Timeouts and failures on the service's side.
	"RequestTimeout", "RequestTimeoutException", "InternalError", "InternalServerError",
	"InternalServiceError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
}

// walk calls fn on err and the errors it wraps, depth first in the order
// errors.As tries them, until fn returns true.
func walk(err error, fn func(error) bool) bool {
	for err != nil {
		if fn(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, fn) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
