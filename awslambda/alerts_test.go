package awslambda_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/terrifictotes/tote/internal/awstest"
	"github.com/terrifictotes/tote/internal/lambdatest"
	"github.com/terrifictotes/tote/internal/pgtest"
)

// alertTopic is the topic the tests' transform publishes to, as Terraform
// names it for the environment dev.
const alertTopic = "arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts"

// testQuarantineAlert: a transform that quarantines rows publishes one
// alert naming them to the SNS topic, as tote serve does after a run; a
// transform with nothing new publishes nothing; a topic that cannot be
// reached costs the alert, not the stage.
func testQuarantineAlert(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)
	topic := awstest.StartSNS(t)
	env := map[string]string{"AWS_ENDPOINT_URL_SNS": topic.URL, "TOTE_ALERT_SNS_TOPIC": alertTopic}
	ext := s.start(t, "extract", time.Minute, nil)
	tr := s.start(t, "transform", time.Minute, env)

	mustInvoke(t, ext, `{}`)
	if _, out := mustInvoke(t, tr, `{}`); len(out.Quarantined) != 0 || out.Alerted {
		t.Fatalf("the seeded source quarantined %v (alerted %v)", out.Quarantined, out.Alerted)
	}
	if ms := topic.Messages(); len(ms) != 0 {
		t.Fatalf("published %+v without a quarantined row", ms)
	}

	badValues(t, s, 7, "XYZ")
	mustInvoke(t, ext, `{}`)
	r, out := mustInvoke(t, tr, `{}`)
	if len(out.Quarantined) != 2 || !out.Alerted {
		t.Fatalf("transform: %s; want 2 rows quarantined and alerted", r.Payload)
	}
	ms := topic.Messages()
	if len(ms) != 1 {
		t.Fatalf("published %d messages, want one alert: %+v", len(ms), ms)
	}
	m := ms[0]
	if m.Topic != alertTopic || m.Subject != "tote dev: quarantined 2 rows whose values cannot be transformed" {
		t.Errorf("published to %s, subject %q", m.Topic, m.Subject)
	}
	for _, want := range []string{`sales_order 7: agreed_delivery_date "soon" is not a date`,
		`currency 4: currency_code "XYZ" is not an ISO 4217 currency code`, "the rest of each batch was loaded"} {
		if !strings.Contains(m.Message, want) {
			t.Errorf("the alert does not say %q:\n%s", want, m.Message)
		}
	}
	if _, out := mustInvoke(t, tr, `{}`); out.Alerted || len(topic.Messages()) != 1 {
		t.Errorf("a transform with nothing new alerted again: %+v", topic.Messages())
	}

	// The topic unreachable: the rows are quarantined all the same, the
	// stage succeeds, and the log says the alert was lost.
	lost := s.start(t, "transform", time.Minute, map[string]string{"AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:1", "TOTE_ALERT_SNS_TOPIC": alertTopic,
		"AWS_LAMBDA_FUNCTION_NAME": "tote-dev-transform-2"})
	badValues(t, s, 8, "QQQ")
	mustInvoke(t, ext, `{}`)
	r, out = mustInvoke(t, lost, `{}`)
	if len(out.Quarantined) != 2 || out.Alerted || !strings.Contains(r.Logs, "the alert was not published") {
		t.Errorf("transform with the topic unreachable: %s\n%s", r.Payload, r.Logs)
	}
}

// badValues writes a sales order date and a currency code the transform
// cannot take.
func badValues(t *testing.T, s *stack, order int, code string) {
	t.Helper()
	for _, q := range []string{
		`UPDATE sales_order SET agreed_delivery_date = 'soon', last_updated = now() WHERE sales_order_id = $1`,
		`INSERT INTO currency (currency_code, last_updated) VALUES ($1, now())`,
	} {
		arg := any(order)
		if strings.HasPrefix(q, "INSERT") {
			arg = code
		}
		if _, err := s.source.Exec(t.Context(), q, arg); err != nil {
			t.Fatal(err)
		}
	}
}

// testVerify: the verify function compares the warehouse the functions
// built with the source, and publishes Differences for the alarm: 0, then
// the row a tamperer removed.
func testVerify(t *testing.T, b *bundle) {
	s := newStack(t, b, 1)
	for _, stage := range []string{"extract", "transform", "load"} {
		mustInvoke(t, s.start(t, stage, time.Minute, nil), `{}`)
	}
	vf := s.start(t, "verify", time.Minute, nil)
	r, out := mustInvoke(t, vf, `{"trigger":"schedule"}`)
	if out.Differences == nil || *out.Differences != 0 || out.RowsTotal == 0 || len(out.Different) != 0 {
		t.Fatalf("verify after a run: %s; want 0 differences", r.Payload)
	}
	wantDifferences(t, r, 0)

	// By hand, past the foreign keys that would refuse it.
	wh := pgtest.Pool(t, s.warehouseURL)
	if _, err := wh.Exec(t.Context(), `SET session_replication_role = replica;
		DELETE FROM dim_staff WHERE staff_id = 2; RESET session_replication_role`); err != nil {
		t.Fatal(err)
	}
	r, out = mustInvoke(t, vf, `{"trigger":"schedule"}`)
	if out.Differences == nil || *out.Differences != 1 || len(out.Different) != 1 || !strings.HasPrefix(out.Different[0], "dim_staff: 1 missing") {
		t.Fatalf("verify after a deletion: %s; want 1 difference in dim_staff", r.Payload)
	}
	wantDifferences(t, r, 1)
	if !strings.Contains(r.Logs, "the warehouse differs from the source") {
		t.Errorf("the log does not warn of the difference:\n%s", r.Logs)
	}
}

// wantDifferences checks the invocation's EMF document: Differences = n,
// by Stage=verify and the environment.
func wantDifferences(t *testing.T, r lambdatest.Result, n float64) {
	t.Helper()
	for _, d := range emf(t, r.Logs) {
		if v, ok := d["Differences"]; ok {
			cw := d["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
			metrics, _ := json.Marshal(cw["Metrics"])
			if v != n || d["Stage"] != "verify" || d["Environment"] != "dev" || !strings.Contains(string(metrics), `{"Name":"Differences","Unit":"Count"}`) {
				t.Errorf("Differences published as %v", d)
			}
			return
		}
	}
	t.Errorf("no Differences metric in\n%s", r.Logs)
}
