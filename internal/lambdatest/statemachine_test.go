package lambdatest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const definitionPath = "../../deploy/terraform/modules/tote/statemachine.asl.json"

// TestDefinitionTemplate checks, without node, what Terraform's
// templatefile() needs of the file: exactly the four variables it is given
// and no directive, and JSON once they are filled in.
func TestDefinitionTemplate(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var seen []string
	for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(text, -1) {
		seen = append(seen, m[1])
	}
	slices.Sort(seen)
	seen = slices.Compact(seen)
	want := []string{"alert_topic_arn", "environment", "extract_function_arn", "load_function_arn", "publish_after", "publish_function_arn", "transform_function_arn"}
	if !slices.Equal(seen, want) {
		t.Errorf("template variables %q, want exactly %q", seen, want)
	}
	if strings.Contains(text, "%{") {
		t.Error(`the file holds "%{", which templatefile() reads as a directive`)
	}
	for name, v := range DefaultVars() {
		text = strings.ReplaceAll(text, "${"+name+"}", v)
	}
	var def struct {
		States map[string]struct {
			Type           string
			Resource       string
			TimeoutSeconds int
			Retry          []struct{ ErrorEquals []string }
			Catch          []struct{ ErrorEquals []string }
		}
	}
	if err := json.Unmarshal([]byte(text), &def); err != nil {
		t.Fatalf("not JSON once filled in: %v", err)
	}
	for _, stage := range []string{"Extract", "Transform", "Load", "Publish"} {
		s := def.States[stage]
		if !strings.HasPrefix(s.Resource, "arn:aws:lambda:") || s.TimeoutSeconds == 0 {
			t.Errorf("%s: Resource %q, TimeoutSeconds %d; want a function ARN and a timeout", stage, s.Resource, s.TimeoutSeconds)
		}
		for _, r := range s.Retry {
			for _, e := range r.ErrorEquals {
				if e == "Fatal" || e == "States.ALL" || e == "States.Timeout" || e == "Sandbox.Timedout" || e == "States.TaskFailed" {
					t.Errorf("%s retries %s", stage, e)
				}
			}
		}
		if len(s.Catch) == 0 || !slices.Contains(s.Catch[len(s.Catch)-1].ErrorEquals, "States.ALL") {
			t.Errorf("%s does not catch States.ALL", stage)
		}
	}
}

