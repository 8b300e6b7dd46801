// Command e2e-aws is `make e2e-aws`: tote's Terraform applied against a
// local AWS emulator, kumo (github.com/sivchari/kumo, pinned in this
// module's go.mod), and the pipeline run through it: the three Lambda
// functions from the zip, Secrets Manager, S3 and the state machine.
// Then everything is destroyed.
//
// It is a separate module so that kumo and its dependencies (some eighty
// AWS service emulators, a heavy build) never enter tote's own go.mod, and
// so that `go test ./...` at the repository's root does not reach it.
//
// kumo runs a Lambda function only when a process polls its Runtime API
// for it, so this program starts each function's bootstrap itself, with
// the environment Terraform gave the function and AWS_LAMBDA_RUNTIME_API
// pointing at kumo. What kumo does not do as AWS does is in README.md.
package main

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// kumoVersion must match go.mod.
const kumoVersion = "v0.33.1"

const region = "us-east-1"

func main() {
	repo := flag.String("repo", "../..", "the tote repository")
	zipPath := flag.String("zip", "", "the Lambda zip (make lambda ARCH=amd64); required")
	admin := flag.String("database", envOr("TOTE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"admin URL of a PostgreSQL server to create the source and warehouse databases on")
	keep := flag.Bool("keep", false, "leave kumo, the functions and the databases running at the end (Ctrl-C stops them)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("e2e-aws: ")
	if *zipPath == "" {
		log.Fatal("-zip is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	r := &run{repo: abs(*repo), zip: abs(*zipPath), admin: *admin, keep: *keep}
	err := r.main(ctx)
	r.cleanup()
	if err != nil {
		log.Fatalf("FAILED: %v", err)
	}
	log.Print("PASSED")
}

type run struct {
	repo, zip, admin string
	keep             bool
	work             string
	endpoint         string // kumo's base URL
	tfEnv            []string
	tfDir            string
	applied          bool
	procs            []*exec.Cmd
	dbs              []string
	cfg              aws.Config
}

func (r *run) main(ctx context.Context) error {
	var err error
	if r.work, err = os.MkdirTemp("", "tote-e2e-aws-"); err != nil {
		return err
	}
	kumo, err := buildKumo(ctx)
	if err != nil {
		return err
	}
	if err := r.startKumo(ctx, kumo); err != nil {
		return err
	}
	r.cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(r.endpoint))
	if err != nil {
		return err
	}

	// The databases: a seeded source and an empty warehouse.
	source, err := r.createDB(ctx, "src")
	if err != nil {
		return err
	}
	warehouse, err := r.createDB(ctx, "wh")
	if err != nil {
		return err
	}
	log.Print("seeding the source (scale 1)")
	if out, err := r.command(ctx, r.repo, nil, "go", "run", "./cmd/tote", "seed", "--source", source, "--scale", "1", "--log-level", "warn"); err != nil {
		return fmt.Errorf("tote seed: %w\n%s", err, out)
	}

	// Terraform, against kumo.
	if err := r.terraform(ctx, "init", "-input=false"); err != nil {
		return err
	}
	start := time.Now()
	if err := r.terraform(ctx, "apply", "-auto-approve", "-input=false", "-var", "lambda_zip="+r.zip, "-var", "architecture=amd64",
		"-var", "region="+region, "-var", "schedule_enabled=false", "-var", "force_destroy=true", "-var", "reserved_concurrency=-1",
		"-var", "iceberg_enabled=false"); err != nil {
		return err
	}
	r.applied = true
	log.Printf("terraform apply: %s", time.Since(start).Round(time.Second))
	outputs, err := r.outputs(ctx)
	if err != nil {
		return err
	}

	// The secrets' values, as an operator puts them (docs/aws.md, step 4).
	sm := secretsmanager.NewFromConfig(r.cfg)
	// examples/aws's environment is dev by default (tote/dev/...).
	for name, v := range map[string]string{"tote/dev/source-url": source, "tote/dev/warehouse-url": warehouse} {
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(v)}); err != nil {
			return fmt.Errorf("put secret %s: %w", name, err)
		}
	}

	// The functions, as Terraform configured them.
	var names map[string]string
	if err := json.Unmarshal(outputs["function_names"], &names); err != nil {
		return fmt.Errorf("function_names: %w", err)
	}
	bootstrap, err := r.unzip()
	if err != nil {
		return err
	}
	for _, stage := range []string{"extract", "transform", "load"} {
		if err := r.startFunction(ctx, names[stage], bootstrap); err != nil {
			return err
		}
	}

	// kumo answers an invoke with 502 until the function has polled its
	// Runtime API once; there is no call that says it has.
	time.Sleep(2 * time.Second)

	var machine string
	if err := json.Unmarshal(outputs["state_machine_arn"], &machine); err != nil {
		return fmt.Errorf("state_machine_arn: %w", err)
	}
	first, err := r.execute(ctx, machine, "first run")
	if err != nil {
		return err
	}
	if first.Status != sfntypes.ExecutionStatusSucceeded {
		return fmt.Errorf("first run: %s", first.Status)
	}
	rows, err := r.psql(ctx, warehouse, `SELECT count(*) FROM fact_sales_order`)
	if err != nil {
		return err
	}
	if rows == "0" || rows == "" {
		return fmt.Errorf("the warehouse has %q sales facts after the first run", rows)
	}
	log.Printf("the warehouse holds %s sales facts", rows)
	var lakeURL string
	if err := json.Unmarshal(outputs["lake_url"], &lakeURL); err != nil {
		return err
	}
	if err := r.listLake(ctx, lakeURL); err != nil {
		return err
	}
	if _, err := r.execute(ctx, machine, "second run (nothing new)"); err != nil {
		return err
	}

	// A failure: a source column the star reads changes type (a new
	// column would be carried: decision 0018). On AWS the execution fails
	// through Catch and publishes an alert; see README.md for kumo.
	if _, err := r.psql(ctx, source, `ALTER TABLE sales_order ALTER COLUMN units_sold TYPE bigint`); err != nil {
		return err
	}
	failed, err := r.execute(ctx, machine, "third run (drifted source)")
	if err != nil {
		return err
	}
	log.Printf("drifted source: the execution ended %s (AWS: FAILED with Fatal after an alert)", failed.Status)
	// kumo's Step Functions take a function error for a result (README.md),
	// so the function's own log is where the failure shows.
	b, err := os.ReadFile(filepath.Join(r.work, names["extract"]+".log"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), `"error_type":"Fatal"`) || !strings.Contains(string(b), "sales_order.units_sold: type changed") {
		return fmt.Errorf("the extract function did not fail Fatal naming sales_order.units_sold; its log:\n%s", tail(b, 4000))
	}
	log.Print("the extract function failed Fatal, naming sales_order.units_sold")
	return nil
}

// buildKumo builds kumo from this module, once, into the user cache.
func buildKumo(ctx context.Context) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	bin := filepath.Join(dir, "tote", "e2e-aws", "kumo-"+kumoVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log.Printf("building kumo %s (the first time takes minutes and a few GB)", kumoVersion)
	self, err := os.Getwd()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sivchari/kumo/cmd/kumo")
	cmd.Dir = self
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kumo: %w\n%s", err, out)
	}
	return bin, nil
}

// kumoPort is the one port kumo can run on here: its Step Functions
// invoke Lambda at http://localhost:4566, whatever KUMO_PORT says.
const kumoPort = 4566

func (r *run) startKumo(ctx context.Context, bin string) error {
	port := kumoPort
	if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err != nil {
		return fmt.Errorf("port %d is taken (%v); kumo's Step Functions call Lambda there, so kumo needs it", port, err)
	} else {
		l.Close()
	}
	logf, err := os.Create(filepath.Join(r.work, "kumo.log"))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "KUMO_HOST=127.0.0.1", "KUMO_PORT="+strconv.Itoa(port), "KUMO_LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	r.procs = append(r.procs, cmd)
	r.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kumo did not listen on %s (log %s)", r.endpoint, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Printf("kumo %s at %s (log %s)", kumoVersion, r.endpoint, logf.Name())
	return nil
}

// terraform runs terraform in a copy of deploy/terraform/examples/aws whose
// provider is pointed at kumo by an override file.
func (r *run) terraform(ctx context.Context, args ...string) error {
	if r.tfDir == "" {
		if err := copyDir(filepath.Join(r.repo, "deploy", "terraform"), filepath.Join(r.work, "terraform")); err != nil {
			return err
		}
		r.tfDir = filepath.Join(r.work, "terraform", "examples", "aws")
		var endpoints strings.Builder
		for _, s := range []string{"cloudwatch", "cloudwatchlogs", "iam", "lambda", "s3", "scheduler", "secretsmanager", "sfn", "sns", "sts", "kms"} {
			fmt.Fprintf(&endpoints, "    %s = %q\n", s, r.endpoint)
		}
		override := fmt.Sprintf(`provider "aws" {
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
%s  }
}
`, endpoints.String())
		if err := os.WriteFile(filepath.Join(r.tfDir, "kumo_override.tf"), []byte(override), 0o644); err != nil {
			return err
		}
		// Two resources kumo cannot create (README.md): left out of this
		// copy of the module, and only of it. Nor can it keep Iceberg
		// tables in Glue (no UpdateTable) or read an Athena workgroup back
		// (no GetWorkGroup): iceberg_enabled=false above.
		skip := `resource "aws_s3_bucket_ownership_controls" "lake" {
  count = 0
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  count = 0
}
`
		if err := os.WriteFile(filepath.Join(r.work, "terraform", "modules", "tote", "kumo_override.tf"), []byte(skip), 0o644); err != nil {
			return err
		}
		r.tfEnv = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0", "TF_DATA_DIR="+filepath.Join(r.work, "tfdata"))
		if _, err := os.Stat("/opt/tf-plugins/registry.terraform.io/hashicorp/aws"); err == nil {
			rc := filepath.Join(r.work, "terraform.rc")
			if err := os.WriteFile(rc, []byte(`provider_installation {
  filesystem_mirror {
    path    = "/opt/tf-plugins"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
`), 0o644); err != nil {
				return err
			}
			r.tfEnv = append(r.tfEnv, "TF_CLI_CONFIG_FILE="+rc)
		}
	}
	log.Printf("terraform %s", args[0])
	out, err := r.command(ctx, r.tfDir, r.tfEnv, "terraform", append(args, "-no-color")...)
	if err != nil {
		return fmt.Errorf("terraform %s: %w\n%s", strings.Join(args, " "), err, tail(out, 6000))
	}
	return nil
}

func (r *run) outputs(ctx context.Context) (map[string]json.RawMessage, error) {
	out, err := r.command(ctx, r.tfDir, r.tfEnv, "terraform", "output", "-json")
	if err != nil {
		return nil, fmt.Errorf("terraform output: %w\n%s", err, out)
	}
	var raw map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("terraform output: %w", err)
	}
	m := map[string]json.RawMessage{}
	for k, v := range raw {
		m[k] = v.Value
	}
	return m, nil
}

