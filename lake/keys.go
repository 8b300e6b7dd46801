package lake

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// maxSeq is the largest sequence number that fits in 12 digits.
const maxSeq = 999_999_999_999

// seqDigits is the width of a sequence number in keys and ids.
const seqDigits = 12

func (z Zone) valid() bool { return z == Raw || z == Processed }

func (z Zone) check() error {
	if !z.valid() {
		return fmt.Errorf("lake: unknown zone %q (want %q or %q)", z, Raw, Processed)
	}
	return nil
}

// batchID is the id of batch seq started at start.
func batchID(seq uint64, start time.Time) string {
	return fmt.Sprintf("%012d-%s", seq, start.UTC().Format("20060102T150405.000Z"))
}

// fileKey is the key of table's data file in a batch. A processed batch's
// rejects live in the rejects zone.
func fileKey(zone Zone, table, id string) string {
	if zone == Processed && table == RejectsTable {
		return path.Join(string(Rejects), id+".parquet")
	}
	return path.Join(string(zone), table, id+".parquet")
}

// manifestDir is the prefix of zone's manifests, with a trailing slash.
func manifestDir(zone Zone) string {
	return "manifests/" + string(zone) + "/"
}

// manifestKey is the key of the manifest of zone's batch seq.
func manifestKey(zone Zone, seq uint64) string {
	return fmt.Sprintf("%s%012d.json", manifestDir(zone), seq)
}

// parseManifestName returns the sequence number of a manifest's base name,
// "000000000042.json".
func parseManifestName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || len(digits) != seqDigits || !allDigits(digits) {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// isTemp reports whether the base name of a key is a temporary file of a
// write in progress (or one that crashed): fileblob's "NAME.HEX.tmp" and
// the lake's own ".NAME.HEX.tmp".
func isTemp(name string) bool {
	return strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, ".")
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validTable reports whether name can be a table name in keys: letters,
// digits, '_' and '-', not starting with '-'.
func validTable(name string) bool {
	if name == "" || name[0] == '-' || len(name) > 200 {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// kindError is an error with a message of its own that matches a sentinel
// with errors.Is, so that messages need not repeat the sentinel's text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return &kindError{kind: ErrCorrupt, msg: fmt.Sprintf(format, args...)}
}

// conflictf returns an error wrapping ErrConflict.
func conflictf(format string, args ...any) error {
	return &kindError{kind: ErrConflict, msg: fmt.Sprintf(format, args...)}
}

// notFoundf returns an error wrapping fs.ErrNotExist.
func notFoundf(format string, args ...any) error {
	return &kindError{kind: fs.ErrNotExist, msg: fmt.Sprintf(format, args...)}
}

// errExists is returned by createExclusive when the key exists.
var errExists = errors.New("object exists")
