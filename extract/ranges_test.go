package extract

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

func setOf(ids ...int32) *roaring.Bitmap {
	s := roaring.New()
	for _, id := range ids {
		s.Add(member(id))
	}
	return s
}

func TestRangesOfIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id int32
		r  int32
	}{
		{0, 0}, {1, 0}, {1023, 0}, {1024, 1}, {-1, -1}, {-1024, -1}, {-1025, -2},
		{math.MaxInt32, math.MaxInt32 >> rangeBits}, {math.MinInt32, math.MinInt32 >> rangeBits},
	}
	for _, c := range cases {
		if got := rangeOf(c.id); got != c.r {
			t.Errorf("rangeOf(%d) = %d, want %d", c.id, got, c.r)
		}
		// The range holds the id, and its members are one interval that
		// holds the id's member.
		lo, hi := rangeIDs(c.r)
		if int64(c.id) < lo || int64(c.id) >= hi || hi-lo != 1<<rangeBits {
			t.Errorf("range %d is [%d, %d), which does not hold %d", c.r, lo, hi, c.id)
		}
		start, end := rangeMembers(c.r)
		if m := uint64(member(c.id)); m < start || m >= end {
			t.Errorf("range %d's members are [%d, %d), which do not hold %d's member %d", c.r, start, end, c.id, m)
		}
		if uint64(member(int32(lo))) != start || uint64(member(int32(hi-1))) != end-1 {
			t.Errorf("range %d: members [%d, %d) are not its ids' [%d, %d]", c.r, start, end, member(int32(lo)), member(int32(hi-1)))
		}
	}
	if lo, hi := rangeIDs(math.MaxInt32 >> rangeBits); hi != 1<<31 || lo != 1<<31-1<<rangeBits {
		t.Errorf("the last range is [%d, %d), want it to end at 2^31", lo, hi)
	}
}

func TestSetCounts(t *testing.T) {
	t.Parallel()
	ids := []int32{-5000, -1025, -1024, -1, 0, 1, 2, 1023, 1024, 5000, 5001, math.MaxInt32, math.MinInt32}
	for i := range int32(3000) {
		ids = append(ids, 100_000+i) // a dense run over three ranges
	}
	want := map[int32]int64{}
	for _, id := range ids {
		want[rangeOf(id)]++
	}
	got := setCounts(setOf(ids...))
	if len(got) != len(want) {
		t.Errorf("counts over %d ranges, want %d: %v", len(got), len(want), got)
	}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("range %d: %d ids, want %d", r, got[r], n)
		}
	}
	if n := setCounts(roaring.New()); len(n) != 0 {
		t.Errorf("the empty set counts %v", n)
	}
}

// change is what happened to a table between two extractions, as ids.
type change struct {
	live     []int32 // L: live at the last extraction
	deleted  []int32 // of live, gone now
	updated  []int32 // of live, a new version
	inserted []int32 // not in live, in the source now
	// reinserted are of deleted, inserted again with the same id: not
	// deletions, new versions.
	reinserted []int32
	// missed are in the source, not new, and missing from live: a set
	// that is wrong.
	missed []int32
}

