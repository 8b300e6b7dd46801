package lambdatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// invokePath is the Invoke API's path; RIE serves it for the one function
// it runs, whatever the name.
const invokePath = "/2015-03-31/functions/function/invocations"

// Function is a Lambda binary running under the Runtime Interface
// Emulator, as one Lambda execution environment: invocations run one at a
// time, the process stays warm between them, and a timeout or a crash
// restarts it on the next invocation.
type Function struct {
	name    string
	timeout time.Duration
	rieURL  string
	client  *http.Client
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the emulator exits
	logs    *logBuffer
	proxy   *httptest.Server

	// sem serializes invocations: RIE crashes (a nil pointer panic in
	// rapidcore) when a second one arrives while one is running. It is a
	// channel, not a mutex, so that waiting for it respects a context.
	sem         chan struct{}
	invocations int // guarded by sem
}

// Result is one invocation as Lambda's Invoke API reports it.
type Result struct {
	// Payload is the function's response. For a function error it is the
	// error document, {"errorMessage": ..., "errorType": ...}, as Lambda
	// returns it; for a timeout, the document real Lambda returns
	// (RIE itself answers with plain text).
	Payload []byte
	// ErrorType is empty on success; otherwise the function's errorType,
	// "Sandbox.Timedout" when the function ran out of time, or the
	// runtime's own ("Runtime.ExitError") when the process died.
	ErrorType string
	// ErrorMessage is the error's errorMessage.
	ErrorMessage string
	// RequestID is the invocation's request id, as the function saw it.
	RequestID string
	// Duration is the invoke's wall-clock time, as a caller sees it.
	Duration time.Duration
	// Cold reports whether the runtime process was started for this
	// invocation: the first one, and the first after a timeout or a crash.
	Cold bool
	// Logs is what the emulator and the function printed for this
	// invocation, from RIE's START line to its REPORT line.
	Logs string
}

// Failed reports whether the invocation ended in a function error.
func (r Result) Failed() bool { return r.ErrorType != "" }

// Start runs bootstrapPath under the emulator on free loopback ports and
// stops it when the test ends. The function's environment is Lambda's
// (AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, dummy credentials, TZ=:UTC, …),
// not the test's, with env on top; AWS_LAMBDA_FUNCTION_NAME in env names
// the function. timeout becomes AWS_LAMBDA_FUNCTION_TIMEOUT, in whole
// seconds rounded up, as RIE reads it.
//
// Where RIE is not Lambda: it forwards its whole environment to the
// function (so Start gives it only the variables above); it does not
// freeze the process between invocations, applies no memory limit and
// runs as the test's user on a writable file system; it crashes on
// concurrent invocations (Invoke serializes them); it reports a function
// error with no X-Amz-Function-Error header, a timeout as the plain text
// "Task timed out after N.00 seconds" and a dead runtime as a 502 (Invoke
// and URL answer as Lambda does); after a timeout it SIGKILLs the runtime
// and starts a new one on the next invocation, whose REPORT line, unlike
// Lambda's, has no Init Duration (Result.Cold reads RIE's INIT lines
// instead). The 6 MB response limit it does apply (Function.ResponseSizeTooLarge).
func Start(t testing.TB, bootstrapPath string, env map[string]string, timeout time.Duration) *Function {
	t.Helper()
	rie := RIE(t)
	bootstrap, err := filepath.Abs(bootstrapPath)
	if err != nil {
		t.Fatalf("lambdatest: bootstrap: %v", err)
	}
	if fi, err := os.Stat(bootstrap); err != nil || fi.IsDir() || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("lambdatest: %s is not an executable file (err %v)", bootstrap, err)
	}
	seconds := max(1, int(math.Ceil(timeout.Seconds())))
	name := env["AWS_LAMBDA_FUNCTION_NAME"]
	if name == "" {
		name = "tote-test"
	}
	vars := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"LAMBDA_TASK_ROOT":                filepath.Dir(bootstrap),
		"AWS_REGION":                      "eu-west-2",
		"AWS_DEFAULT_REGION":              "eu-west-2",
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "lambdatest",
		// Dummy credentials and no shared config, so that nothing the
		// function does reaches for the developer's AWS account.
		"AWS_ACCESS_KEY_ID":           "AKIDLAMBDATEST",
		"AWS_SECRET_ACCESS_KEY":       "lambdatest",
		"AWS_SESSION_TOKEN":           "lambdatest",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	for k, v := range env {
		vars[k] = v
	}
	vars["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(seconds)
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}

	f := &Function{
		name:    name,
		timeout: time.Duration(seconds) * time.Second,
		// RIE enforces the function's timeout; the client's is a backstop
		// against the emulator itself hanging.
		client: &http.Client{Timeout: time.Duration(seconds)*time.Second + time.Minute},
		sem:    make(chan struct{}, 1),
	}
	// Free ports are picked, released and handed to RIE, so another
	// process may take one in between: try again with new ones.
	var lastErr error
	for range 3 {
		if lastErr = f.start(rie, bootstrap, environ); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("lambdatest: start %s under the emulator: %v", name, lastErr)
	}
	f.proxy = httptest.NewServer(http.HandlerFunc(f.serveInvoke))
	t.Cleanup(func() {
		f.stop()
		f.proxy.Close()
		if t.Failed() {
			t.Logf("lambdatest: %s's log (emulator and function):\n%s", name, tail(f.Logs(), 16<<10))
		}
	})
	return f
}

