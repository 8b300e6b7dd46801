package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultVars returns plausible values for the variables Terraform fills
// into the state machine definition: a deployment whose environment is dev.
func DefaultVars() map[string]string {
	return map[string]string{
		"extract_function_arn":   "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-extract",
		"transform_function_arn": "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-transform",
		"load_function_arn":      "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-load",
		"publish_function_arn":   "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-publish",
		"publish_after":          "load",
		"alert_topic_arn":        "arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts",
		"environment":            "dev",
	}
}

// StateMachineOptions says how RunStateMachine runs the definition.
type StateMachineOptions struct {
	// Definition is the ASL file. Default: this repository's
	// deploy/terraform/modules/tote/statemachine.asl.json.
	Definition string
	// Vars are the template variables' values. Default: DefaultVars().
	Vars map[string]string
	// Routes maps a state name or a function ARN to an invoke URL, such
	// as Function.URL(). Every Lambda Task needs one.
	Routes map[string]string
	// Input is the execution's input, marshalled to JSON. Default: {}.
	Input any
	// RetryWait replaces every retrier's interval, backoff and jitter.
	// Default: 10ms, unless RealRetryWaits keeps the definition's.
	RetryWait      time.Duration
	RealRetryWaits bool
	// TaskTimeouts replaces Task states' TimeoutSeconds (state name to
	// seconds), to reach a States.Timeout without waiting minutes.
	TaskTimeouts map[string]int
	// SNSError, if set, makes every sns:publish fail with this error.
	SNSError string
}

// Execution is one local execution, as run.mjs reports it.
type Execution struct {
	Status string          `json:"status"` // SUCCEEDED, FAILED or TIMED_OUT
	Output json.RawMessage `json:"output"` // the output of a successful execution
	Error  string          `json:"error"`  // a failed execution's error
	Cause  string          `json:"cause"`  // and cause
	// States are the states entered, in order; a retried state is
	// entered once.
	States []string `json:"states"`
	// Invocations counts the invocations of each function ARN, retries
	// included.
	Invocations map[string]int `json:"invocations"`
	Calls       []Call         `json:"calls"`
	Retries     []Retry        `json:"retries"`
	SNS         []SNSMessage   `json:"sns"`
	// Log is run.mjs's standard error: each state entered and each
	// invocation with its outcome and duration.
	Log string `json:"-"`
	// Elapsed is how long run.mjs took, node's start included.
	Elapsed time.Duration `json:"-"`
}

// Call is one invocation of a Lambda Task.
type Call struct {
	State     string `json:"state"`
	Resource  string `json:"resource"`
	Attempt   int    `json:"attempt"`
	MS        int64  `json:"ms"`
	ErrorType string `json:"errorType"`
}

// Retry is one retry of a state, by the retrier matching ErrorEquals.
type Retry struct {
	State       string   `json:"state"`
	Attempt     int      `json:"attempt"`
	ErrorEquals []string `json:"errorEquals"`
}

// SNSMessage is one sns:publish the state machine made.
type SNSMessage struct {
	State     string `json:"state"`
	TopicArn  string `json:"TopicArn"`
	Subject   string `json:"Subject"`
	Message   string `json:"Message"`
	MessageID string `json:"MessageId"`
	Error     string `json:"error"` // set when the publish failed
}

// StepFunctionsDir returns deploy/stepfunctions of the repository holding
// the working directory, skipping the test if node or that folder's
// node_modules (npm ci) is missing.
func StepFunctionsDir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := ""
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "deploy", "stepfunctions", "run.mjs")); err == nil {
			dir = filepath.Join(d, "deploy", "stepfunctions")
			break
		}
		if filepath.Dir(d) == d {
			t.Fatalf("lambdatest: no deploy/stepfunctions/run.mjs above %s", wd)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("lambdatest: no node command, so the state machine cannot run locally (it needs Node 20 or later and `npm ci` in deploy/stepfunctions)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-local-stepfunctions")); err != nil {
		t.Skipf("lambdatest: %s has no node_modules, so the state machine cannot run locally: run `npm ci` there", dir)
	}
	return dir
}

// RunStateMachine validates the state machine definition with
// asl-validator and runs one execution of it with aws-local-stepfunctions
// (deploy/stepfunctions/run.mjs, under node with polyfill.mjs), its Lambda
// Tasks sent to opts.Routes and its sns:publish recorded. A failed
// execution is an Execution with Status FAILED; an invalid definition or a
// harness error fails the test.
//
// Where this is not Step Functions: aws-local-stepfunctions gives a
// States.Timeout the Cause "States.Timeout"; ignores HeartbeatSeconds;
// has no 256 KiB limit on states' data (run.mjs applies it to the
// functions' outputs, failing with States.DataLimitExceeded as Step
// Functions does); fills the context object with only
// $$.Execution.{Id,Name,Input,StartTime} and $$.StateMachine.{Id,Name}
// (run.mjs adds the ids); and keeps no execution history. Retries wait
// RetryWait flat, without backoff or jitter, unless RealRetryWaits, when
// the library computes interval × BackoffRate^attempt capped at
// MaxDelaySeconds with FULL jitter, like Step Functions. The sns:publish
// Task is recorded, after the checks SNS makes of TopicArn, Subject and
// Message.
func RunStateMachine(t testing.TB, opts StateMachineOptions) Execution {
	t.Helper()
	dir := StepFunctionsDir(t)
	if opts.Definition == "" {
		opts.Definition = filepath.Join(dir, "..", "terraform", "modules", "tote", "statemachine.asl.json")
	}
	if opts.Vars == nil {
		opts.Vars = DefaultVars()
	}
	if opts.Input == nil {
		opts.Input = map[string]any{}
	}
	vars, err := json.Marshal(opts.Vars)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := json.Marshal(opts.Routes)
	if err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(opts.Input)
	if err != nil {
		t.Fatalf("lambdatest: state machine input: %v", err)
	}
	args := []string{"--import", "./polyfill.mjs", "run.mjs",
		"--definition", opts.Definition, "--vars", string(vars), "--routes", string(routes), "--input", string(input)}
	if !opts.RealRetryWaits {
		wait := opts.RetryWait
		if wait == 0 {
			wait = 10 * time.Millisecond
		}
		args = append(args, "--retry-interval-ms", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	states := make([]string, 0, len(opts.TaskTimeouts))
	for s := range opts.TaskTimeouts {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		args = append(args, "--timeout-seconds", fmt.Sprintf("%s=%d", s, opts.TaskTimeouts[s]))
	}
	if opts.SNSError != "" {
		args = append(args, "--sns-error", opts.SNSError)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = dir
	// The test's own TOTE_SFN_* settings would change the run.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOTE_SFN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		t.Fatalf("lambdatest: the state machine definition is invalid:\n%s", stderr.String())
	case err != nil:
		t.Fatalf("lambdatest: node run.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var e Execution
	if err := json.Unmarshal(stdout.Bytes(), &e); err != nil {
		t.Fatalf("lambdatest: run.mjs printed no execution (%v):\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	e.Log, e.Elapsed = stderr.String(), elapsed
	return e
}
