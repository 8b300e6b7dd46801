// Package awslambda owns tote as an AWS Lambda function: reading the
// function's environment, keeping the parts it opens (the lake, the
// database pools, the secrets they were opened with) across warm
// invocations, running the one stage TOTE_STAGE names, classifying its
// errors into the errorTypes the state machine retries or catches
// (Transient, Fatal, RunInProgress), and reporting what it did: a JSON
// result for the next state, JSON logs that carry the request id, and
// CloudWatch Embedded Metric Format lines on standard output.
//
// It does not own the stages: extract, transform and warehouse do the
// work, exactly as the command line runs them. Nor does it own the state
// machine or the Terraform that deploys it (deploy/terraform), or the
// binary's main (cmd/tote-lambda), which only hands Handler.Invoke to
// aws-lambda-go.
//
// # What each stage returns
//
// Every invocation accepts any JSON event (Step Functions passes the
// previous stage's output; the schedule sends {"trigger":"schedule"}) and
// returns an Output. Its New field decides whether the state machine goes
// on after Extract, so it is true whenever Transform or Load has work, not
// only when this extraction committed a batch: when the lake holds raw
// batches not yet transformed, or processed batches not yet loaded. The
// last is read from the advisory lake status object "load" (LoadStatus),
// which the load stage writes after each run.
//
// # Time
//
// A stage stops itself a little before the function's timeout (see
// Config.TimeoutMargin), so that it aborts the batch under way, reports
// and logs, rather than being killed. Either way nothing is half
// committed: a batch is committed by its manifest (lake) or its
// transaction (warehouse), and the next invocation carries on from the
// last committed one. Every wait on a part is bounded besides (connecting,
// a statement or an S3 request that stalls: Config.ConnectTimeout and
// StallTimeout), and a bound reached is Transient.
//
// A stage that runs out of time is Transient if it was waiting on a part
// that did not answer: opening it, or in a read or write on it that had
// moved nothing for a tenth of the stage's time or more (a server that
// hangs, a lock another session holds). That may pass: the state machine
// retries. It is Fatal if it was working (bytes moving, or computing): the
// work does not fit the function's timeout, a retry would run out of time
// again, and a person must raise the timeout.
package awslambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/postgres"
)

// Env is what a Handler takes from its process: the environment and the
// two output streams. Zero fields mean the process's own.
type Env struct {
	Getenv func(string) string
	// Stdout receives the Embedded Metric Format lines, Stderr the logs.
	Stdout, Stderr io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler runs one stage per invocation. Lambda invokes a function's
// environment one request at a time, and so must its callers: Invoke is
// not safe for concurrent use.
type Handler struct {
	cfg    Config
	cfgErr error
	env    Env
	log    *slog.Logger
	reqID  *requestID
	parts  *parts
	// lastDone is when the previous invocation ended: connections idle
	// for long in a frozen sandbox are not trusted (see parts.thaw).
	lastDone time.Time
	// trigger is the current invocation's event trigger.
	trigger string
}

// New returns the handler for the function whose environment env gives.
// A missing or invalid setting is not reported here but by every
// invocation, as a Fatal error naming it, so that the state machine
// alerts with the reason instead of seeing the runtime crash.
func New(env Env) *Handler {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	h := &Handler{env: env, reqID: &requestID{}}
	h.cfg, h.cfgErr = ReadConfig(env.Getenv)
	h.log = newLogger(env.Stderr, h.cfg, h.reqID)
	h.parts = newParts(h.cfg, env.Getenv, h.log)
	return h
}

// Invoke runs the function's stage once. event may be any JSON; its
// "trigger" field, if a string, is carried into the Output. A failure is
// returned as a messages.InvokeResponse_Error, whose Type is the
// errorType Lambda reports (Classify) and whose Message names the stage,
// table, batch and value where the stage knows them.
func (h *Handler) Invoke(ctx context.Context, event json.RawMessage) (Output, error) {
	start := h.env.Now()
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		h.reqID.set(lc.AwsRequestID)
	} else {
		h.reqID.set("")
	}
	defer func() { h.lastDone = h.env.Now() }()
	trigger := triggerOf(event)
	if h.cfgErr != nil {
		h.log.Error("configuration", "err", h.cfgErr)
		return Output{}, messages.InvokeResponse_Error{Type: Fatal, Message: h.cfgErr.Error()}
	}
	h.log.Debug("invocation", "trigger", trigger, "cold", h.lastDone.IsZero())
	if !h.lastDone.IsZero() {
		h.parts.thaw(start.Sub(h.lastDone))
	}
	h.parts.opening = ""

	stageCtx, cancel, margin := h.stageContext(ctx)
	defer cancel()
	h.trigger = trigger
	out, err := h.run(stageCtx, h.log, start)
	out.Stage, out.Trigger, out.Version = h.cfg.Stage, trigger, tote.Version()
	out.Seconds = seconds(h.env.Now().Sub(start))
	if err != nil {
		return Output{}, h.fail(stageCtx, ctx, err, margin, start)
	}
	out.cap()
	h.log.Info("stage complete", "new", out.New, "batches", len(out.Batches)+out.BatchesOmitted,
		"rows", out.RowsTotal, "seconds", out.Seconds)
	h.putMetrics(out, start)
	return out, nil
}

