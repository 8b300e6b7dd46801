package awslambda

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/extract"
	"github.com/terrifictotes/tote/iceberg"
	"github.com/terrifictotes/tote/replication"
)

// Config is the function's configuration, read from its environment.
type Config struct {
	// Stage is the stage the function runs: TOTE_STAGE, extract,
	// transform or load, or Verify or Clean, which run on schedules of
	// their own. Required.
	Stage tote.Stage
	// SourceURL is TOTE_SOURCE_URL, the source database's URL, or
	// secretsmanager://NAME for a secret holding it (or empty with
	// TOTE_SOURCE_URL_FILE naming a file). Required by extract.
	SourceURL string
	// WarehouseURL is TOTE_WAREHOUSE_URL, likewise. Required by load.
	// Verify requires both.
	WarehouseURL string
	// Environment is TOTE_ENVIRONMENT, the deployment's environment (dev,
	// prod): the Environment dimension of every metric and the name in
	// every alert. Default none, and no such dimension.
	Environment string
	// AlertTopic is TOTE_ALERT_SNS_TOPIC, the ARN of the SNS topic the
	// transform publishes one alert to when it quarantines rows, as tote
	// serve does. Default none: no alert (the rows are in rejects/ and
	// tote.rejects all the same).
	AlertTopic string
	// LakeURL is TOTE_LAKE_URL, s3://BUCKET/PREFIX (or file://, mem://).
	// Required: there is no default, a function's disk is not the lake.
	LakeURL string
	// S3PathStyle is TOTE_S3_PATH_STYLE: path-style addressing for S3
	// servers other than AWS. Default false.
	S3PathStyle bool
	// Strict is TOTE_STRICT: the transform fails on a value it cannot
	// transform instead of quarantining its row. Default false.
	Strict bool
	// LagThreshold is TOTE_LAG_THRESHOLD, a Go duration: a lag over it
	// is logged as a warning (the CloudWatch alarm alerts). Default 30m.
	LagThreshold time.Duration
	// TimeoutMargin is TOTE_TIMEOUT_MARGIN, a Go duration: how long
	// before the function's timeout a stage stops itself. Default (when
	// unset) a tenth of the time an invocation has, at least 250ms and at
	// most 5s; 0 lets the stage run until Lambda stops the function.
	TimeoutMargin time.Duration
	marginSet     bool
	// ConnectTimeout is TOTE_CONNECT_TIMEOUT, a Go duration: how long
	// connecting to a database or to S3 may take (a database URL's
	// connect_timeout wins). Default 10s.
	ConnectTimeout time.Duration
	// StallTimeout is TOTE_STALL_TIMEOUT, a Go duration: a database
	// statement or an S3 request on which no byte moves for this long
	// fails. Default 2m; 0 for no bound (the invocation's deadline still
	// bounds everything).
	StallTimeout time.Duration
	// CleanGrace is TOTE_CLEAN_GRACE, a Go duration: the clean function
	// spares files younger than this (see lake.Clean), which must exceed
	// the longest a stage takes to commit a batch (Lambda's timeout is at
	// most 15 minutes). Default 1h.
	CleanGrace time.Duration
	// Capture is TOTE_CAPTURE, how extract finds changes: xmin (the
	// default) or logical, from the replication slot TOTE_SLOT (default
	// tote) of publication TOTE_PUBLICATION (default tote). A logical
	// extract drains the slot up to the WAL position current at its start.
	Capture     string
	Replication replication.Config
	// LogFormat is TOTE_LOG_FORMAT, json (the default) or text, and
	// LogLevel TOTE_LOG_LEVEL, debug, info (the default), warn or error.
	LogFormat string
	LogLevel  slog.Level
	// IcebergCatalog is TOTE_ICEBERG_CATALOG, where the publish stage
	// registers the star's Iceberg tables: glue://DATABASE on AWS, sql (the
	// default: in the warehouse database) or off. IcebergRetain is
	// TOTE_ICEBERG_RETAIN, a Go duration: how long maintenance (the
	// publish function invoked with {"trigger": "maintain"}) keeps a
	// replaced snapshot. Default 7 days (168h).
	IcebergCatalog string
	IcebergRetain  time.Duration
}

// DefaultLagThreshold is the freshness promise: data in the warehouse
// within 30 minutes of its commit in the source.
const DefaultLagThreshold = 30 * time.Minute

// Clean is the TOTE_STAGE of the function that keeps the lake tidy: not a
// pipeline stage, but tote lake clean on a schedule of its own (daily, in
// the Terraform), deleting the files of batches that failed invocations
// left uncommitted.
const Clean tote.Stage = "clean"

// Verify is the TOTE_STAGE of the function that compares the warehouse
// with the source (tote verify, as tote serve's --verify-every does) on a
// schedule of its own, publishing the Differences metric that an alarm
// watches.
const Verify tote.Stage = "verify"

// MaintainTrigger is the event trigger on which the publish function
// also compacts the Iceberg tables and expires their old snapshots.
const MaintainTrigger = "maintain"

// DefaultCleanGrace is how old a file must be for the clean function to
// delete it, by default: longer than any invocation.
const DefaultCleanGrace = time.Hour

