package extract

import (
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// rangeBits sets the width of the id ranges over which an extraction that
// found deletions counts rows, to find them: range r holds the ids from
// r<<rangeBits up to (r+1)<<rangeBits. Narrower ranges leave fewer ids to
// read around each deletion, at the cost of more ranges to count.
const rangeBits = 10

// rangeOf is the range of an id: an arithmetic shift, as PostgreSQL's >>
// on an integer.
func rangeOf(id int32) int32 { return id >> rangeBits }

// rangeIDs returns the first id of range r and the first after it, as
// int64: the last range ends at 2^31, past int32.
func rangeIDs(r int32) (lo, hi int64) {
	return int64(r) << rangeBits, (int64(r) + 1) << rangeBits
}

// rangeMembers returns range r's interval of set members, [start, end):
// aligned on a power of two, a range never straddles zero, so its members
// are contiguous.
func rangeMembers(r int32) (start, end uint64) {
	lo, _ := rangeIDs(r)
	start = uint64(member(int32(lo)))
	return start, start + 1<<rangeBits
}

// setCounts returns how many members of s fall in each range. It visits
// each non-empty range once, not each member.
func setCounts(s *roaring.Bitmap) map[int32]int64 {
	out := map[int32]int64{}
	it := s.Iterator()
	for it.HasNext() {
		r := rangeOf(idOf(it.PeekNext()))
		start, end := rangeMembers(r)
		out[r] = int64(s.CardinalityInRange(start, end))
		if end > math.MaxUint32 {
			break
		}
		it.AdvanceIfNeeded(uint32(end))
	}
	return out
}

// rangeVerdict is what comparing the counts says of a table's ranges.
type rangeVerdict struct {
	// emptied ranges hold no row in the source: every live id in them was
	// deleted.
	emptied []int32
	// differ ranges hold fewer rows than the live and new ids in them
	// (some were deleted), or more (the set of live ids missed some): their
	// ids must be read to name them.
	differ []int32
}

// compareRanges compares the rows of each range in the snapshot (src, the
// ranges it does not name hold none) with what the last extraction's live
// ids and this one's new versions say it must hold if nothing was deleted:
// the members of known, their union; want is setCounts(known).
//
// Every id in the source is in known (see the package comment), so in each
// range rows = |known| − |deleted|: a range whose count matches lost
// nothing, and only the others need their ids read.
func compareRanges(src, want map[int32]int64) rangeVerdict {
	var v rangeVerdict
	for r, n := range want {
		switch got := src[r]; {
		case got == 0:
			v.emptied = append(v.emptied, r)
		case got != n:
			v.differ = append(v.differ, r)
		}
	}
	for r, rows := range src {
		if _, ok := want[r]; !ok && rows > 0 {
			v.differ = append(v.differ, r)
		}
	}
	slices.Sort(v.emptied)
	slices.Sort(v.differ)
	return v
}

// rangeSet returns the set of every possible member of the ranges.
func rangeSet(ranges ...[]int32) *roaring.Bitmap {
	s := roaring.New()
	for _, rs := range ranges {
		for _, r := range rs {
			start, end := rangeMembers(r)
			s.AddRange(start, end)
		}
	}
	return s
}

// settle works out the deletions and the new set of live ids from the
// verdict: known (the last live ids with the new versions' ids), and
// present, the ids the source holds in the ranges that differ. It returns
// the new set, the ids deleted, and how many ids the source holds that
// known lacked (0 unless the last set was wrong).
func settle(live, known *roaring.Bitmap, v rangeVerdict, present *roaring.Bitmap) (next *roaring.Bitmap, deleted []int32, missed uint64) {
	mask := rangeSet(v.emptied, v.differ)
	next = roaring.AndNot(known, mask)
	gone := roaring.And(live, mask)
	gone.AndNot(present)
	missed = roaring.AndNot(present, known).GetCardinality()
	next.Or(present)
	deleted = make([]int32, 0, gone.GetCardinality())
	gone.Iterate(func(m uint32) bool {
		deleted = append(deleted, idOf(m))
		return true
	})
	slices.Sort(deleted)
	return next, deleted, missed
}

// bounds returns the ranges' first ids and the first ids after them, for
// SQL's unnest($lo::bigint[], $hi::bigint[]).
func bounds(ranges []int32) (lo, hi []int64) {
	lo, hi = make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		lo[i], hi[i] = rangeIDs(r)
	}
	return lo, hi
}

// missingID returns the id that known holds beyond a set of ids whose sum
// is sum, if that set is known less one of its ids: the difference between
// the sums, if it is a member of known.
func missingID(known *roaring.Bitmap, sum int64) (int32, bool) {
	var all int64
	it := known.ManyIterator()
	buf := make([]uint32, 4096)
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		for _, m := range buf[:n] {
			all += int64(idOf(m))
		}
	}
	x := all - sum
	if x < math.MinInt32 || x > math.MaxInt32 || !known.Contains(member(int32(x))) {
		return 0, false
	}
	return int32(x), true
}

// maxFetchByID is the most new versions read one by one through the
// primary key; more are read in a second pass over the table, filtered on
// xmin.
const maxFetchByID = 1 << 14
