package alert

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Config says where alerts go. A notifier whose field is empty is not
// wanted.
type Config struct {
	Webhook string   // post to this Slack-compatible webhook URL
	Email   []string // email these addresses (needs SMTPURL)
	From    string   // sender of the emails
	SMTPURL string   // smtp://USER:PASSWORD@HOST:PORT, the secret already read
	// SNSTopic is the ARN of an Amazon SNS topic to publish to, through
	// SNS, a client the caller configured.
	SNSTopic string
	SNS      *sns.Client
}

// Notifiers builds the notifiers c asks for. It connects to the SMTP
// server once, so that a wrong address fails at startup rather than at the
// first incident.
func (c Config) Notifiers(ctx context.Context) ([]Named, error) {
	var out []Named
	if c.Webhook != "" {
		out = append(out, Named{Name: "webhook", Notifier: Webhook{URL: c.Webhook}})
	}
	if len(c.Email) > 0 {
		if c.SMTPURL == "" {
			return nil, fmt.Errorf("alert email: no SMTP server: give its smtp:// URL")
		}
		s, err := ParseSMTPURL(c.SMTPURL, c.From, c.Email)
		if err != nil {
			return nil, fmt.Errorf("alert email: %w", err)
		}
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return nil, fmt.Errorf("alert email: SMTP server %s unreachable: %v", s.Addr, err)
		}
		conn.Close()
		out = append(out, Named{Name: "email", Notifier: s})
	}
	if c.SNSTopic != "" {
		if c.SNS == nil {
			return nil, fmt.Errorf("alert SNS: no client for topic %s", c.SNSTopic)
		}
		out = append(out, Named{Name: "sns", Notifier: SNS{Client: c.SNS, Topic: c.SNSTopic}})
	}
	return out, nil
}
