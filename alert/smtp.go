package alert

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// SMTP emails alerts. It upgrades the connection with STARTTLS when the
// server offers it, and authenticates with PLAIN when the URL has a user;
// it refuses to send a password over a connection without TLS.
type SMTP struct {
	Addr     string // host:port
	User     string
	Password string
	From     string
	To       []string
	// TLS configures STARTTLS; nil verifies the server against the system
	// roots under the host's name.
	TLS *tls.Config
}

// ParseSMTPURL reads smtp://user:pass@host:port into an SMTP notifier
// sending from from to to. The port defaults to 587.
func ParseSMTPURL(raw, from string, to []string) (SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return SMTP{}, fmt.Errorf("SMTP URL %s: want smtp://USER:PASSWORD@HOST:PORT", redactURL(raw))
	}
	s := SMTP{Addr: u.Host, From: from, To: to}
	if u.Port() == "" {
		s.Addr = net.JoinHostPort(u.Hostname(), "587")
	}
	if u.User != nil {
		s.User = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// Notify emails a.
func (s SMTP) Notify(ctx context.Context, a Alert) error {
	if err := s.send(ctx, a); err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	return nil
}

func (s SMTP) send(ctx context.Context, a Alert) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := s.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.User != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS {
			return fmt.Errorf("server offers no STARTTLS: refusing to send the password in clear")
		}
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	for _, to := range s.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("rcpt %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		s.From, strings.Join(s.To, ", "), a.Subject(), a.Time.Format(time.RFC1123Z),
		strings.ReplaceAll(a.Text(), "\n", "\r\n"))
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
