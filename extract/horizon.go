package extract

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// horizon is the earliest last_updated that a row invisible to the coming
// snapshot could carry (see the package comment).
type horizon struct {
	at   time.Time
	from string // "activity" or "max-transaction-age"
}

// horizonSQL reads, in one statement and before any snapshot of ours
// exists, the clock and the start of every other open transaction in this
// database, plus prepared transactions, in the server's default TimeZone.
const horizonSQL = `
SELECT clock_timestamp()::timestamp,
       (SELECT min(xact_start)::timestamp FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL),
       (SELECT min(prepared)::timestamp FROM pg_prepared_xacts WHERE database = current_database()),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')`

func findHorizon(ctx context.Context, pool *pgxpool.Pool, margin, maxTxn time.Duration) (horizon, error) {
	var (
		clock             time.Time
		oldest, prepared  *time.Time
		canSeeAllActivity bool
	)
	if err := pool.QueryRow(ctx, horizonSQL).Scan(&clock, &oldest, &prepared, &canSeeAllActivity); err != nil {
		return horizon{}, fmt.Errorf("read open transactions: %w", err)
	}
	h := horizon{at: clock, from: "activity"}
	if !canSeeAllActivity {
		h = horizon{at: clock.Add(-maxTxn), from: "max-transaction-age"}
	}
	if oldest != nil && oldest.Before(h.at) {
		h.at = *oldest
	}
	if prepared != nil && prepared.Add(-maxTxn).Before(h.at) {
		h.at = prepared.Add(-maxTxn)
	}
	h.at = h.at.Add(-margin).Truncate(time.Millisecond)
	return h, nil
}