func (f *Function) start(rie, bootstrap string, environ []string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	f.logs = &logBuffer{}
	// RIE's Runtime API would listen on 127.0.0.1:9001 by default, which
	// two emulators cannot share; --log-level info keeps the INIT lines
	// that tell a cold start, whatever LOG_LEVEL the function is given.
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		"--log-level", "info",
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = environ
	cmd.Stdout = f.logs
	cmd.Stderr = f.logs
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if listens(cmd.Process.Pid, ports[0]) {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("the emulator exited (%v):\n%s", cmd.ProcessState, f.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			kill(cmd)
			<-exited
			return fmt.Errorf("the emulator did not listen on %s within 10s:\n%s", addr, f.logs.String())
		}
	}
	f.cmd, f.exited, f.rieURL = cmd, exited, "http://"+addr+invokePath
	return nil
}

// stop ends the emulator and the function's process: SIGTERM first, on
// which RIE stops the function as Lambda does at shutdown, then SIGKILL.
func (f *Function) stop() {
	terminate(f.cmd)
	select {
	case <-f.exited:
	case <-time.After(3 * time.Second):
	}
	kill(f.cmd)
	<-f.exited
}

// Name is the function's name, AWS_LAMBDA_FUNCTION_NAME.
func (f *Function) Name() string { return f.name }

// URL is an invoke URL for the function that behaves like Lambda's Invoke
// API (a function error sets X-Amz-Function-Error: Unhandled, a timeout
// answers with Lambda's error document) and shares Invoke's serialization,
// so that other processes, such as the local state machine, can invoke
// it safely.
func (f *Function) URL() string { return f.proxy.URL + invokePath }

// Logs returns everything the emulator and the function have printed so
// far: RIE's START/END/REPORT lines and the function's stdout and stderr,
// EMF lines included.
func (f *Function) Logs() string { return f.logs.String() }

// Invocations returns how many invocations have been sent to the function.
func (f *Function) Invocations() int {
	f.sem <- struct{}{}
	defer func() { <-f.sem }()
	return f.invocations
}

