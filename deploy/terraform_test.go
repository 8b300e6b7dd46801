// Package deploy_test checks the AWS deployment as part of `go test ./...`:
// the Terraform modules and example roots under terraform/ (formatting,
// validation and the modules' own tests against a mock AWS provider), the
// Athena views rendered from the star model, and the GitHub workflows
// (actionlint). The deployment itself is not Go; this package only runs the
// tools that check it.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/tooltest"
)

// pluginMirror holds the AWS provider unpacked, for machines that cannot reach
// the Terraform registry. init links to it rather than copying its 700 MB.
const pluginMirror = "/opt/tf-plugins"

// TestTerraform runs what CI's terraform job runs: fmt -check over
// terraform/, then init and validate for each module and example root, and
// the modules' tests (terraform/modules/*/tests/*.tftest.hcl). It works in a
// copy of terraform/ so that nothing is written into the repository.
func TestTerraform(t *testing.T) {
	t.Parallel()
	tf := setupTerraform(t)

	// Not fatal: validate and the tests still say what they have to say.
	if out, err := tf.exec(repoRoot(t), tf.env, "fmt", "-check", "-recursive", "-diff", "deploy/terraform"); err != nil {
		t.Errorf("terraform fmt -check: %v (run terraform fmt -recursive deploy/terraform)\n%s", err, out)
	}

	for _, module := range []string{"tote", "environment", "github-deploy-role"} {
		t.Run("module "+module, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(tf.copy, "modules", module)
			env := tf.initValidate(t, dir)
			files, err := filepath.Glob(filepath.Join(dir, "tests", "*.tftest.hcl"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no tests in %s: %v", filepath.Join(dir, "tests"), err)
			}
			// One terraform test per file, in parallel: most of their time
			// goes into starting the provider, a few times per run block.
			for _, f := range files {
				name := filepath.Base(f)
				t.Run(strings.TrimSuffix(name, ".tftest.hcl"), func(t *testing.T) {
					t.Parallel()
					tf.runEnv(t, dir, env, "test", "-filter=tests/"+name)
				})
			}
		})
	}
	// Every root: the quick start (aws), the environments CI deploys (dev,
	// prod) and the deploy role's bootstrap.
	examples, err := filepath.Glob(filepath.Join(tf.copy, "examples", "*", "main.tf"))
	if err != nil || len(examples) < 4 {
		t.Fatalf("examples: %v, %v", examples, err)
	}
	for _, main := range examples {
		dir := filepath.Dir(main)
		t.Run("example "+filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			tf.initValidate(t, dir)
		})
	}
}

// TestTerraformKeepsSecretValuesOut checks that no Terraform file sets a
// secret's value: the database URLs must never reach the state or the repo.
func TestTerraformKeepsSecretValuesOut(t *testing.T) {
	t.Parallel()
	forbidden := regexp.MustCompile(`aws_secretsmanager_secret_version|secret_string|secret_binary`)
	root := filepath.Join(repoRoot(t), "deploy", "terraform")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".tf") {
			return nil
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if forbidden.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d sets a secret's value; values are put out of band: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no .tf files under %s", root)
	}
}

// TestWorkflowsLint checks .github/workflows with actionlint (and shellcheck,
// when it is on PATH, for the run: scripts), the version tools/go.mod pins,
// which make tools builds.
func TestWorkflowsLint(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	workflows, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(workflows) == 0 {
		t.Fatal("no workflows in .github/workflows")
	}
	bin := tooltest.Path(t, "actionlint")
	for i, w := range workflows {
		workflows[i], _ = filepath.Rel(root, w)
	}
	cmd := exec.Command(bin, append([]string{"-no-color"}, workflows...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint %s: %v\n%s", strings.Join(workflows, " "), err, out)
	}
}

// terraform is the terraform command set up for these tests.
type terraform struct {
	bin  string
	copy string   // the copy of deploy/terraform to work in
	env  []string // the environment of every command, without TF_DATA_DIR
}

// setupTerraform finds terraform and the provider mirror (skipping the test
// where either is missing), writes a CLI config that installs providers from
// the mirror only, and copies deploy/terraform into a temporary directory.
func setupTerraform(t *testing.T) *terraform {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH; the Terraform checks run in CI's terraform job")
	}
	if _, err := os.Stat(filepath.Join(pluginMirror, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		t.Skipf("no AWS provider in the mirror %s (%v); the Terraform checks run in CI's terraform job", pluginMirror, err)
	}
	checkTerraformVersion(t, bin)

	tmp := t.TempDir()
	config := filepath.Join(tmp, "terraform.rc")
	rc := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
`, pluginMirror)
	if err := os.WriteFile(config, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}

	// Nothing from the caller's TF_* variables (TF_VAR_*, TF_WORKSPACE, a
	// CLI config) may change what is checked.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TF_") && !strings.HasPrefix(kv, "CHECKPOINT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "TF_CLI_CONFIG_FILE="+config, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0")

	dst := filepath.Join(tmp, "terraform")
	copyTree(t, filepath.Join(repoRoot(t), "deploy", "terraform"), dst)
	return &terraform{bin: bin, copy: dst, env: env}
}

// initValidate runs init and validate in dir with a data directory of its
// own, and returns the environment that names that directory.
func (tf *terraform) initValidate(t *testing.T, dir string) []string {
	t.Helper()
	env := append(tf.env[:len(tf.env):len(tf.env)], "TF_DATA_DIR="+t.TempDir())
	tf.runEnv(t, dir, env, "init", "-backend=false", "-input=false")
	tf.runEnv(t, dir, env, "validate")
	return env
}

// runEnv runs terraform with args in dir and fails the test, with the
// command's output, if it fails.
func (tf *terraform) runEnv(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	start := time.Now()
	if out, err := tf.exec(dir, env, args...); err != nil {
		t.Fatalf("terraform %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	t.Logf("terraform %s: %.1fs", strings.Join(args, " "), time.Since(start).Seconds())
}

// exec runs terraform with args in dir and returns its combined output.
func (tf *terraform) exec(dir string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tf.bin, append(args, "-no-color")...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd.CombinedOutput()
}

// checkTerraformVersion fails on a terraform too old for the module's tests
// (mock_provider needs 1.7).
func checkTerraformVersion(t *testing.T, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "version", "-json").Output()
	if err != nil {
		t.Fatalf("terraform version: %v", err)
	}
	var v struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("terraform version -json: %v\n%s", err, out)
	}
	parts := strings.SplitN(v.Version, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("terraform version %q: want MAJOR.MINOR.PATCH", v.Version)
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	if major == 1 && minor < 7 {
		t.Fatalf("terraform %s is too old: the module's tests need 1.7 or later (mock_provider)", v.Version)
	}
}

// copyTree copies the Terraform sources under src to dst, leaving out what
// init and apply leave behind (.terraform/, lock files, state, tfvars).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case d.IsDir() && name == ".terraform":
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case name == ".terraform.lock.hcl", strings.Contains(name, ".tfstate"), strings.HasSuffix(name, ".tfvars"), !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// repoRoot is the repository's root: the test runs in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("%s is not the repository root: %v", root, err)
	}
	return root
}
