package awslambda

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/warehouse"
)

// The errorTypes a failed invocation reports, as the state machine
// (deploy/terraform/modules/tote/statemachine.asl.json) expects them.
const (
	// Transient failures may pass by themselves: the state machine
	// retries them with backoff.
	Transient = "Transient"
	// RunInProgress means another execution got there first: it committed
	// the batch this one was making, or holds the warehouse's run lock.
	// The state machine retries a little later; nothing was doubled.
	RunInProgress = "RunInProgress"
	// Fatal failures need a person: bad data, a changed schema, a wrong
	// password, a missing secret. The state machine alerts at once.
	Fatal = "Fatal"
)

// Classify returns the errorType of a stage's error:
//
//   - RunInProgress: lake.ErrConflict (another execution committed the
//     batch first) and warehouse.ErrRunInProgress (another run holds the
//     warehouse's run lock).
//   - Transient: the network (refused, reset, timed out, DNS), PostgreSQL's
//     connection exceptions (SQLSTATE class 08), serialization failures
//     and deadlocks (40001, 40P01), a lock not available (55P03), a
//     server shutting down or starting up (57P01-57P03), too many
//     connections (53300); AWS throttling and server errors (SlowDown,
//     Throttling, RequestTimeout, InternalError, ServiceUnavailable, HTTP
//     5xx); a deadline or cancellation reached in a call downstream.
//   - Fatal: everything else, among it a failed authentication (28P01), a
//     drifted source schema, a lake object that does not match its
//     manifest, a bad value in strict mode, a missing secret, access denied.
//
// Every bound on waiting for a part (postgres.TimeoutError and
// StallError, lake.TimeoutError) is a net.Error, and so Transient.
// A stage that runs out of the function's own time is classified by
// Handler.Invoke, not Classify: Transient if it was waiting on a part that
// did not answer, Fatal if it was working (a retry would run out of time
// again); see the package comment.
func Classify(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, lake.ErrConflict), errors.Is(err, warehouse.ErrRunInProgress):
		return RunInProgress
	case errors.Is(err, lake.ErrCorrupt):
		return Fatal
	case transient(err):
		return Transient
	}
	return Fatal
}

func transient(err error) bool {
	// The server's word comes first: it answered, so the network did not
	// fail, and its code says whether trying again can help.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	var api smithy.APIError
	if errors.As(err, &api) && transientAPIError(api.ErrorCode()) {
		return true
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && (resp.HTTPStatusCode() == 429 || resp.HTTPStatusCode() >= 500) {
		return true
	}
	if errors.As(err, &api) {
		return false // AccessDenied, NoSuchBucket, ResourceNotFoundException, ...
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return true
		}
	}
	// A connection that failed before the server said why (no PgError):
	// the connection dropped during start-up.
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// transientSQLState reports whether a PostgreSQL error code is one that
// trying again can cure.
func transientSQLState(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection_exception
}

// transientAPIError reports whether an AWS error code means throttling or
// a failure on AWS's side.
func transientAPIError(code string) bool {
	switch code {
	case "InternalError", "InternalServerError", "InternalServiceError", "InternalFailure",
		"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException":
		return true
	}
	_, throttle := retry.DefaultThrottleErrorCodes[code]
	return throttle
}