// Invoke invokes the function with payload and waits for its answer. A
// function error is a Result with ErrorType set, not an error; the error
// is for the emulator failing. Invocations of one Function run one at a
// time (RIE crashes on concurrent ones); if ctx ends first, Invoke returns
// at once but the next invocation still waits for this one to finish.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	f.invocations++
	type outcome struct {
		r   Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() { <-f.sem }()
		r, err := f.invoke(payload)
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		return o.r, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

var (
	timedOut = regexp.MustCompile(`^Task timed out after [0-9.]+ seconds$`)
	initLine = regexp.MustCompile(`\bINIT (START|RTDONE|REPORT)\b`)
)

func (f *Function) invoke(payload []byte) (Result, error) {
	id := newRequestID()
	req, err := http.NewRequest(http.MethodPost, f.rieURL, bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	// RIE uses the caller's request id, so its log lines can be found.
	req.Header.Set("X-Amzn-RequestId", id)
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoke %s: %w\nlog:\n%s", f.name, err, tail(f.Logs(), 4<<10))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := Result{RequestID: id, Duration: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("invoke %s: read response: %w", f.name, err)
	}
	// RIE prints its REPORT line for a response or a timeout, not for a
	// runtime that died.
	wait := 2 * time.Second
	if resp.StatusCode != http.StatusOK {
		wait = 100 * time.Millisecond
	}
	r.Logs = f.logs.request(id, wait)
	// RIE's INIT lines come with the first invocation of a process; under
	// load INIT START may be printed before the request's START line, but
	// INIT RTDONE and INIT REPORT come after it.
	r.Cold = initLine.MatchString(r.Logs)

	var doc errorDocument
	switch {
	case resp.StatusCode == http.StatusOK && timedOut.Match(bytes.TrimSpace(body)):
		r.ErrorType = "Sandbox.Timedout"
		r.ErrorMessage = "RequestId: " + id + " Error: " + string(bytes.TrimSpace(body))
		r.Payload, _ = json.Marshal(errorDocument{Type: r.ErrorType, Message: r.ErrorMessage})
	case (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusBadGateway) && doc.parse(body):
		// 200 for an error the function returned, 502 for a runtime
		// that died (Runtime.ExitError); real Lambda answers 200 to both.
		r.ErrorType, r.ErrorMessage, r.Payload = doc.Type, doc.Message, body
	case resp.StatusCode == http.StatusOK:
		r.Payload = body
	default:
		return r, fmt.Errorf("invoke %s: the emulator answered %s: %s\nlog:\n%s", f.name, resp.Status, body, tail(f.Logs(), 4<<10))
	}
	return r, nil
}

// errorDocument is Lambda's function error payload.
type errorDocument struct {
	Message    string          `json:"errorMessage"`
	Type       string          `json:"errorType"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

// parse reports whether body is an error document and nothing else. RIE
// does not say whether a response is an error, so a successful response
// of exactly this shape would be taken for one.
func (d *errorDocument) parse(body []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return false
	}
	for k := range fields {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" {
			return false
		}
	}
	return json.Unmarshal(body, d) == nil && d.Type != ""
}

// serveInvoke is URL's handler: Invoke behind Lambda's Invoke API.
func (f *Function) serveInvoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/invocations") {
		http.Error(w, "lambdatest: POST "+invokePath, http.StatusNotFound)
		return
	}
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	res, err := f.Invoke(r.Context(), payload)
	if err != nil {
		// What Lambda answers when the service itself fails.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "ServiceException")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"Type": "Service", "message": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.Header().Set("X-Amzn-RequestId", res.RequestID)
	if res.Failed() {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	w.Write(res.Payload)
}

// logBuffer collects the emulator's output; exec writes to it from one
// goroutine, tests read it from others.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// request returns the log of one invocation, from RIE's "START RequestId:
// id" to the end of its "REPORT RequestId: id" line. RIE prints REPORT
// before it answers, but the copy into the buffer may lag, so it waits a
// little for it.
func (b *logBuffer) request(id string, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		s := b.String()
		start := strings.Index(s, "START RequestId: "+id)
		if start >= 0 {
			if end := strings.Index(s[start:], "REPORT RequestId: "+id); end >= 0 {
				rest := s[start+end:]
				if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
					return s[start : start+end+nl+1]
				}
			}
		}
		if time.Now().After(deadline) {
			if start >= 0 {
				return s[start:]
			}
			return ""
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newRequestID returns a random UUID, the form Lambda's request ids take.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
