// Package awstest is the shared test helper for AWS services tote calls:
// local HTTP endpoints that speak enough of Secrets Manager's JSON protocol
// and SNS's query protocol for the AWS SDK, pointed at them with an
// endpoint override, to work unchanged.
package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// SecretsManager serves GetSecretValue for the given secrets (name to
// string value), and ResourceNotFoundException for any other name.
func SecretsManager(t testing.TB, secrets map[string]string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unsupported", http.StatusBadRequest)
			return
		}
		var in struct{ SecretId string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		v, ok := secrets[in.SecretId]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"__type": "ResourceNotFoundException",
				"message": "Secrets Manager can't find the specified secret."})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:" + in.SecretId,
			"Name": in.SecretId, "SecretString": v, "VersionId": "v1"})
	}))
	t.Cleanup(s.Close)
	return s
}

// Published is one message an SNS endpoint received.
type Published struct {
	Topic, Subject, Message string
}

// SNS is a local SNS endpoint that records Publish calls.
type SNS struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []Published
}

// StartSNS starts an SNS endpoint, closed when the test ends.
func StartSNS(t testing.TB) *SNS {
	s := &SNS{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "Publish" {
			http.Error(w, "unsupported", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, Published{r.Form.Get("TopicArn"), r.Form.Get("Subject"), r.Form.Get("Message")})
		n := len(s.msgs)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-%d</MessageId></PublishResult><ResponseMetadata><RequestId>r-%d</RequestId></ResponseMetadata></PublishResponse>`, n, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// Messages returns what was published so far.
func (s *SNS) Messages() []Published {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Published(nil), s.msgs...)
}
