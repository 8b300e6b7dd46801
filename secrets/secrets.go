// Package secrets owns reading tote's secret settings (database URLs, the
// SMTP password) from where operators keep them: the value itself (from a
// flag or environment variable), a file named by NAME_FILE, or AWS Secrets
// Manager when the value is secretsmanager://NAME. It never logs a value.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Scheme marks a value to be fetched from AWS Secrets Manager.
const Scheme = "secretsmanager://"

// Resolver resolves secret settings.
type Resolver struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// SecretsManager returns the client for secretsmanager:// values; it
	// is called only when one is needed.
	SecretsManager func(ctx context.Context) (*secretsmanager.Client, error)
}

// Resolve returns the secret whose setting is value (from a flag or the
// environment variable env). If value is empty and env+"_FILE" names a
// file, the file's contents, less trailing newlines, are the value. A value
// secretsmanager://NAME is replaced by secret NAME's string.
func (r Resolver) Resolve(ctx context.Context, env, value string) (string, error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if value == "" && env != "" {
		if path := getenv(env + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("%s_FILE: %w", env, err)
			}
			value = strings.TrimRight(string(b), "\r\n")
		}
	}
	name, ok := strings.CutPrefix(value, Scheme)
	if !ok {
		return value, nil
	}
	if name == "" {
		return "", fmt.Errorf("%s: %s needs a secret name", env, Scheme)
	}
	if r.SecretsManager == nil {
		return "", fmt.Errorf("%s: secret %q: no Secrets Manager client configured", env, name)
	}
	c, err := r.SecretsManager(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: secret %q: %w", env, name, err)
	}
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", fmt.Errorf("%s: secret %q not found in AWS Secrets Manager", env, name)
		}
		return "", fmt.Errorf("%s: secret %q: %w", env, name, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("%s: secret %q holds binary data, want a string", env, name)
	}
	return *out.SecretString, nil
}
