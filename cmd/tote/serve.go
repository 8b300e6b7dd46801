package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/robfig/cron/v3"

	"github.com/terrifictotes/tote/alert"
	"github.com/terrifictotes/tote/daemon"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/web"
)

func runServe(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "serve", "", `Runs the pipeline unattended: at startup, then every --interval (or on the
--cron schedule), never two runs at once on one warehouse (across processes
too), retrying a failed run with backoff. Serves /healthz, /readyz, /metrics
and /runs (GET for the history, POST to run now) on --addr, alerts on failed
runs and stale data, and exits 0 on SIGTERM or SIGINT.

Database and SMTP URLs may also come from a file named by the variable plus
_FILE (TOTE_SOURCE_URL_FILE, ...) or, given as secretsmanager://NAME, from
AWS Secrets Manager.`, usesSource|usesWarehouse|usesLake)
	b.createsLake = true
	b.logs.printsSummary = false
	var (
		cronExpr, addr, email string
		dashToken             string
		interval, threshold   time.Duration
		alertTimeout          time.Duration
		retries               int
		alerts                alert.Config
	)
	strict := strictFlag(b)
	capture := captureModeFlags(b)
	b.icebergFlags()
	maintainEvery := b.fs.Duration("iceberg-maintain-every", time.Hour, "compact the Iceberg tables and expire their old snapshots this often, between runs (0: never)")
	retain := retainFlag(b)
	verifyEvery := b.fs.Duration("verify-every", 0, "compare the warehouse with the source this often, between runs (e.g. 1h; 0: never)")
	b.fs.DurationVar(&interval, "interval", 5*time.Minute, "time between the end of a run and the next (with --capture logical, 1s unless given)")
	b.envString(&cronExpr, "cron", "TOTE_CRON", "", "run on this cron `schedule` instead, e.g. \"*/5 * * * *\"")
	b.envString(&addr, "addr", "TOTE_ADDR", "127.0.0.1:8080", "HTTP listen `address`")
	b.fs.IntVar(&retries, "retries", 3, "times a failed run is retried before it fails and alerts")
	b.fs.DurationVar(&threshold, "freshness-threshold", 30*time.Minute,
		"alert when the warehouse is further behind the source than this: the time since the source was last read in a state the warehouse holds whole (0: never)")
	b.envString(&alerts.Webhook, "alert-webhook", "TOTE_ALERT_WEBHOOK", "", "post alerts as Slack-compatible JSON to this `URL`")
	b.envString(&email, "alert-email", "TOTE_ALERT_EMAIL", "", "email alerts to these comma-separated `addresses` (needs --smtp-url)")
	b.envString(&alerts.From, "alert-from", "TOTE_ALERT_FROM", "tote@localhost", "sender `address` of alert emails")
	b.secretString(&alerts.SMTPURL, "smtp-url", "TOTE_SMTP_URL", "SMTP server for alert email: smtp://USER:PASSWORD@HOST:PORT; also TOTE_SMTP_URL_FILE")
	b.envString(&alerts.SNSTopic, "alert-sns-topic", "TOTE_ALERT_SNS_TOPIC", "", "publish alerts to this Amazon SNS topic `ARN`")
	b.envDuration(&alertTimeout, "alert-timeout", "TOTE_ALERT_TIMEOUT", alert.DefaultTimeout,
		"give up delivering an alert through one notifier after this `duration`; the others do not wait for it")
	b.secretString(&dashToken, "dashboard-token", web.TokenEnv,
		"`token` the dashboard at / asks for, and run now checks; required when --addr is not a loopback address; also "+web.TokenEnv+"_FILE")
	var slotLag string
	b.envString(&slotLag, "slot-lag-threshold", "TOTE_SLOT_LAG_THRESHOLD", "1GB",
		"with --capture logical, alert when the slot holds more unconfirmed WAL than this `size` (e.g. 512MB; 0: never)")
	if err := b.parse(args, 0, usesSource|usesWarehouse); err != nil {
		return err
	}
	defer b.close()
	slot, err := capture.slot(b)
	if err != nil {
		return err
	}
	slotLagBytes, err := replication.ParseBytes(slotLag)
	if err != nil {
		return b.usageErr("--slot-lag-threshold: %v", err)
	}
	if err := web.CheckBind(addr, dashToken); err != nil {
		return b.usageErr("%v", err)
	}
	var eopts extract.Options
	if err := capture.apply(b, &eopts); err != nil {
		return err
	}
	if eopts.Capture == extract.CaptureLogical && !flagSet(b, "interval") {
		// Logical capture costs by the change: a batch a second.
		interval = time.Second
	}
	sched, err := schedule(b, interval, cronExpr)
	if err != nil {
		return err
	}
	if email != "" {
		if alerts.SMTPURL == "" {
			return b.usageErr("--alert-email needs --smtp-url (or TOTE_SMTP_URL)")
		}
		alerts.Email = strings.Split(email, ",")
	}
	if alerts.SNSTopic != "" {
		cfg, err := e.awsConfig(ctx)
		if err != nil {
			return fmt.Errorf("alert SNS: %w", err)
		}
		alerts.SNS = sns.NewFromConfig(cfg)
	}
	notifiers, err := alerts.Notifiers(ctx)
	if err != nil {
		return err
	}
	// Started whatever the state of the databases and the lake: what does
	// not answer fails the runs, which alert and retry, and /readyz says.
	b.bounds.lazy = true
	parts, err := b.open(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	b.log.Info("tote serve", "source", postgres.Redact(b.sourceURL), "warehouse", postgres.Redact(b.warehouseURL),
		"lake", parts.Lake.URL(), "addr", ln.Addr().String(), "notifiers", len(notifiers))
	dashPool, err := b.openPool(ctx, "warehouse", b.warehouseURL)
	if err != nil {
		return err
	}
	var d *daemon.Daemon
	webCfg := web.Config{Pool: dashPool, Warehouse: parts.Warehouse, Lake: parts.Lake, Token: dashToken,
		Logger: b.log, RunNow: func() bool { return d.Trigger(daemon.TriggerHTTP) }, StaleAfter: threshold}
	if slot != nil {
		webCfg.Slot = func() *replication.SlotHealth { return d.LastSlot() }
	}
	dash, err := web.New(webCfg)
	if err != nil {
		return err
	}
	go dash.Run(ctx)
	d = daemon.New(daemon.Config{
		Parts:         parts,
		Schedule:      sched,
		Retries:       retries,
		LagThreshold:  threshold,
		Strict:        *strict,
		Extract:       eopts,
		VerifyEvery:   *verifyEvery,
		MaintainEvery: *maintainEvery,
		Maintain:      iceberg.MaintainOptions{Retain: *retain},
		Incidents:     &alert.Incidents{Notifiers: notifiers, Logger: b.log, Timeout: alertTimeout},
		Logger:        b.log,
		Dashboard:     dash,
		Token:         dashToken,

		Slot:             slot,
		SlotLagThreshold: slotLagBytes,
	})
	return d.Serve(ctx, ln)
}

// flagSet reports whether flag name was given on the command line.
func flagSet(b *base, name string) bool {
	set := false
	b.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// schedule is the daemon's schedule from --interval or --cron.
func schedule(b *base, interval time.Duration, cronExpr string) (daemon.Schedule, error) {
	intervalSet := false
	b.fs.Visit(func(fl *flag.Flag) { intervalSet = intervalSet || fl.Name == "interval" })
	switch {
	case cronExpr != "" && intervalSet:
		return nil, b.usageErr("give --interval or --cron, not both")
	case cronExpr != "":
		s, err := cron.ParseStandard(cronExpr)
		if err != nil {
			return nil, b.usageErr("--cron %q: %v", cronExpr, err)
		}
		return s, nil
	case interval <= 0:
		return nil, b.usageErr("--interval must be positive, got %s", interval)
	}
	return daemon.Every(interval), nil
}
