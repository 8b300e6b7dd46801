package extract

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/terrifictotes/tote/internal/human"
	"github.com/terrifictotes/tote/lake"
	"github.com/terrifictotes/tote/lakefile"
	"github.com/terrifictotes/tote/totesys"
)

// moveSample is how many ids of each table a move compares, spread over
// the ids the lake holds live.
const moveSample = 64

// MoveMismatchError says that a source offered as the lake's moved source
// does not hold the rows the lake has (see MoveSource).
type MoveMismatchError struct {
	Sampled, Matched, Missing int
	// Differ names the sampled rows whose values differ, as "table id".
	Differ []string
}

func (e *MoveMismatchError) Error() string {
	s := fmt.Sprintf("the new source does not hold the rows the lake has: of %s sampled, %s match the lake's latest version",
		human.Count(e.Sampled, "row"), human.Int(e.Matched))
	if len(e.Differ) > 0 {
		shown := e.Differ[:min(len(e.Differ), 5)]
		s += fmt.Sprintf(", %s differ as of the same or an older last_updated (%s", human.Int(len(e.Differ)), strings.Join(shown, ", "))
		if len(e.Differ) > len(shown) {
			s += ", …"
		}
		s += ")"
	}
	if e.Missing > 0 {
		s += fmt.Sprintf(", %s missing", human.Int(e.Missing))
	}
	return s + ": is it the right database? If it is, accept it with --force (then tote verify --repair)"
}

// checkMove compares a sample of the rows the lake holds live with the
// source that tx reads: for each table, up to moveSample ids, the lake's
// latest version of each (the values of the model's columns) against the
// source's row. A moved source holds the same rows, less those written
// since the lake's last extraction: it is refused if any sampled row holds
// other values without a newer last_updated, or if fewer than half of the
// sampled rows hold the lake's values.
func checkMove(ctx context.Context, tx pgx.Tx, lk *lake.Lake, prev *State) error {
	live, err := loadIDSets(ctx, lk, prev)
	if err != nil {
		return err
	}
	sample := map[string][]int32{}
	for _, t := range totesys.Tables {
		if ids := spread(live[t.Name], moveSample); len(ids) > 0 {
			sample[t.Name] = ids
		}
	}
	inLake, err := lakeVersions(ctx, lk, sample)
	if err != nil {
		return fmt.Errorf("move: read the lake's rows: %w", err)
	}
	var e MoveMismatchError
	for _, t := range totesys.Tables {
		ids := sample[t.Name]
		if len(ids) == 0 {
			continue
		}
		inSource, err := sourceVersions(ctx, tx, t, ids)
		if err != nil {
			return fmt.Errorf("move: read %s: %w", t.Name, err)
		}
		for _, id := range ids {
			l, ok := inLake[t.Name][id]
			if !ok {
				continue // the lake lost it: not the source's fault
			}
			e.Sampled++
			s, ok := inSource[id]
			switch {
			case !ok:
				e.Missing++
			case s.sum == l.sum:
				e.Matched++
			case s.lastUpdated <= l.lastUpdated:
				e.Differ = append(e.Differ, fmt.Sprintf("%s %d", t.Name, id))
			}
		}
	}
	if len(e.Differ) > 0 || e.Matched*2 < e.Sampled {
		return &e
	}
	return nil
}

// spread returns up to n members of s, evenly spread.
func spread(s *roaring.Bitmap, n int) []int32 {
	if s == nil || s.IsEmpty() {
		return nil
	}
	card := s.GetCardinality()
	step := max(card/uint64(n), 1)
	var out []int32
	for i := uint64(0); i < card && len(out) < n; i += step {
		m, err := s.Select(uint32(i))
		if err != nil {
			break
		}
		out = append(out, idOf(m))
	}
	return out
}

// version is one row version, as a move compares it.
type version struct {
	sum         uint64 // of the model columns' values
	lastUpdated int64  // Unix microseconds
	xid         int64
}

// sumValues hashes the values of a row's model columns, in model order.
func sumValues(values []parquet.Value) uint64 {
	h := fnv.New64a()
	for _, v := range values {
		if v.IsNull() {
			h.Write([]byte{0xff})
			continue
		}
		h.Write([]byte{byte(v.Kind())})
		h.Write(v.Bytes())
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// lakeVersions reads the latest version in the raw zone of each of the
// given ids, by table: the one with the highest transaction id, the later
// batch's on a tie.
func lakeVersions(ctx context.Context, lk *lake.Lake, ids map[string][]int32) (map[string]map[int32]version, error) {
	want := map[string]map[int32]bool{}
	out := map[string]map[int32]version{}
	for table, list := range ids {
		want[table], out[table] = map[int32]bool{}, map[int32]version{}
		for _, id := range list {
			want[table][id] = true
		}
	}
	batches, err := lk.Batches(ctx, lake.Raw)
	if err != nil {
		return nil, err
	}
	for _, m := range batches {
		for _, f := range m.Files {
			t, err := totesys.Lookup(f.Table)
			if totesys.ExtractionFile(f.Table) || err != nil || len(want[f.Table]) == 0 {
				continue
			}
			if err := eachVersion(ctx, lk, m, f, t, want[f.Table], out[f.Table]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// eachVersion keeps in latest the newest version of each wanted id in raw
// file f of table t.
func eachVersion(ctx context.Context, lk *lake.Lake, m lake.Manifest, f lake.File, t totesys.Table,
	want map[int32]bool, latest map[int32]version) error {
	r, err := lakefile.Open(ctx, lk, m, f)
	if err != nil {
		return err
	}
	defer r.Close()
	schema := r.Schema()
	leaves := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		leaf, ok := schema.Lookup(c.Name)
		if !ok {
			return fmt.Errorf("%s: %w: no column %s", f.Path, lake.ErrCorrupt, c.Name)
		}
		leaves[i] = leaf.ColumnIndex
	}
	xid := -1
	if leaf, ok := schema.Lookup(totesys.XidColumn); ok {
		xid = leaf.ColumnIndex
	}
	key, lu := leaves[0], leaves[len(leaves)-1] // the model puts the key first and last_updated last
	buf := make([]parquet.Row, 256)
	values := make([]parquet.Value, len(leaves))
	for {
		n, err := r.Read(buf)
		for _, row := range buf[:n] {
			id := row[key].Int32()
			if !want[id] {
				continue
			}
			v := version{lastUpdated: row[lu].Int64()}
			if xid >= 0 {
				v.xid = row[xid].Int64()
			}
			if old, ok := latest[id]; ok && old.xid > v.xid {
				continue
			}
			for i, leaf := range leaves {
				values[i] = row[leaf]
			}
			v.sum = sumValues(values)
			latest[id] = v
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
}

// sourceVersions reads the source's current rows of table t with the
// given ids.
func sourceVersions(ctx context.Context, q pgx.Tx, t totesys.Table, ids []int32) (map[int32]version, error) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE %s = ANY($1)", strings.Join(names, ", "),
		pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{t.Key()}.Sanitize())
	rows, err := q.Query(ctx, sql, pgx.QueryResultFormats{pgx.BinaryFormatCode}, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32]version{}
	values := make([]parquet.Value, len(t.Columns))
	var arena []byte
	for rows.Next() {
		arena = arena[:0]
		raw := rows.RawValues()
		for i, c := range t.Columns {
			v, err := decode(c, raw[i], &arena)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Name, err)
			}
			values[i] = v
		}
		out[values[0].Int32()] = version{sum: sumValues(values), lastUpdated: values[len(values)-1].Int64()}
	}
	return out, rows.Err()
}
