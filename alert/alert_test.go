package alert

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/hangtest"
	"github.com/terrifictotes/tote/internal/smtptest"
)

func TestSNS(t *testing.T) {
	srv := awstest.StartSNS(t)
	c := sns.New(sns.Options{Region: "eu-west-2", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	n := SNS{Client: c, Topic: "arn:aws:sns:eu-west-2:123456789012:tote"}
	a := Alert{Kind: Failure, Run: 7, Where: tote.Where{Stage: tote.Load, Table: "fact_sales_order"}, Error: "boom", Time: time.Now()}
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ms := srv.Messages()
	if len(ms) != 1 || ms[0].Topic != n.Topic || ms[0].Subject != "tote: run 7 failed in load (fact_sales_order)" || !strings.Contains(ms[0].Message, "error: boom") {
		t.Errorf("published %+v", ms)
	}
}

func TestSMTPBadPaths(t *testing.T) {
	srv := smtptest.Start(t)
	a := Alert{Kind: Failure, Run: 1, Time: time.Now()}
	wrong := SMTP{Addr: srv.Addr, User: smtptest.User, Password: "wrong", From: "a@b", To: []string{"c@d"}, TLS: srv.ClientTLS}
	if err := wrong.Notify(context.Background(), a); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("wrong password: %v", err)
	}
	untrusted := SMTP{Addr: srv.Addr, User: smtptest.User, Password: smtptest.Password, From: "a@b", To: []string{"c@d"}}
	if err := untrusted.Notify(context.Background(), a); err == nil || !strings.Contains(err.Error(), "starttls") {
		t.Errorf("untrusted certificate: %v", err)
	}
	down := SMTP{Addr: "127.0.0.1:1", From: "a@b", To: []string{"c@d"}}
	if err := down.Notify(context.Background(), a); err == nil || !strings.Contains(err.Error(), "smtp 127.0.0.1:1") {
		t.Errorf("unreachable: %v", err)
	}
	if _, err := ParseSMTPURL("http://u:pw@h", "a@b", nil); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("bad URL: %v", err)
	}
}

type failing struct{}

func (failing) Notify(context.Context, Alert) error { return errors.New("down") }

type recorder struct{ got []Kind }

func (r *recorder) Notify(_ context.Context, a Alert) error {
	r.got = append(r.got, a.Kind)
	return nil
}

func TestIncidentsOncePerIncident(t *testing.T) {
	rec := &recorder{}
	var failed []string
	in := &Incidents{Notifiers: []Named{{"broken", failing{}}, {"rec", rec}}, Delivered: func(d Delivery) {
		if d.Error != "" {
			failed = append(failed, d.Notifier)
		}
	}}
	ctx, now := context.Background(), time.Now()
	in.RunSucceeded(ctx, 1, now)
	in.RunFailed(ctx, Alert{Run: 2})
	in.RunFailed(ctx, Alert{Run: 3})
	in.RunSucceeded(ctx, 4, now)
	in.RunSucceeded(ctx, 5, now)
	in.Lag(ctx, 5, 2*time.Hour, time.Hour, now)
	in.Lag(ctx, 6, 3*time.Hour, time.Hour, now)
	in.Lag(ctx, 7, time.Minute, time.Hour, now)
	want := []Kind{Failure, Recovery, Stale, Fresh}
	if strings.Join(kinds(rec.got), ",") != strings.Join(kinds(want), ",") || len(failed) != 4 {
		t.Errorf("sent %v, failed %v", rec.got, failed)
	}
}

func kinds(ks []Kind) []string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return s
}

// A webhook that accepts connections and never answers neither stops nor
// delays the other notifiers, and holds up its caller for its timeout at
// most, with one line that says so (and not the webhook's URL, which is
// its secret).
func TestStalledNotifier(t *testing.T) {
	t.Parallel()
	received := make(chan string, 10)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- string(body)
	}))
	defer good.Close()
	stalled := "http://" + hangtest.BlackHole(t) + "/services/T0/B0/secret-token"
	var mu sync.Mutex
	var deliveries []Delivery
	in := &Incidents{
		Notifiers: []Named{{"stalled", Webhook{URL: stalled}}, {"good", Webhook{URL: good.URL}}},
		Delivered: func(d Delivery) {
			mu.Lock()
			deliveries = append(deliveries, d)
			mu.Unlock()
		},
		Timeout: time.Hour,
	}

	// The good webhook has the alert while the stalled one still waits.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.RunFailed(ctx, Alert{Run: 1, Error: "boom", Time: time.Now()}) }()
	if body := <-received; !strings.Contains(body, "run 1 failed") {
		t.Errorf("the good webhook got %s", body)
	}
	select {
	case err := <-done:
		t.Fatalf("the alert was sent (%v) before the stalled webhook answered or gave up", err)
	default:
	}
	cancel()
	<-done

	// Bounded: the stalled webhook gives up after its timeout.
	in.Timeout = time.Second
	err := in.RunSucceeded(t.Context(), 2, time.Now())
	if err == nil || err.Error() != "stalled: no answer within 1s, the alert timeout" {
		t.Errorf("recovery: %v", err)
	}
	if body := <-received; !strings.Contains(body, "recovered, run 2 succeeded") {
		t.Errorf("the good webhook got %s", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 4 || deliveries[2].Notifier != "stalled" || deliveries[2].Error == "" || deliveries[3].Error != "" {
		t.Errorf("deliveries %+v", deliveries)
	}
	for _, d := range deliveries {
		if strings.Contains(d.Error, "secret-token") {
			t.Errorf("a delivery's error shows the webhook's URL: %s", d.Error)
		}
	}
}

// On AWS an alert names its environment, and a quarantine comes from a
// Lambda stage, not a numbered run.
func TestEnvironmentAndNoRun(t *testing.T) {
	a := Alert{Kind: Quarantine, Environment: "prod", Rows: []string{`currency 4: currency_code "XYZ" is not an ISO 4217 currency code`},
		Time: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)}
	if got, want := a.Subject(), "tote prod: quarantined 1 rows whose values cannot be transformed"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if text := a.Text(); strings.Contains(text, "run: ") || !strings.Contains(text, `quarantined: currency 4: currency_code "XYZ"`) {
		t.Errorf("text %q: want the row and no run", text)
	}
	f := Alert{Kind: Failure, Run: 3, Environment: "dev", Where: tote.Where{Stage: tote.Load}}
	if got, want := f.Subject(), "tote dev: run 3 failed in load"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if got := (Alert{Kind: Quarantine, Run: 9, Rows: []string{"x"}}).Subject(); got != "tote: run 9 quarantined 1 rows whose values cannot be transformed" {
		t.Errorf("without an environment: %q", got)
	}
}

// texts records each alert's subject and text.
func TestSlotIncidents(t *testing.T) {
	rec := &captured{}
	in := &Incidents{Notifiers: []Named{{"rec", rec}}}
	ctx, now := context.Background(), time.Now()
	for _, p := range []string{"", "lag", "lag", "lag", "", "", "unreserved", "lost", "lost", "missing", "missing", ""} {
		if err := in.Slot(ctx, "tote", p, "detail of "+p, now); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.subjects()
	want := []string{
		"tote: replication slot tote: lag",
		"tote: replication slot tote is healthy again",
		"tote: replication slot tote: unreserved",
		"tote: replication slot tote: lost",
		"tote: replication slot tote: missing",
		"tote: replication slot tote is healthy again",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rec.got) > 3 && !strings.Contains(rec.got[3].Text(), "\ndetail of lost\n") {
		t.Errorf("text: %q", rec.got[3].Text())
	}
}
