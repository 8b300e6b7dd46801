package transform

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want string // "" if not a date
	}{
		{"2024-11-15", "2024-11-15"},
		{"1970-01-01", "1970-01-01"},
		{"1969-12-31", "1969-12-31"},
		{"2024-02-29", "2024-02-29"},
		{"2026-07-04", "2026-07-04"},
		{"2023-02-29", ""},
		{"2024-13-45", ""},
		{"2024-00-10", ""},
		{"2024-1-05", ""},
		{"2024-01-5", ""},
		{" 2024-01-05", ""},
		{"2024-01-05 ", ""},
		{"2024/01/05", ""},
		{"+024-01-05", ""},
		{"0000-01-01", ""},
		{"not-a-date", ""},
		{"", ""},
	} {
		d, ok := parseDate(c.in)
		got := ""
		if ok {
			got = time.Unix(int64(d)*secondsPerDay, 0).UTC().Format(time.DateOnly)
		}
		if got != c.want {
			t.Errorf("parseDate(%q) = %q (%v), want %q", c.in, got, ok, c.want)
		}
	}
}

func TestSplitMicros(t *testing.T) {
	t.Parallel()
	for _, ts := range []time.Time{
		time.Date(2024, 11, 15, 14, 40, 10, 188_000_000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(1900, 6, 1, 12, 0, 0, 1000, time.UTC),
	} {
		d, tod := splitMicros(ts.UnixMicro())
		midnight := time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC)
		if int64(d)*secondsPerDay != midnight.Unix() || tod != ts.Sub(midnight).Microseconds() {
			t.Errorf("splitMicros(%v) = %d days, %d µs", ts, d, tod)
		}
	}
}

func TestDateRow(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		date string
		want day
	}{
		{"2024-11-15", day{year: 2024, month: 11, day: 15, dayOfWeek: 5, dayName: "Friday", monthName: "November", quarter: 4}},
		{"2024-01-01", day{year: 2024, month: 1, day: 1, dayOfWeek: 1, dayName: "Monday", monthName: "January", quarter: 1}},
		{"2023-12-31", day{year: 2023, month: 12, day: 31, dayOfWeek: 7, dayName: "Sunday", monthName: "December", quarter: 4}},
		{"2025-06-30", day{year: 2025, month: 6, day: 30, dayOfWeek: 1, dayName: "Monday", monthName: "June", quarter: 2}},
		{"2025-07-01", day{year: 2025, month: 7, day: 1, dayOfWeek: 2, dayName: "Tuesday", monthName: "July", quarter: 3}},
		{"1969-12-31", day{year: 1969, month: 12, day: 31, dayOfWeek: 3, dayName: "Wednesday", monthName: "December", quarter: 4}},
	} {
		d, ok := parseDate(c.date)
		if !ok {
			t.Fatalf("parseDate(%q) failed", c.date)
		}
		c.want.id = d
		if got := dateRow(d); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.date, got, c.want)
		}
	}
}

// parseDate agrees with time.Parse on every string: the same day, or not
// a date for both (time.Parse also takes year 0, which is not a date here).
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "1969-12-31", "2024-1-05", "0000-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseDate(s)
		ref, err := time.Parse(time.DateOnly, s)
		wantOK := err == nil && ref.Year() >= 1 && ref.Format(time.DateOnly) == s
		if ok != wantOK {
			t.Fatalf("parseDate(%q) ok = %v, time.Parse says %v (%v)", s, ok, wantOK, err)
		}
		if ok && int64(d)*secondsPerDay != ref.Unix() {
			t.Fatalf("parseDate(%q) = %d days, time.Parse %d", s, d, ref.Unix()/secondsPerDay)
		}
	})
}