// TestDefinitionValid runs asl-validator on the definition.
func TestDefinitionValid(t *testing.T) {
	t.Parallel()
	dir := StepFunctionsDir(t)
	def, err := filepath.Abs(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	// RunStateMachine validates too; this says so on its own, and
	// without starting any function.
	out, err := execNode(t, dir, "--import", "./polyfill.mjs", "run.mjs", "--validate-only", "--definition", def)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// stateMachine is one execution's set-up: the four stages as fixture
// functions, each under its own emulator.
type stateMachine struct {
	funcs map[string]*Function // by state name
	opts  StateMachineOptions
}

// stages starts Extract, Transform, Load and Publish, each told how to behave by
// its FIXTURE (stage name → behaviour JSON, default a plain success).
func stages(t *testing.T, behaviour map[string]string, timeout time.Duration) *stateMachine {
	t.Helper()
	StepFunctionsDir(t) // skip before building anything when node is missing
	bootstrap := fixture(t)
	sm := &stateMachine{funcs: map[string]*Function{}, opts: StateMachineOptions{Routes: map[string]string{}}}
	counters := t.TempDir()
	for _, state := range []string{"Extract", "Transform", "Load", "Publish"} {
		stage := strings.ToLower(state)
		b := behaviour[state]
		if b == "" {
			b = `{"stage":"` + stage + `"}`
		}
		f := Start(t, bootstrap, map[string]string{
			"AWS_LAMBDA_FUNCTION_NAME": "tote-" + stage,
			"TOTE_STAGE":               stage,
			"FIXTURE":                  b,
			"FIXTURE_COUNTER":          filepath.Join(counters, stage),
		}, timeout)
		sm.funcs[state] = f
		sm.opts.Routes[state] = f.URL()
	}
	return sm
}

func (sm *stateMachine) run(t *testing.T) Execution {
	t.Helper()
	e := RunStateMachine(t, sm.opts)
	t.Logf("%s in %v: states %v, invocations %v, retries %d, error %q", e.Status, e.Elapsed.Round(time.Millisecond), e.States, e.Invocations, len(e.Retries), e.Error)
	return e
}

func arn(state string) string {
	return DefaultVars()[strings.ToLower(state)+"_function_arn"]
}

func wantStates(t *testing.T, e Execution, want ...string) {
	t.Helper()
	if !slices.Equal(e.States, want) {
		t.Errorf("states %v, want %v\n%s", e.States, want, e.Log)
	}
}

func wantInvocations(t *testing.T, e Execution, sm *stateMachine, want map[string]int) {
	t.Helper()
	for state, n := range want {
		if got := e.Invocations[arn(state)]; got != n {
			t.Errorf("%s invoked %d times by the state machine, want %d", state, got, n)
		}
		if got := sm.funcs[state].Invocations(); got != n {
			t.Errorf("%s's emulator saw %d invocations, want %d", state, got, n)
		}
	}
}

// failurePath is the states a failed stage goes through to the alert.
func failurePath(stage string, parsed bool) []string {
	if parsed {
		return []string{stage + "Failed", "Describe", "ParseCause", "UseMessage", "Notify", "Failed"}
	}
	return []string{stage + "Failed", "Describe", "RawCause", "Notify", "Failed"}
}

func wantAlert(t *testing.T, e Execution, stage, errorType, message string) {
	t.Helper()
	if len(e.SNS) != 1 {
		t.Fatalf("%d messages published, want 1: %+v", len(e.SNS), e.SNS)
	}
	m := e.SNS[0]
	if m.TopicArn != DefaultVars()["alert_topic_arn"] {
		t.Errorf("published to %q", m.TopicArn)
	}
	if want := "tote dev: " + stage + " failed (" + errorType + ")"; m.Subject != want {
		t.Errorf("Subject %q, want %q", m.Subject, want)
	}
	for _, s := range []string{stage, errorType, message, "execution arn:aws:states:"} {
		if !strings.Contains(m.Message, s) {
			t.Errorf("Message %q lacks %q", m.Message, s)
		}
	}
}

const badDate = `transform: table sales_order, raw batch 000000000003-20261202T101500.000Z, id 5: column agreed_delivery_date: value "2024-13-45": not a date (YYYY-MM-DD)`

func TestStateMachine(t *testing.T) {
	t.Parallel()
	t.Run("happy path", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, nil, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, "Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Publish", "Done")
		wantInvocations(t, e, sm, map[string]int{"Extract": 1, "Transform": 1, "Load": 1, "Publish": 1})
		var out struct {
			Stage   string
			Publish struct {
				Stage string
				Input struct{ Stage string }
			}
			Input struct {
				Stage string
				Input struct{ Stage string }
			}
		}
		if err := json.Unmarshal(e.Output, &out); err != nil {
			t.Fatal(err)
		}
		// Each stage's output is the next one's input.
		if e.Status != "SUCCEEDED" || out.Stage != "load" || out.Input.Stage != "transform" || out.Input.Input.Stage != "extract" {
			t.Errorf("%s with output %s; want load's output, given transform's, given extract's", e.Status, e.Output)
		}
		// Publish's result rides beside load's, which stays the output.
		if out.Publish.Stage != "publish" || out.Publish.Input.Stage != "load" {
			t.Errorf("output %s; want publish's result, given load's output, under publish", e.Output)
		}
		if len(e.SNS) != 0 {
			t.Errorf("published %+v", e.SNS)
		}
	})

	t.Run("nothing new", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Extract": `{"stage":"extract","notNew":true}`}, 5*time.Second)
		e := sm.run(t)
		if e.Status != "SUCCEEDED" {
			t.Errorf("status %s (%s: %s)", e.Status, e.Error, e.Cause)
		}
		wantStates(t, e, "Extract", "AnythingNew", "NothingNew")
		wantInvocations(t, e, sm, map[string]int{"Extract": 1, "Transform": 0, "Load": 0})
	})

	t.Run("transient retried", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Transform": `{"stage":"transform","errorType":"Transient","errorVia":"custom","failFirst":2}`}, 5*time.Second)
		e := sm.run(t)
		if e.Status != "SUCCEEDED" {
			t.Errorf("status %s (%s: %s)", e.Status, e.Error, e.Cause)
		}
		wantStates(t, e, "Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Publish", "Done")
		wantInvocations(t, e, sm, map[string]int{"Extract": 1, "Transform": 3, "Load": 1, "Publish": 1})
		if len(e.Retries) != 2 || !slices.Contains(e.Retries[0].ErrorEquals, "Transient") {
			t.Errorf("retries %+v, want two by the Transient retrier", e.Retries)
		}
	})

	t.Run("transient exhausted", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Extract": `{"stage":"extract","errorType":"Transient","errorMessage":"extract: connect to source: connection refused"}`}, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract"}, failurePath("Extract", true)...)...)
		wantInvocations(t, e, sm, map[string]int{"Extract": 4, "Transform": 0})
		if e.Status != "FAILED" || e.Error != "Transient" || e.Cause != "extract: connect to source: connection refused" {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		wantAlert(t, e, "extract", "Transient", "connection refused")
	})

	t.Run("fatal", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Transform": `{"stage":"transform","errorType":"Fatal","errorMessage":` + quote(badDate) + `}`}, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract", "AnythingNew", "Transform"}, failurePath("Transform", true)...)...)
		wantInvocations(t, e, sm, map[string]int{"Extract": 1, "Transform": 1, "Load": 0})
		if e.Status != "FAILED" || e.Error != "Fatal" || e.Cause != badDate {
			t.Errorf("%s %q %q; want FAILED, Fatal and the function's errorMessage", e.Status, e.Error, e.Cause)
		}
		wantAlert(t, e, "transform", "Fatal", badDate)
	})

	t.Run("run in progress", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Load": `{"stage":"load","errorType":"RunInProgress","errorVia":"custom","errorMessage":"load: another execution holds the warehouse lock"}`}, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract", "AnythingNew", "Transform", "Load"}, failurePath("Load", true)...)...)
		wantInvocations(t, e, sm, map[string]int{"Load": 3})
		for _, r := range e.Retries {
			if !slices.Equal(r.ErrorEquals, []string{"RunInProgress"}) {
				t.Errorf("retried by %v, want the RunInProgress retrier", r.ErrorEquals)
			}
		}
		if e.Status != "FAILED" || e.Error != "RunInProgress" {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		wantAlert(t, e, "load", "RunInProgress", "another execution holds the warehouse lock")
	})

	t.Run("publish fails", func(t *testing.T) {
		t.Parallel()
		const msg = "publish: iceberg fact_payment: glue UpdateTable: AccessDeniedException"
		sm := stages(t, map[string]string{"Publish": `{"stage":"publish","errorType":"Fatal","errorMessage":` + quote(msg) + `}`}, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Publish"}, failurePath("Publish", true)...)...)
		wantInvocations(t, e, sm, map[string]int{"Load": 1, "Publish": 1})
		if e.Status != "FAILED" || e.Error != "Fatal" || e.Cause != msg {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		wantAlert(t, e, "publish", "Fatal", "AccessDeniedException")
	})

	t.Run("iceberg off", func(t *testing.T) {
		t.Parallel()
		// iceberg_enabled = false: Terraform fills in publish_after as off.
		sm := stages(t, nil, 5*time.Second)
		sm.opts.Vars = DefaultVars()
		sm.opts.Vars["publish_after"] = "off"
		e := sm.run(t)
		wantStates(t, e, "Extract", "AnythingNew", "Transform", "Load", "IcebergEnabled", "Done")
		wantInvocations(t, e, sm, map[string]int{"Load": 1, "Publish": 0})
		if e.Status != "SUCCEEDED" || len(e.SNS) != 0 {
			t.Errorf("%s %q %q, published %+v", e.Status, e.Error, e.Cause, e.SNS)
		}
	})

	t.Run("task timeout", func(t *testing.T) {
		t.Parallel()
		// The Task gives up before the function does: States.Timeout.
		sm := stages(t, map[string]string{"Extract": `{"stage":"extract","sleep":"3s"}`}, 10*time.Second)
		sm.opts.TaskTimeouts = map[string]int{"Extract": 1}
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract"}, failurePath("Extract", false)...)...)
		if e.Status != "FAILED" || e.Error != "States.Timeout" {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		if got := e.Invocations[arn("Extract")]; got != 1 {
			t.Errorf("Extract invoked %d times, want 1 (no retry on a timeout)", got)
		}
		wantAlert(t, e, "extract", "States.Timeout", "extract: States.Timeout")
	})

	t.Run("function timeout", func(t *testing.T) {
		t.Parallel()
		// The function runs out of its own time first: Sandbox.Timedout,
		// as Lambda reports it.
		sm := stages(t, map[string]string{"Load": `{"stage":"load","sleep":"3s"}`}, time.Second)
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract", "AnythingNew", "Transform", "Load"}, failurePath("Load", false)...)...)
		wantInvocations(t, e, sm, map[string]int{"Load": 1})
		if e.Status != "FAILED" || e.Error != "Sandbox.Timedout" || !strings.Contains(e.Cause, "Task timed out after 1.00 seconds") {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		wantAlert(t, e, "load", "Sandbox.Timedout", "Task timed out after 1.00 seconds")
	})

	t.Run("lambda unreachable", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, nil, 5*time.Second)
		sm.opts.Routes["Transform"] = "http://127.0.0.1:1/2015-03-31/functions/function/invocations"
		e := sm.run(t)
		wantStates(t, e, append([]string{"Extract", "AnythingNew", "Transform"}, failurePath("Transform", false)...)...)
		if got := e.Invocations[arn("Transform")]; got != 4 {
			t.Errorf("Transform invoked %d times, want 4 (retried as a Lambda service error)", got)
		}
		if e.Status != "FAILED" || e.Error != "Lambda.SdkClientException" {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
	})

	t.Run("output too large", func(t *testing.T) {
		t.Parallel()
		// Over 256 KiB, Step Functions fails the execution with an error
		// no Catch matches: there is no alert from the state machine.
		sm := stages(t, map[string]string{"Extract": `{"stage":"extract","pad":300000}`}, 5*time.Second)
		e := sm.run(t)
		wantStates(t, e, "Extract")
		if e.Status != "FAILED" || e.Error != "States.DataLimitExceeded" || len(e.SNS) != 0 {
			t.Errorf("%s %q %q, %d published; want FAILED, States.DataLimitExceeded, nothing published", e.Status, e.Error, e.Cause, len(e.SNS))
		}
	})

	t.Run("alert fails", func(t *testing.T) {
		t.Parallel()
		sm := stages(t, map[string]string{"Extract": `{"stage":"extract","errorType":"Fatal","errorMessage":"extract: table staff: column email_address: dropped"}`}, 5*time.Second)
		sm.opts.SNSError = "SNS.InternalErrorException"
		e := sm.run(t)
		// The execution still fails with the stage's error, not the
		// notification's.
		if e.Status != "FAILED" || e.Error != "Fatal" || e.Cause != "extract: table staff: column email_address: dropped" {
			t.Errorf("%s %q %q", e.Status, e.Error, e.Cause)
		}
		if len(e.SNS) != 4 {
			t.Errorf("%d publish attempts, want 4 (retried)", len(e.SNS))
		}
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func execNode(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "node", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
