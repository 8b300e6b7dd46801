package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/robfig/cron/v3"

	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/daemon"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/secrets"
)

// resolver reads secret settings: a value, NAME_FILE, or secretsmanager://NAME.
func (e *env) resolver() secrets.Resolver {
	return secrets.Resolver{Getenv: e.getenv, SecretsManager: func(ctx context.Context) (*secretsmanager.Client, error) {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("AWS config: %w", err)
		}
		return secretsmanager.NewFromConfig(cfg), nil
	}}
}

func runServe(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "serve", "", `Runs the pipeline unattended: at startup, then every --interval (or on the
--cron schedule), never two runs at once on one warehouse (across processes
too), retrying a failed run with backoff. Serves /healthz, /readyz, /metrics
and /runs (GET for the history, POST to run now) on --addr, alerts on failed
runs and stale data, and exits 0 on SIGTERM or SIGINT.

Database and SMTP URLs may also come from a file named by the variable plus
_FILE (TOTE_SOURCE_URL_FILE, ...) or, given as secretsmanager://NAME, from
AWS Secrets Manager.`)
	var (
		source, wh, lakeURL, cronExpr, addr     string
		webhook, email, from, smtpURL, snsTopic string
		interval, threshold                     time.Duration
		retries                                 int
		logs                                    logConfig
	)
	f.sourceFlag(&source)
	f.warehouseFlag(&wh)
	f.lakeFlag(&lakeURL)
	f.fs.DurationVar(&interval, "interval", 5*time.Minute, "time between the end of a run and the next")
	f.envString(&cronExpr, "cron", "TOTE_CRON", "", "run on this cron `schedule` instead, e.g. \"*/5 * * * *\"")
	f.envString(&addr, "addr", "TOTE_ADDR", "127.0.0.1:8080", "HTTP listen `address`")
	f.fs.IntVar(&retries, "retries", 3, "times a failed run is retried before it fails and alerts")
	f.fs.DurationVar(&threshold, "freshness-threshold", time.Hour, "alert when the newest loaded source change is older than this (0: never)")
	f.envString(&webhook, "alert-webhook", "TOTE_ALERT_WEBHOOK", "", "post alerts as Slack-compatible JSON to this `URL`")
	f.envString(&email, "alert-email", "TOTE_ALERT_EMAIL", "", "email alerts to these comma-separated `addresses` (needs --smtp-url)")
	f.envString(&from, "alert-from", "TOTE_ALERT_FROM", "tote@localhost", "sender `address` of alert emails")
	f.envString(&smtpURL, "smtp-url", "TOTE_SMTP_URL", "", "SMTP server for alert email: smtp://USER:PASSWORD@HOST:PORT")
	f.envString(&snsTopic, "alert-sns-topic", "TOTE_ALERT_SNS_TOPIC", "", "publish alerts to this Amazon SNS topic `ARN`")
	f.logFlags(&logs)
	if err := f.parse(args, 0); err != nil {
		return err
	}
	var sched daemon.Schedule = daemon.Every(interval)
	intervalSet := false
	f.fs.Visit(func(fl *flag.Flag) { intervalSet = intervalSet || fl.Name == "interval" })
	switch {
	case cronExpr != "" && intervalSet:
		return f.usageErr("give --interval or --cron, not both")
	case cronExpr != "":
		s, err := cron.ParseStandard(cronExpr)
		if err != nil {
			return f.usageErr("--cron %q: %v", cronExpr, err)
		}
		sched = s
	case interval <= 0:
		return f.usageErr("--interval must be positive, got %s", interval)
	}
	if email != "" && smtpURL == "" && e.getenv("TOTE_SMTP_URL_FILE") == "" {
		return f.usageErr("--alert-email needs --smtp-url (or TOTE_SMTP_URL)")
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return f.usageErr("%v", err)
	}
	res := e.resolver()
	if source == "" || wh == "" {
		return f.usageErr("give --source and --warehouse URLs (or TOTE_SOURCE_URL and TOTE_WAREHOUSE_URL)")
	}

	var notifiers []alert.Named
	if webhook != "" {
		notifiers = append(notifiers, alert.Named{Name: "webhook", Notifier: alert.Webhook{URL: webhook}})
	}
	if email != "" {
		if smtpURL, err = res.Resolve(ctx, "TOTE_SMTP_URL", smtpURL); err != nil {
			return err
		}
		s, err := alert.ParseSMTPURL(smtpURL, from, strings.Split(email, ","))
		if err != nil {
			return f.usageErr("%v", err)
		}
		// Fail at startup, not at the first incident.
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return fmt.Errorf("alert email: SMTP server %s unreachable: %v", s.Addr, err)
		}
		conn.Close()
		notifiers = append(notifiers, alert.Named{Name: "email", Notifier: s})
	}
	if snsTopic != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("alert SNS: AWS config: %w", err)
		}
		notifiers = append(notifiers, alert.Named{Name: "sns", Notifier: alert.SNS{Client: sns.NewFromConfig(cfg), Topic: snsTopic}})
	}

	parts, closeParts, err := openParts(ctx, source, wh, lakeURL, log)
	if err != nil {
		return err
	}
	defer closeParts()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	log.Info("tote serve", "source", postgres.Redact(source), "warehouse", postgres.Redact(wh), "lake", parts.Lake.URL(),
		"addr", ln.Addr().String(), "notifiers", len(notifiers))
	d := daemon.New(daemon.Config{
		Parts:              parts,
		Schedule:           sched,
		Retries:            retries,
		FreshnessThreshold: threshold,
		Incidents:          &alert.Incidents{Notifiers: notifiers, Logger: log},
		Logger:             log,
	})
	return d.Serve(ctx, ln)
}