// ReadConfig reads the configuration from getenv. The error names every
// missing or invalid setting; the Config holds what could be read, so that
// logging works even then.
func ReadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Stage:          tote.Stage(strings.TrimSpace(getenv("TOTE_STAGE"))),
		SourceURL:      getenv("TOTE_SOURCE_URL"),
		WarehouseURL:   getenv("TOTE_WAREHOUSE_URL"),
		LakeURL:        getenv("TOTE_LAKE_URL"),
		Environment:    strings.TrimSpace(getenv("TOTE_ENVIRONMENT")),
		AlertTopic:     strings.TrimSpace(getenv("TOTE_ALERT_SNS_TOPIC")),
		LagThreshold:   DefaultLagThreshold,
		CleanGrace:     DefaultCleanGrace,
		LogFormat:      "json",
		IcebergCatalog: getenv("TOTE_ICEBERG_CATALOG"),
		IcebergRetain:  iceberg.DefaultRetain,
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch c.Stage {
	case tote.Extract, tote.Transform, tote.Load, Verify, tote.Publish, Clean:
	case "":
		bad("TOTE_STAGE is not set: want extract, transform, load, verify, publish or clean")
	default:
		bad("TOTE_STAGE=%q: want extract, transform, load, verify, publish or clean", c.Stage)
	}
	if c.LakeURL == "" {
		bad("TOTE_LAKE_URL is not set: want s3://BUCKET/PREFIX")
	}
	secret := func(env, value, what string) {
		if value == "" && getenv(env+"_FILE") == "" {
			bad("%s is not set: want %s's PostgreSQL URL, or secretsmanager://NAME", env, what)
		}
	}
	switch c.Stage {
	case tote.Extract:
		secret("TOTE_SOURCE_URL", c.SourceURL, "the source database")
	case tote.Load, tote.Publish:
		secret("TOTE_WAREHOUSE_URL", c.WarehouseURL, "the warehouse")
	case Verify:
		secret("TOTE_SOURCE_URL", c.SourceURL, "the source database")
		secret("TOTE_WAREHOUSE_URL", c.WarehouseURL, "the warehouse")
	}
	if kind, _, err := iceberg.ParseCatalog(c.IcebergCatalog); err != nil {
		bad("TOTE_ICEBERG_CATALOG=%q: want glue://DATABASE, sql or off", c.IcebergCatalog)
	} else if c.Stage == tote.Publish && kind == iceberg.Off {
		bad("TOTE_ICEBERG_CATALOG=off: the publish function has nothing to do")
	}
	if v := getenv("TOTE_ICEBERG_RETAIN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d == 0 {
			bad("TOTE_ICEBERG_RETAIN=%q: want a duration such as 168h (negative: keep every snapshot)", v)
		} else {
			c.IcebergRetain = d
		}
	}
	boolean := func(env string, p *bool) {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("%s=%q: want true or false", env, v)
			}
			*p = b
		}
	}
	boolean("TOTE_S3_PATH_STYLE", &c.S3PathStyle)
	boolean("TOTE_STRICT", &c.Strict)
	if v := getenv("TOTE_CLEAN_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("TOTE_CLEAN_GRACE=%q: want a duration such as 1h", v)
		} else {
			c.CleanGrace = d
		}
	}
	if v := getenv("TOTE_LAG_THRESHOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("TOTE_LAG_THRESHOLD=%q: want a positive duration such as 30m", v)
		} else {
			c.LagThreshold = d
		}
	}
	for _, d := range []struct {
		env string
		p   *time.Duration
		off time.Duration // what 0 means to the parts: no bound
	}{{"TOTE_CONNECT_TIMEOUT", &c.ConnectTimeout, 0}, {"TOTE_STALL_TIMEOUT", &c.StallTimeout, -1}} {
		if v := getenv(d.env); v != "" {
			dur, err := time.ParseDuration(v)
			switch {
			case err != nil || dur < 0:
				bad("%s=%q: want a duration such as 10s", d.env, v)
			case dur == 0:
				*d.p = d.off
			default:
				*d.p = dur
			}
		}
	}
	if v := getenv("TOTE_TIMEOUT_MARGIN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("TOTE_TIMEOUT_MARGIN=%q: want a duration such as 5s, or 0", v)
		} else {
			c.TimeoutMargin, c.marginSet = d, true
		}
	}
	c.Capture = strings.TrimSpace(getenv("TOTE_CAPTURE"))
	if err := extract.CheckCapture(c.Capture); err != nil {
		bad("TOTE_CAPTURE=%q: want xmin or logical", c.Capture)
	}
	c.Replication = replication.Config{SlotName: getenv("TOTE_SLOT"), Publication: getenv("TOTE_PUBLICATION")}.WithDefaults()
	if err := c.Replication.Validate(); err != nil {
		bad("TOTE_SLOT/TOTE_PUBLICATION: %v", err)
	}
	switch v := getenv("TOTE_LOG_FORMAT"); v {
	case "", "json":
	case "text":
		c.LogFormat = "text"
	default:
		bad("TOTE_LOG_FORMAT=%q: want json or text", v)
	}
	if v := getenv("TOTE_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("TOTE_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	if len(problems) == 0 {
		return c, nil
	}
	prefix := "configuration"
	if c.Stage == tote.Extract || c.Stage == tote.Transform || c.Stage == tote.Load || c.Stage == Verify || c.Stage == tote.Publish || c.Stage == Clean {
		prefix = string(c.Stage) + ": configuration"
	}
	return c, errors.New(prefix + ": " + strings.Join(problems, "; "))
}

// margin is how long before the deadline a stage with remaining time
// stops itself; negative for never.
func (c Config) margin(remaining time.Duration) time.Duration {
	if c.marginSet {
		if c.TimeoutMargin == 0 {
			return -1
		}
		return c.TimeoutMargin
	}
	return min(max(remaining/10, 250*time.Millisecond), 5*time.Second)
}