// unzip extracts the bootstrap from the zip Terraform deployed.
func (r *run) unzip() (string, error) {
	zr, err := zip.OpenReader(r.zip)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != "bootstrap" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		defer rc.Close()
		path := filepath.Join(r.work, "bootstrap")
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(out, rc); err != nil {
			out.Close()
			return "", err
		}
		return path, out.Close()
	}
	return "", errors.New("no bootstrap in " + r.zip)
}

// startFunction runs the bootstrap for one function with the environment
// kumo holds for it, polling kumo's Runtime API.
func (r *run) startFunction(ctx context.Context, name, bootstrap string) error {
	fn, err := lambda.NewFromConfig(r.cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("function %s: %w", name, err)
	}
	u, _ := url.Parse(r.endpoint)
	env := []string{
		"PATH=/usr/bin:/bin", "TZ=:UTC", "AWS_REGION=" + region, "AWS_DEFAULT_REGION=" + region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=" + r.endpoint, "TOTE_S3_PATH_STYLE=true",
		"AWS_LAMBDA_FUNCTION_NAME=" + name, "AWS_LAMBDA_RUNTIME_API=" + u.Host + "/_runtime/" + name,
	}
	if fn.Environment != nil {
		for k, v := range fn.Environment.Variables {
			env = append(env, k+"="+v)
		}
	}
	logf, err := os.Create(filepath.Join(r.work, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	r.procs = append(r.procs, cmd)
	log.Printf("function %s polls kumo (log %s)", name, logf.Name())
	return nil
}

// execute starts an execution and waits for it to end.
func (r *run) execute(ctx context.Context, machine, what string) (*sfn.DescribeExecutionOutput, error) {
	c := sfn.NewFromConfig(r.cfg)
	start := time.Now()
	ex, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(`{"trigger":"schedule"}`)})
	if err != nil {
		return nil, fmt.Errorf("%s: start execution: %w", what, err)
	}
	for {
		d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: ex.ExecutionArn})
		if err != nil {
			return nil, fmt.Errorf("%s: describe execution: %w", what, err)
		}
		if d.Status != sfntypes.ExecutionStatusRunning {
			log.Printf("%s: %s in %s; output %s; error %s %s", what, d.Status, time.Since(start).Round(time.Millisecond),
				aws.ToString(d.Output), aws.ToString(d.Error), aws.ToString(d.Cause))
			return d, nil
		}
		if time.Since(start) > 10*time.Minute {
			return nil, fmt.Errorf("%s: still running after 10 minutes", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (r *run) listLake(ctx context.Context, lakeURL string) error {
	u, err := url.Parse(lakeURL)
	if err != nil {
		return err
	}
	out, err := s3.NewFromConfig(r.cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(u.Host), Prefix: aws.String(strings.TrimPrefix(u.Path, "/") + "/manifests/")})
	if err != nil {
		return fmt.Errorf("list the lake: %w", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	log.Printf("the lake's manifests: %v", keys)
	if len(keys) < 2 {
		return fmt.Errorf("the lake has manifests %v, want a raw and a processed one", keys)
	}
	return nil
}

func (r *run) createDB(ctx context.Context, what string) (string, error) {
	b := make([]byte, 4)
	rand.Read(b)
	name := "tote_e2e_" + what + "_" + hex.EncodeToString(b)
	if _, err := r.psql(ctx, r.admin, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	r.dbs = append(r.dbs, name)
	u, err := url.Parse(r.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (r *run) psql(ctx context.Context, db, sql string) (string, error) {
	out, err := r.command(ctx, "", nil, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql)
	if err != nil {
		return "", fmt.Errorf("psql %q: %w\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (r *run) command(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	return cmd.CombinedOutput()
}

// cleanup destroys what apply created, stops the processes and drops the
// databases, unless -keep.
func (r *run) cleanup() {
	if r.keep {
		log.Printf("-keep: left running; work directory %s", r.work)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r.applied {
		if err := r.terraform(ctx, "destroy", "-auto-approve", "-input=false", "-var", "lambda_zip="+r.zip, "-var", "architecture=amd64",
			"-var", "region="+region, "-var", "schedule_enabled=false", "-var", "force_destroy=true", "-var", "reserved_concurrency=-1",
			"-var", "iceberg_enabled=false"); err != nil {
			log.Printf("destroy: %v", err)
		}
	}
	for i := len(r.procs) - 1; i >= 0; i-- {
		_ = r.procs[i].Process.Kill()
		_ = r.procs[i].Wait()
	}
	for _, db := range r.dbs {
		if _, err := r.psql(ctx, r.admin, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			log.Print(err)
		}
	}
	log.Printf("logs kept in %s", r.work)
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.Contains(d.Name(), ".tfstate") || d.Name() == ".terraform.lock.hcl" || strings.HasSuffix(d.Name(), ".tfvars") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		log.Fatal(err)
	}
	return a
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}
