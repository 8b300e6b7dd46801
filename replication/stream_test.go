package replication

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	if c := (Config{}).WithDefaults(); c.SlotName != "tote" || c.Publication != "tote" {
		t.Errorf("defaults: %+v", c)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{SlotName: "tote_2", Publication: "pub"}, ""},
		{Config{SlotName: "Tote"}, `replication slot name "Tote"`},
		{Config{SlotName: "tote; DROP"}, `replication slot name "tote; DROP"`},
		{Config{Publication: "a'b"}, `publication name "a'b"`},
		{Config{SlotName: strings.Repeat("a", 64)}, "at most 63"},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// Reached takes an insert position just past a page's header as reached
// at the page boundary, where the last record ended.
func TestReached(t *testing.T) {
	t.Parallel()
	c := &Conn{received: 0x2000}
	for _, c2 := range []struct {
		lsn  LSN
		want bool
	}{{0x1fff, true}, {0x2000, true}, {0x2018, true}, {0x2028, true}, {0x2029, false}, {0x2100, false}} {
		if got := c.Reached(c2.lsn); got != c2.want {
			t.Errorf("received %s, Reached(%s) = %v", c.received, c2.lsn, got)
		}
	}
}

// A server whose wal_level is not logical is refused, naming the level.
func TestConnectRefusesWalLevel(t *testing.T) {
	t.Parallel()
	url := os.Getenv("TOTE_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("TOTE_TEST_DATABASE_URL is not set")
	}
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "SHOW wal_level").ReadAll()
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	level := string(res[0].Rows[0][0])
	c, err := Connect(ctx, cfg, Config{})
	if level == "logical" {
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close(ctx)
		t.Skip("the test server has wal_level logical")
	}
	if err == nil || !strings.Contains(err.Error(), "the source's wal_level is "+level+": logical capture needs wal_level = logical") {
		t.Errorf("err = %v", err)
	}
}
