package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Webhook posts alerts as Slack-compatible JSON ({"text": ...}) to a URL.
type Webhook struct {
	URL    string
	Client *http.Client // nil means http.DefaultClient
}

// Notify posts a.
func (w Webhook) Notify(ctx context.Context, a Alert) error {
	body, err := json.Marshal(map[string]string{"text": a.Text()})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// Not the request's URL: a webhook's URL is its secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