// verify runs the arithmetic on c and checks it names exactly the
// deletions and the source's ids, reading only the ranges that lost rows
// or that the set got wrong.
func (c change) verify(t *testing.T) {
	t.Helper()
	live := setOf(c.live...)
	source := live.Clone()
	source.AndNot(setOf(c.deleted...))
	source.Or(setOf(c.inserted...))
	source.Or(setOf(c.reinserted...))
	source.Or(setOf(c.missed...))
	fresh := setOf(c.updated...)
	fresh.Or(setOf(c.inserted...))
	fresh.Or(setOf(c.reinserted...))

	src := map[int32]int64{}
	source.Iterate(func(m uint32) bool {
		src[rangeOf(idOf(m))]++
		return true
	})
	known := roaring.Or(live, fresh)
	v := compareRanges(src, setCounts(known))
	present := roaring.New()
	for _, r := range v.differ {
		start, end := rangeMembers(r)
		for m := start; m < end; m++ {
			if source.Contains(uint32(m)) {
				present.Add(uint32(m))
			}
		}
	}
	next, deleted, missed := settle(live, known, v, present)

	wantDeleted := roaring.AndNot(setOf(c.deleted...), setOf(c.reinserted...))
	if !slices.Equal(deleted, setMembers(wantDeleted)) {
		t.Errorf("deleted %d ids %v…, want %d %v…", len(deleted), deleted[:min(len(deleted), 10)],
			wantDeleted.GetCardinality(), setMembers(wantDeleted)[:min(int(wantDeleted.GetCardinality()), 10)])
	}
	if !next.Equals(source) {
		extra, lacking := setMembers(roaring.AndNot(next, source)), setMembers(roaring.AndNot(source, next))
		t.Errorf("the new set has %d ids, the source %d; %d extra %v…, %d lacking %v…", next.GetCardinality(), source.GetCardinality(),
			len(extra), extra[:min(len(extra), 10)], len(lacking), lacking[:min(len(lacking), 10)])
	}
	if missed != uint64(len(c.missed)) {
		t.Errorf("missed %d, want %d", missed, len(c.missed))
	}
	// Only ranges that lost rows, or hold a missed id, are read.
	need := map[int32]bool{}
	for _, id := range setMembers(wantDeleted) {
		need[rangeOf(id)] = true
	}
	for _, id := range c.missed {
		need[rangeOf(id)] = true
	}
	for _, r := range append(slices.Clone(v.emptied), v.differ...) {
		if !need[r] {
			t.Errorf("range %d was read although nothing in it was deleted", r)
		}
		delete(need, r)
	}
	for r := range need {
		t.Errorf("range %d lost rows and was not read", r)
	}
	for _, r := range v.emptied {
		if src[r] != 0 {
			t.Errorf("range %d called emptied, holds %d rows", r, src[r])
		}
	}
}

func TestDeletionsByRange(t *testing.T) {
	t.Parallel()
	dense := func(lo, hi int32) []int32 {
		var out []int32
		for id := lo; id < hi; id++ {
			out = append(out, id)
		}
		return out
	}
	cases := map[string]change{
		"nothing":             {live: dense(1, 5000)},
		"an update":           {live: dense(1, 5000), updated: []int32{17}},
		"one deletion":        {live: dense(1, 5000), deleted: []int32{2048}},
		"a range emptied":     {live: dense(1, 5000), deleted: dense(1024, 2048)},
		"the table emptied":   {live: dense(1, 5000), deleted: dense(1, 5000)},
		"deleted and updated": {live: dense(1, 5000), deleted: []int32{3, 4}, updated: []int32{5, 3000}},
		// A deletion and an insertion in one range keep its count, but the
		// insertion is a new version, so L ∪ N counts one more.
		"deleted and inserted in one range": {live: dense(1, 1000), deleted: []int32{10}, inserted: []int32{1001}},
		"deleted, inserted again":           {live: dense(1, 5000), deleted: []int32{10, 11}, reinserted: []int32{10}},
		"insertions only":                   {live: dense(1, 100), inserted: dense(100, 3000)},
		"negative ids":                      {live: dense(-3000, 100), deleted: []int32{-2049, -1, 0}, inserted: []int32{-5000}},
		"the extremes":                      {live: []int32{math.MinInt32, -1, 0, math.MaxInt32}, deleted: []int32{math.MinInt32, math.MaxInt32}},
		"a set that missed ids":             {live: dense(1, 5000), missed: []int32{6000, 7000}, deleted: []int32{4}},
		"empty before":                      {inserted: dense(1, 10)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { c.verify(t) })
	}
}

// Random changes to random tables: the arithmetic names exactly the
// deletions, and reads only where some happened.
func TestDeletionsByRangeRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		n := int32(r.IntN(20_000))
		base := int32(r.IntN(1<<20)) - 1<<19
		var c change
		holes := r.IntN(3) == 0
		for id := base; id < base+n; id++ {
			if holes && r.IntN(4) == 0 {
				continue
			}
			c.live = append(c.live, id)
		}
		inLive := setOf(c.live...)
		for _, id := range c.live {
			switch k := r.IntN(1000); {
			case k < 5:
				c.deleted = append(c.deleted, id)
				if r.IntN(4) == 0 {
					c.reinserted = append(c.reinserted, id)
				}
			case k < 15:
				c.updated = append(c.updated, id)
			}
		}
		for range r.IntN(50) {
			id := base + int32(r.IntN(int(n)+5000))
			if !inLive.Contains(member(id)) {
				inLive.Add(member(id))
				c.inserted = append(c.inserted, id)
			}
		}
		if r.IntN(50) == 0 {
			c.deleted = c.live // the whole table
			c.updated, c.reinserted = nil, nil
		}
		if !t.Run("", func(t *testing.T) { c.verify(t) }) {
			t.Fatalf("case %d fails", i)
		}
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	lo, hi := bounds([]int32{-1, 2})
	if !slices.Equal(lo, []int64{-1 << rangeBits, 2 << rangeBits}) || !slices.Equal(hi, []int64{0, 3 << rangeBits}) {
		t.Errorf("bounds %v %v", lo, hi)
	}
}

