package alert

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/smtptest"
)

// captured keeps each alert a notifier was given.
type captured struct{ got []Alert }

func (c *captured) Notify(_ context.Context, a Alert) error {
	c.got = append(c.got, a)
	return nil
}

// subjects are the subjects of the alerts received, in order.
func (c *captured) subjects() []string {
	var out []string
	for _, a := range c.got {
		out = append(out, a.Subject())
	}
	return out
}

// Notifiers builds what the configuration asks for, in a fixed order, and
// fails at startup, naming what to fix, when a notifier cannot work.
func TestConfigNotifiers(t *testing.T) {
	srv := smtptest.Start(t)
	snsSrv := awstest.StartSNS(t)
	client := sns.New(sns.Options{Region: "eu-west-2", BaseEndpoint: aws.String(snsSrv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	ctx := context.Background()

	none, err := Config{}.Notifiers(ctx)
	if err != nil || len(none) != 0 {
		t.Errorf("no configuration: %v, %v", none, err)
	}

	all, err := Config{
		Webhook: "http://127.0.0.1:1/hook",
		Email:   []string{"ops@example.com"}, From: "tote@example.com",
		SMTPURL:  fmt.Sprintf("smtp://%s:%s@%s", smtptest.User, smtptest.Password, srv.Addr),
		SNSTopic: "arn:aws:sns:eu-west-2:123456789012:tote", SNS: client,
	}.Notifiers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "webhook,email,sns" {
		t.Fatalf("notifiers %v", names)
	}
	s := all[1].Notifier.(SMTP)
	if s.Addr != srv.Addr || s.User != smtptest.User || s.Password != smtptest.Password || s.From != "tote@example.com" || len(s.To) != 1 {
		t.Errorf("email notifier %+v", s)
	}
	// The SNS notifier publishes to the configured topic.
	if err := all[2].Notify(ctx, Alert{Kind: Quarantine, Run: 3, Rows: []string{"sales_order 9 units_sold \"x\": not an integer"}, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ms := snsSrv.Messages(); len(ms) != 1 || ms[0].Subject != "tote: run 3 quarantined 1 rows whose values cannot be transformed" {
		t.Errorf("published %+v", ms)
	}

	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"email without a server", Config{Email: []string{"a@b"}}, "alert email: no SMTP server: give its smtp:// URL"},
		{"not an smtp URL", Config{Email: []string{"a@b"}, SMTPURL: "https://u:hunter2@mail.example.com"}, "want smtp://USER:PASSWORD@HOST:PORT"},
		{"unreachable server", Config{Email: []string{"a@b"}, SMTPURL: "smtp://127.0.0.1:1"}, "SMTP server 127.0.0.1:1 unreachable"},
		{"SNS without a client", Config{SNSTopic: "arn:aws:sns:eu-west-2:1:t"}, "alert SNS: no client for topic arn:aws:sns:eu-west-2:1:t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Notifiers(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestParseSMTPURLDefaultsThePort(t *testing.T) {
	s, err := ParseSMTPURL("smtp://mail.example.com", "from@x", []string{"to@x"})
	if err != nil || s.Addr != "mail.example.com:587" || s.User != "" {
		t.Errorf("%+v, %v", s, err)
	}
	if _, err := ParseSMTPURL("smtp://%zz", "", nil); err == nil || !strings.Contains(err.Error(), "(unparseable)") {
		t.Errorf("unparseable URL: %v", err)
	}
}

// One alert per run that quarantines, naming the first 20 rows and how many
// more there are; none for a run that quarantines nothing.
func TestQuarantinedAlert(t *testing.T) {
	rec := &captured{}
	in := &Incidents{Notifiers: []Named{{"rec", rec}}}
	ctx, now := context.Background(), time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	if err := in.Quarantined(ctx, 4, nil, now); err != nil || len(rec.got) != 0 {
		t.Fatalf("nothing quarantined: sent %d, %v", len(rec.got), err)
	}
	var rows []string
	for i := range 25 {
		rows = append(rows, fmt.Sprintf("sales_order %d units_sold: not an integer", i+1))
	}
	for range 2 {
		if err := in.Quarantined(ctx, 5, rows, now); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.got) != 2 {
		t.Fatalf("each run that quarantines alerts: sent %d", len(rec.got))
	}
	a := rec.got[0]
	text := a.Text()
	for _, want := range []string{
		"tote: run 5 quarantined 25 rows whose values cannot be transformed\n",
		"\nquarantined: sales_order 1 units_sold: not an integer\n",
		"\nquarantined: sales_order 20 units_sold: not an integer\n",
		"\n... and 5 more (tote rejects ls)\n",
		"\nthe rest of each batch was loaded; a fixed version of a row resolves its reject\n",
		"\ntime: 2026-12-07T05:00:00Z",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "sales_order 21 ") {
		t.Errorf("text shows more than 20 rows:\n%s", text)
	}
}

// verify's findings open an incident when rows first differ and close it
// when they match again: one alert each, whatever the number of runs.
func TestVerifiedIncident(t *testing.T) {
	rec := &captured{}
	in := &Incidents{Notifiers: []Named{{"rec", rec}}}
	ctx, now := context.Background(), time.Now()
	steps := []int{0, 3, 7, 0, 0, 1}
	for _, d := range steps {
		if err := in.Verified(ctx, d, []string{"sales_order: 2 missing, 1 different"}, now); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.subjects()
	want := []string{
		"tote: verify found 3 rows that differ between the warehouse and the source",
		"tote: the warehouse matches the source again",
		"tote: verify found 1 rows that differ between the warehouse and the source",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	text := rec.got[0].Text()
	for _, want := range []string{"\nsales_order: 2 missing, 1 different\n", "\nsee tote verify; tote verify --repair sends the missing and different rows again"} {
		if !strings.Contains(text, want) {
			t.Errorf("difference text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "quarantined:") {
		t.Errorf("difference text calls its rows quarantined:\n%s", text)
	}
}

// Each kind's subject, and a failure's text naming where it happened.
func TestSubjectsAndFailureText(t *testing.T) {
	v := "12/31/2x"
	for _, tc := range []struct {
		a    Alert
		want string
	}{
		{Alert{Kind: Failure, Run: 2}, "tote: run 2 failed"},
		{Alert{Kind: Failure, Run: 2, Where: tote.Where{Stage: tote.Transform}}, "tote: run 2 failed in transform"},
		{Alert{Kind: Recovery, Run: 3}, "tote: recovered, run 3 succeeded"},
		{Alert{Kind: Stale, Lag: 90*time.Minute + 400*time.Millisecond, Threshold: time.Hour}, "tote: the warehouse is 1h30m0s behind the source (threshold 1h0m0s)"},
		{Alert{Kind: Fresh, Lag: 2 * time.Second}, "tote: the warehouse has caught up with the source (2s behind)"},
		{Alert{Kind: "mystery"}, "tote: mystery"},
	} {
		if got := tc.a.Subject(); got != tc.want {
			t.Errorf("%s: subject %q, want %q", tc.a.Kind, got, tc.want)
		}
	}
	a := Alert{Kind: Failure, Run: 9, Error: "transform sales_order: bad date", Time: time.Unix(0, 0),
		Where: tote.Where{Stage: tote.Transform, Batch: "000000000007", Table: "sales_order", ID: 42, Column: "agreed_delivery_date", Value: &v}}
	want := strings.Join([]string{
		"tote: run 9 failed in transform (sales_order)",
		"run: 9", "stage: transform", "batch: 000000000007", "table: sales_order", "id: 42", "column: agreed_delivery_date",
		`value: "12/31/2x"`, "error: transform sales_order: bad date", "time: 1970-01-01T00:00:00Z",
	}, "\n")
	if got := a.Text(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
}

// An email alert arrives over STARTTLS with the subject, a date and the
// text, its lines ended by CRLF as SMTP wants.
func TestSMTPDelivers(t *testing.T) {
	srv := smtptest.Start(t)
	s := SMTP{Addr: srv.Addr, User: smtptest.User, Password: smtptest.Password, From: "tote@example.com",
		To: []string{"ops@example.com", "dba@example.com"}, TLS: srv.ClientTLS}
	a := Alert{Kind: Recovery, Run: 12, Time: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)}
	if err := s.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ms := srv.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	m := ms[0]
	if m.From != "tote@example.com" || strings.Join(m.To, ",") != "ops@example.com,dba@example.com" {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
	for _, want := range []string{
		"Subject: tote: recovered, run 12 succeeded\r\n",
		"To: ops@example.com, dba@example.com\r\n",
		"Date: Mon, 07 Dec 2026 06:00:00 +0000\r\n",
		"\r\n\r\ntote: recovered, run 12 succeeded\r\nrun: 12\r\ntime: 2026-12-07T06:00:00Z\r\n",
	} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.Data)
		}
	}
}

// SNS limits an email subject to 100 characters; a longer one is cut, and
// a failed publish names the topic.
func TestSNSLongSubjectAndFailure(t *testing.T) {
	srv := awstest.StartSNS(t)
	c := sns.New(sns.Options{Region: "eu-west-2", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	n := SNS{Client: c, Topic: "arn:aws:sns:eu-west-2:123456789012:tote"}
	long := strings.Repeat("t", 120)
	if err := n.Notify(context.Background(), Alert{Kind: Failure, Run: 1, Where: tote.Where{Table: long}}); err != nil {
		t.Fatal(err)
	}
	ms := srv.Messages()
	if len(ms) != 1 || len(ms[0].Subject) != 100 || !strings.HasPrefix(ms[0].Subject, "tote: run 1 failed (ttt") || !strings.Contains(ms[0].Message, long) {
		t.Errorf("published %+v", ms)
	}
	down := SNS{Client: sns.New(sns.Options{Region: "eu-west-2", BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1}), Topic: n.Topic}
	if err := down.Notify(context.Background(), Alert{Kind: Recovery, Run: 2}); err == nil || !strings.HasPrefix(err.Error(), "sns "+n.Topic+": ") {
		t.Errorf("unreachable SNS: %v", err)
	}
}
