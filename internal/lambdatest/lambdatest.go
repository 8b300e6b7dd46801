// Package lambdatest is the test helper for tote on AWS Lambda and Step
// Functions. It owns three things: running a Lambda binary (bootstrap)
// under the real AWS Lambda Runtime Interface Emulator (RIE), which make
// tools builds at the version pinned in tools/go.mod; building such a
// binary (from this module's packages: no download); and running the real
// state machine definition
// (deploy/terraform/modules/tote/statemachine.asl.json) locally with
// aws-local-stepfunctions (deploy/stepfunctions/run.mjs), its Lambda Tasks
// routed to emulated functions.
//
// It does not own the Lambda handler, the ASL file's content or the
// Terraform that deploys them, and it emulates no other AWS service: an
// sns:publish Task is recorded by run.mjs, not sent.
//
// What the emulators do not do as AWS does is listed in the docs of Start,
// Result and RunStateMachine.
package lambdatest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/terrifictotes/tote/internal/tooltest"
)

// RIE returns the path of the emulator binary, which make tools builds
// into bin/tools at the version pinned in tools/go.mod. It skips the test,
// saying to run make tools, where it is not built (see tooltest.Path).
func RIE(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("lambdatest: the Lambda Runtime Interface Emulator runs only on Linux")
	}
	return tooltest.Path(t, "aws-lambda-rie")
}

var bootstraps struct {
	mu sync.Mutex
	m  map[string]*bootstrapBuild
}

type bootstrapBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildBootstrap builds a Lambda binary for the provided.al2023 runtime
// (CGO_ENABLED=0 GOOS=linux GOARCH=goarch go build -tags lambda.norpc
// -trimpath) and returns its path. pkg is an import path in this module,
// or a directory (starting with "." or "/"), which may hold a module of its
// own, like testdata/fixture. Each package and architecture is built once
// per test binary; the file lives in the user cache directory, replaced
// atomically by the next run's build, so nothing accumulates. Start runs
// the binary natively, so only the host's GOARCH can be started; another
// (arm64 for Graviton on an amd64 machine) only proves that it builds.
func BuildBootstrap(t testing.TB, pkg, goarch string) string {
	t.Helper()
	dir, target := "", pkg
	if strings.HasPrefix(pkg, ".") || filepath.IsAbs(pkg) {
		abs, err := filepath.Abs(pkg)
		if err != nil {
			t.Fatalf("lambdatest: bootstrap %s: %v", pkg, err)
		}
		dir, target = abs, "."
	}
	key := dir + "|" + target + "|" + goarch
	bootstraps.mu.Lock()
	if bootstraps.m == nil {
		bootstraps.m = map[string]*bootstrapBuild{}
	}
	b := bootstraps.m[key]
	if b == nil {
		b = &bootstrapBuild{}
		bootstraps.m[key] = b
	}
	bootstraps.mu.Unlock()

	b.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			b.err = err
			return
		}
		sum := sha256.Sum256([]byte(wd + "|" + key))
		out := filepath.Join(cacheDir(), "bootstrap", hex.EncodeToString(sum[:8]))
		b.path, b.err = buildBootstrap(dir, target, goarch, out)
	})
	if b.err != nil {
		t.Fatalf("lambdatest: build bootstrap %s (%s): %v", pkg, goarch, b.err)
	}
	return b.path
}

func buildBootstrap(dir, target, goarch, outDir string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(outDir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	env := goEnv(map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": goarch, "GOFLAGS": "", "GOWORK": "off"})
	if out, err := runGo(goCmd, dir, env, "build", "-tags", "lambda.norpc", "-trimpath", "-o", filepath.Join(tmp, "bootstrap"), target); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	path := filepath.Join(outDir, "bootstrap")
	if err := os.Rename(filepath.Join(tmp, "bootstrap"), path); err != nil {
		return "", err
	}
	return path, nil
}

// cacheDir is where built binaries are kept between runs.
func cacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "tote", "lambdatest")
}

// goEnv is this process's environment with set's variables replaced (an
// empty value unsets one).
func goEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok {
			env = append(env, kv)
		}
	}
	for name, v := range set {
		if v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

func runGo(goCmd, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd.CombinedOutput()
}
