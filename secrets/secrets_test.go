package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/terrifictotes/tote/internal/awstest"
)

func TestResolve(t *testing.T) {
	sm := awstest.SecretsManager(t, map[string]string{"tote/warehouse": "postgres://u:fromsm@h/db"})
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	os.WriteFile(file, []byte("postgres://u:fromfile@h/db\n"), 0o600)
	smFile := filepath.Join(dir, "sm")
	os.WriteFile(smFile, []byte("secretsmanager://tote/warehouse"), 0o600)
	env := map[string]string{}
	r := Resolver{Getenv: func(k string) string { return env[k] },
		SecretsManager: func(context.Context) (*secretsmanager.Client, error) {
			return secretsmanager.New(secretsmanager.Options{Region: "eu-west-2", BaseEndpoint: aws.String(sm.URL),
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}), nil
		}}
	cases := []struct {
		name, value, file, want, err string
	}{
		{"plain", "postgres://plain", "", "postgres://plain", ""},
		{"value wins over file", "postgres://plain", file, "postgres://plain", ""},
		{"file", "", file, "postgres://u:fromfile@h/db", ""},
		{"secrets manager", "secretsmanager://tote/warehouse", "", "postgres://u:fromsm@h/db", ""},
		{"file naming a secret", "", smFile, "postgres://u:fromsm@h/db", ""},
		{"missing file", "", filepath.Join(dir, "nope"), "", "TOTE_X_FILE: open "},
		{"secret not found", "secretsmanager://tote/nope", "", "", `TOTE_X: secret "tote/nope" not found in AWS Secrets Manager`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env["TOTE_X_FILE"] = c.file
			got, err := r.Resolve(context.Background(), "TOTE_X", c.value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %v, want one line with %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
