// Package hooktest is the test helper for webhook alerts: a real HTTP
// server on the loopback that keeps the text of every alert posted to it
// (alert.Webhook's JSON body). It sends no alerts and judges none.
package hooktest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Hook is a webhook receiver; URL is where to post. It stops when the
// test ends.
type Hook struct {
	URL string

	mu    sync.Mutex
	texts []string
}

// Start starts a webhook receiver.
func Start(t testing.TB) *Hook {
	t.Helper()
	h := &Hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// ServeHTTP keeps the text of the alert posted; a body that is not an
// alert's JSON is refused with 400.
func (h *Hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ Text string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.texts = append(h.texts, body.Text)
	h.mu.Unlock()
}

// Texts returns the texts received so far, oldest first.
func (h *Hook) Texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.texts...)
}

// Count returns how many of the texts received contain sub.
func (h *Hook) Count(sub string) int {
	n := 0
	for _, s := range h.Texts() {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}
