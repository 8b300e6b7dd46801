package main

import (
	"context"
	"fmt"
	"net"

	"github.com/terrifictotes/tote/postgres"
	"github.com/terrifictotes/tote/web"
)

func runDashboard(ctx context.Context, e *env, args []string) error {
	b := newBase(e, "dashboard", "", `Serves the dashboard, read-only, against a warehouse that something else
loads (tote serve elsewhere, or the pipeline's Lambda functions on AWS): the
business view at / and the pipeline view at /pipeline, updated live as
batches are loaded. It never writes: there is no run-now button.

With --lake, the freshness badge gives the lag (the time since the source
snapshot of the newest loaded batch) and the pipeline view the lake's size;
without it, the badge says when the newest batch was loaded.

On an address other than the loopback it needs --dashboard-token, which
every page then asks for once (visit any page with ?token=TOKEN).`, usesWarehouse)
	defer b.close()
	var addr, lakeURL, token string
	b.envString(&addr, "addr", "TOTE_ADDR", "127.0.0.1:8080", "HTTP listen `address`")
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
	cfg := web.Config{Pool: pool, Warehouse: wh, Token: token, Logger: b.log}
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