// The sets of live ids round-trip, whatever their ids.
func TestIDSetsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range idSetSamples() {
		data, err := encodeIDs(s.Clone())
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeIDs(data)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equals(s) {
			t.Errorf("%v came back as %v", setMembers(s), setMembers(got))
		}
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, []byte("not a bitmap at all")} {
		if _, err := decodeIDs(bad); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
	data, _ := encodeIDs(setOf(1, 2, 3))
	if _, err := decodeIDs(append(data, 0)); err == nil {
		t.Error("decoded a set followed by a stray byte")
	}
}

func idSetSamples() []*roaring.Bitmap {
	dense := roaring.New()
	dense.AddRange(1, 1_660_001)
	holes := dense.Clone()
	for id := uint32(7); id < 1_660_001; id += 997 {
		holes.Remove(id)
	}
	return []*roaring.Bitmap{roaring.New(), setOf(-7, 0, 3, math.MaxInt32, math.MinInt32), dense, holes}
}

// Decoding a set of ids never panics, and what it accepts is a valid set
// that encodes back to the same ids.
func FuzzDecodeIDs(f *testing.F) {
	for _, s := range idSetSamples() {
		data, err := encodeIDs(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		if len(data) > 8 {
			f.Add(data[:len(data)/2])
			flipped := slices.Clone(data)
			flipped[len(data)/3] ^= 0x5a
			f.Add(flipped)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x3b, 0x30, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeIDs(data)
		if err != nil {
			return
		}
		again, err := encodeIDs(s.Clone())
		if err != nil {
			t.Fatalf("a decoded set does not encode: %v", err)
		}
		back, err := decodeIDs(again)
		if err != nil || !back.Equals(s) {
			t.Fatalf("a decoded set does not round-trip: %v", err)
		}
		if s.GetCardinality() < 1<<20 {
			_ = setCounts(s)
		}
	})
}

// The one id missing from a set is named by the sums; anything else (none
// missing, two, an id that is not the set's) is not.
func TestMissingID(t *testing.T) {
	t.Parallel()
	sum := func(s *roaring.Bitmap) int64 {
		var n int64
		s.Iterate(func(m uint32) bool { n += int64(idOf(m)); return true })
		return n
	}
	known := setOf(-7, 1, 2, 3, 1000, math.MaxInt32, math.MinInt32)
	for i := range int32(200_000) {
		known.Add(member(50_000 + i))
	}
	total := sum(known)
	cases := []struct {
		name string
		sum  int64
		id   int32
		ok   bool
	}{
		{"one gone", total - 2, 2, true},
		{"a negative id gone", total + 7, -7, true},
		{"the largest id gone", total - math.MaxInt32, math.MaxInt32, true},
		{"the smallest id gone", total - math.MinInt32, math.MinInt32, true},
		{"an id of the dense run gone", total - 123_456, 123_456, true},
		{"none gone", total, 0, false},
		{"two gone, their sum no member", total - 1000 - 3, 0, false},
		{"beyond an int4", total - 1<<40, 0, false},
	}
	for _, c := range cases {
		id, ok := missingID(known, c.sum)
		if id != c.id || ok != c.ok {
			t.Errorf("%s: missingID = %d, %v; want %d, %v", c.name, id, ok, c.id, c.ok)
		}
	}
	if id, ok := missingID(roaring.New(), 0); ok {
		t.Errorf("an empty set misses %d", id)
	}
	// Random sets, one member removed.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		s := roaring.New()
		for range 1 + rng.IntN(5000) {
			s.Add(member(int32(rng.Uint32())))
		}
		m, err := s.Select(uint32(rng.IntN(int(s.GetCardinality()))))
		if err != nil {
			t.Fatal(err)
		}
		gone := idOf(m)
		rest := s.Clone()
		rest.Remove(member(gone))
		if id, ok := missingID(s, sum(rest)); !ok || id != gone {
			t.Fatalf("missingID = %d, %v; want %d", id, ok, gone)
		}
	}
}
