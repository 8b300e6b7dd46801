package awslambda

import (
	"github.com/terrifictotes/tote"
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

// Classify returns the errorType of a stage's error: tote's one retry
// policy (tote.KindOf), which tote serve follows too, named as the state
// machine expects it. tote.Transient is Transient, tote.Busy (another
// execution committed the batch first, or holds the warehouse's run lock)
// is RunInProgress, and tote.Fatal (among them a drifted source schema,
// another source than the lake's, a lake object that does not match its
// manifest, a bad value in strict mode, a failed authentication, a missing
// secret, access denied, and whatever no rule knows) is Fatal.
//
// Every bound on waiting for a part (postgres.TimeoutError and
// StallError, lake.TimeoutError) is a net.Error, and so Transient.
// A stage that runs out of the function's own time is classified by
// Handler.Invoke, not Classify: Transient if it was waiting on a part that
// did not answer, Fatal if it was working (a retry would run out of time
// again); see the package comment.
func Classify(err error) string {
	switch tote.KindOf(err) {
	case 0:
		return ""
	case tote.Transient:
		return Transient
	case tote.Busy:
		return RunInProgress
	}
	return Fatal
}
