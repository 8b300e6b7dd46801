package seed

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sys/unix"
)

// stderrMu serialises the windows in which standard error is muted.
var stderrMu sync.Mutex

// readAll reads every row of a snapshot file. Snapshots are small (the real
// totesys holds about 50,000 rows), so they are read whole, up front.
//
// Files written by fastparquet carry a spare offset in their byte-array
// pages, which parquet-go tolerates but reports with println on standard
// error for every page. Reading happens with file descriptor 2 pointed at
// /dev/null so that a user sees only tote's own output; nothing else runs
// during that window.
func readAll(pf *parquet.File) ([]parquet.Row, error) {
	rows := make([]parquet.Row, pf.NumRows())
	var n int
	var err error
	withStderrMuted(func() {
		r := parquet.NewReader(pf)
		defer r.Close()
		for n < len(rows) {
			var k int
			k, err = r.ReadRows(rows[n:])
			n += k
			if err != nil {
				break
			}
		}
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read row %d: %w", n+1, err)
	}
	if n != len(rows) {
		return nil, fmt.Errorf("file says it has %d rows but %d could be read", len(rows), n)
	}
	return rows, nil
}

// withStderrMuted runs f with file descriptor 2 pointed at /dev/null. If
// that cannot be arranged, f runs anyway: the noise is harmless.
func withStderrMuted(f func()) {
	stderrMu.Lock()
	defer stderrMu.Unlock()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		f()
		return
	}
	defer devNull.Close()
	saved, err := unix.Dup(2)
	if err != nil {
		f()
		return
	}
	defer unix.Close(saved)
	if err := unix.Dup2(int(devNull.Fd()), 2); err != nil {
		f()
		return
	}
	defer func() { _ = unix.Dup2(saved, 2) }()
	f()
}
