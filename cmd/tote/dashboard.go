package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/web"
)

func runDashboard(ctx context.Context, e *env, args []string) error {
	args = subcommandFirst(args, "refresh")
	if len(args) > 0 && args[0] == "refresh" {
		return runDashboardRefresh(ctx, e, args[1:])
	}
	b := newBase(e, "dashboard", "", `Serves the dashboard against a warehouse that something else loads (tote
serve elsewhere, or the pipeline's Lambda functions on AWS): the business
view at / and the pipeline view at /pipeline, updated live as batches are
loaded. It writes nothing but its own summaries of the facts (the schema
tote_dash), which it brings up to date at start and after every load:
there is no run-now button. tote dashboard refresh does that once.

With --lake, the freshness badge gives the lag (the time since the source
snapshot of the newest loaded batch) and the pipeline view the lake's size;
without it, the badge says when the newest batch was loaded.

On an address other than the loopback it needs --dashboard-token, which
every page then asks for once (visit any page with ?token=TOKEN).`, usesWarehouse)
	b.logs.printsSummary = false
	defer b.close()
	var addr, lakeURL, token string
	var threshold time.Duration
	b.envString(&addr, "addr", "TOTE_ADDR", "127.0.0.1:8080", "HTTP listen `address`")
	b.fs.DurationVar(&threshold, "freshness-threshold", 30*time.Minute,
		"the badge says the data is stale when the warehouse is further behind the source than this (0: never)")
	b.envString(&lakeURL, "lake", "TOTE_LAKE_URL", "", "data lake `URL` (optional): file://DIR, s3://BUCKET/PREFIX")
	b.secretString(&token, "dashboard-token", web.TokenEnv, "`token` the dashboard asks for; required off the loopback; also "+web.TokenEnv+"_FILE")
	if err := b.parse(args, 0, usesWarehouse); err != nil {
		return err
	}
	if err := web.CheckBind(addr, token); err != nil {
		return b.usageErr("%v", err)
	}
	wh, err := b.openWarehouse(ctx)
	if err != nil {
		return err
	}
	pool, err := b.openPool(ctx, "warehouse", b.warehouseURL)
	if err != nil {
		return err
	}
	if err := web.Check(ctx, pool); err != nil {
		return err
	}
	cfg := web.Config{Pool: pool, Warehouse: wh, Token: token, Logger: b.log, StaleAfter: threshold}
	if lakeURL != "" {
		if cfg.Lake, err = b.openLakeAt(ctx, lakeURL); err != nil {
			return err
		}
	}
	dash, err := web.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	b.log.Info("tote dashboard", "warehouse", postgres.Redact(b.warehouseURL), "lake", lakeURL,
		"url", "http://"+ln.Addr().String()+"/", "token", token != "")
	return dash.Serve(ctx, ln)
}

func runDashboardRefresh(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "dashboard refresh", "", `Brings the dashboard's summaries up to the warehouse's newest loaded batch,
once, and says which batch they reflect and how long it took: what a running
dashboard does after every load. Several at once take turns.`, usesWarehouse)
	defer b.close()
	asJSON := b.jsonFlag("the result")
	if err := b.parse(args, 0, usesWarehouse); err != nil {
		return err
	}
	wh, err := b.openWarehouse(ctx)
	if err != nil {
		return err
	}
	if err := web.Check(ctx, wh.Pool()); err != nil {
		return err
	}
	start := time.Now()
	w, err := web.Refresh(ctx, wh)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"summaries": w, "seconds": took.Seconds()})
	}
	fmt.Fprintf(e.stdout, "dashboard summaries as of batch %d (%s) in %s\n", w.Seq, w.Batch, human.Duration(took))
	return nil
}