// run runs the stage.
func (h *Handler) run(ctx context.Context, log *slog.Logger, start time.Time) (Output, error) {
	switch h.cfg.Stage {
	case tote.Extract:
		return h.extract(ctx, log, start)
	case tote.Transform:
		return h.transform(ctx, log)
	case tote.Load:
		return h.load(ctx, log)
	case Verify:
		return h.verify(ctx, log)
	case tote.Publish:
		return h.publish(ctx, log)
	case Clean:
		return h.clean(ctx, log)
	}
	return Output{}, fmt.Errorf("unknown stage %q", h.cfg.Stage) // ReadConfig refuses it
}

// stageContext returns the stage's context, ending margin before the
// function's deadline, and that margin. Without a deadline it is ctx; with
// no margin (TOTE_TIMEOUT_MARGIN=0) it has no deadline, and Lambda stops
// the function at its timeout.
func (h *Handler) stageContext(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, 0
	}
	margin := h.cfg.margin(deadline.Sub(h.env.Now()))
	if margin < 0 {
		return context.WithoutCancel(ctx), func() {}, 0
	}
	c, cancel := context.WithDeadline(ctx, deadline.Add(-margin))
	return c, cancel, margin
}

// fail logs a stage's failure, drops what it may have spoilt, and returns
// the error as Lambda should report it.
func (h *Handler) fail(stageCtx, ctx context.Context, err error, margin time.Duration, start time.Time) error {
	err = tote.At(postgres.Reword(err), tote.Where{Stage: h.cfg.Stage})
	typ := Classify(err)
	msg := err.Error()
	outOfTime := errors.Is(stageCtx.Err(), context.DeadlineExceeded)
	var waitingOn string
	if outOfTime {
		took := h.env.Now().Sub(start).Round(time.Millisecond)
		stop, _ := stageCtx.Deadline()
		part, waited := h.parts.waiting(stop)
		switch {
		case h.parts.opening != "":
			waitingOn = fmt.Sprintf("waiting on the %s, which did not answer while it was being opened", h.parts.opening)
		case part != "" && waited >= max(stop.Sub(start)/10, 100*time.Millisecond):
			waitingOn = fmt.Sprintf("waiting on the %s, which had not answered for %s", part, waited.Round(time.Millisecond))
		}
		if waitingOn != "" {
			// A part that did not answer may answer next time: the
			// state machine retries.
			typ = Transient
			msg += fmt.Sprintf(" (out of time: stopped after %s, %s before the function's timeout, %s; "+
				"nothing of the batch under way is committed and the next run carries on)", took, margin.Round(time.Millisecond), waitingOn)
		} else {
			// Working, not waiting: retrying would run out of time
			// again. The next run carries on from what this one
			// committed.
			typ = Fatal
			msg += fmt.Sprintf(" (out of time: stopped after %s, %s before the function's timeout; "+
				"nothing of the batch under way is committed and the next run carries on; raise the timeout if this recurs)",
				took, margin.Round(time.Millisecond))
		}
	}
	// Connections may be broken and the secret they were opened with
	// rotated: the next invocation opens them again, reading the secrets.
	h.parts.drop()
	w := tote.Locate(err)
	h.log.Error("stage failed", "error_type", typ, "err", msg, "table", w.Table, "batch", w.Batch,
		"out_of_time", outOfTime, "waiting", waitingOn != "", "function_deadline_passed", ctx.Err() != nil)
	return messages.InvokeResponse_Error{Type: typ, Message: msg}
}

// triggerOf returns the event's "trigger" field, if it is a string.
func triggerOf(event json.RawMessage) string {
	var e struct {
		Trigger any `json:"trigger"`
	}
	if json.Unmarshal(event, &e) != nil {
		return ""
	}
	s, _ := e.Trigger.(string)
	return s
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
