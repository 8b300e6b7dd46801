// Package human formats numbers, counts and durations for people: thousands
// separators, plurals that agree with their count, and durations in the
// largest units that say enough ("2h 5m", "750 days"). It owns wording
// only; what is printed, and where, is up to its callers.
package human

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Int formats n with thousands separators: 50634 is "50,634".
func Int[N ~int | ~int64 | ~int32 | ~uint64 | ~uint32](n N) string {
	if n < 0 {
		return "-" + group(strconv.FormatInt(-int64(n), 10))
	}
	return group(strconv.FormatUint(uint64(n), 10))
}

// group puts a comma between every three digits of digits, from the right.
func group(digits string) string {
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Decimal puts thousands separators into the whole part of a decimal
// number written out ("1435403.63" is "1,435,403.63", "-1234" is
// "-1,234"); anything else is returned as it is.
func Decimal(s string) string {
	whole, frac, dot := strings.Cut(s, ".")
	sign := ""
	if rest, ok := strings.CutPrefix(whole, "-"); ok {
		sign, whole = "-", rest
	}
	if whole == "" || !digits(whole) || !digits(frac) {
		return s
	}
	out := sign + group(whole)
	if dot {
		out += "." + frac
	}
	return out
}

func digits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// Count formats n and noun, the noun in the plural unless n is 1 or -1:
// Count(1, "batch") is "1 batch", Count(50634, "row") is "50,634 rows".
// A noun of several words takes the plural on its last word:
// Count(2, "row version") is "2 row versions".
func Count[N ~int | ~int64 | ~int32 | ~uint64 | ~uint32](n N, noun string) string {
	return Int(n) + " " + Plural(n, noun)
}

// Plural returns noun in the plural unless n is 1 or -1.
func Plural[N ~int | ~int64 | ~int32 | ~uint64 | ~uint32](n N, noun string) string {
	if n == 1 || int64(n) == -1 {
		return noun
	}
	for _, end := range []string{"ch", "sh", "s", "x", "z"} {
		if strings.HasSuffix(noun, end) {
			return noun + "es"
		}
	}
	if strings.HasSuffix(noun, "y") && len(noun) > 1 && !strings.ContainsRune("aeiou", rune(noun[len(noun)-2])) {
		return noun[:len(noun)-1] + "ies"
	}
	return noun + "s"
}

// Duration formats d in its two largest units, rounded down: "42s",
// "5m 3s", "2h 5m", "3 days 4h", "750 days" (from ten days on, days
// alone). Under a minute it keeps tenths of a second below ten seconds
// ("1.5s", "0.2s").
func Duration(d time.Duration) string {
	if d < 0 {
		return "-" + Duration(-d)
	}
	switch {
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return two(int(d/time.Minute), "m", int(d%time.Minute/time.Second), "s")
	case d < 24*time.Hour:
		return two(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "m")
	}
	days := int(d / (24 * time.Hour))
	s := Count(days, "day")
	if h := int(d % (24 * time.Hour) / time.Hour); days < 10 && h > 0 {
		s += fmt.Sprintf(" %dh", h)
	}
	return s
}

func two(a int, ua string, b int, ub string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, ua)
	}
	return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
}

// Ago formats the time since t as seen at now: "2h 5m ago", "750 days ago";
// a time in the future (clocks apart) reads "in 3s".
func Ago(t, now time.Time) string {
	if d := now.Sub(t); d >= 0 {
		return Duration(d) + " ago"
	}
	return "in " + Duration(t.Sub(now))
}
