package human

import (
	"strings"
	"testing"
	"time"
)

func TestInt(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 50634: "50,634",
		-1234567: "-1,234,567", 100000: "100,000"} {
		if got := Int(n); got != want {
			t.Errorf("Int(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		noun string
		want string
	}{
		{1, "batch", "1 batch"}, {0, "batch", "0 batches"}, {2, "batch", "2 batches"},
		{50634, "row", "50,634 rows"}, {1, "row", "1 row"}, {3, "row version", "3 row versions"},
		{2, "day", "2 days"}, {2, "summary", "2 summaries"}, {11, "table", "11 tables"},
		{2, "attempt", "2 attempts"}, {1, "deletion", "1 deletion"}, {2, "alias", "2 aliases"},
	} {
		if got := Count(c.n, c.noun); got != c.want {
			t.Errorf("Count(%d, %q) = %q, want %q", c.n, c.noun, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0.0s", 1500 * time.Millisecond: "1.5s", 42 * time.Second: "42s",
		5*time.Minute + 3*time.Second: "5m 3s", 5 * time.Minute: "5m",
		2*time.Hour + 5*time.Minute + 59*time.Second: "2h 5m",
		24 * time.Hour: "1 day", 3*24*time.Hour + 4*time.Hour: "3 days 4h",
		18033*time.Hour + 38*time.Minute: "751 days", -42 * time.Second: "-42s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if got := Ago(now.Add(-750*24*time.Hour), now); got != "750 days ago" {
		t.Errorf("Ago = %q", got)
	}
	if got := Ago(now.Add(3*time.Second), now); got != "in 3.0s" {
		t.Errorf("Ago of the future = %q", got)
	}
}

func TestDecimal(t *testing.T) {
	for in, want := range map[string]string{"1435403.63": "1,435,403.63", "12.5": "12.5", "-1234.00": "-1,234.00",
		"1000": "1,000", "NaN": "NaN", "": "", "-0.50": "-0.50"} {
		if got := Decimal(in); got != want {
			t.Errorf("Decimal(%q) = %q, want %q", in, got, want)
		}
	}
}

// Decimal only ever adds separators to a number, and leaves anything
// else alone.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"1435403.63", "-0.5", "12", "", "abc", "1.2.3", "+5", "9223372036854775807123.1", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Decimal(s)
		if strings.Contains(s, ",") {
			return
		}
		if strings.ReplaceAll(got, ",", "") != s {
			t.Errorf("Decimal(%q) = %q: not the same number", s, got)
		}
		if whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), "."); len(whole) > 3 && digits(whole) && digits(frac) && !strings.Contains(got, ",") {
			t.Errorf("Decimal(%q) = %q: no separator", s, got)
		}
	})
}
