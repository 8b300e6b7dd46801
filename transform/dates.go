package transform

import "time"

const (
	microsPerDay  = 86_400_000_000
	secondsPerDay = 86_400
)

// splitMicros splits a timestamp in microseconds since 1970-01-01 00:00
// (no time zone) into its date, in days since 1970-01-01, and its time of
// day in microseconds since midnight.
func splitMicros(us int64) (days int32, tod int64) {
	d, r := us/microsPerDay, us%microsPerDay
	if r < 0 {
		d, r = d-1, r+microsPerDay
	}
	return int32(d), r
}

// parseDate parses a 'YYYY-MM-DD' text date, as totesys stores dates, into
// days since 1970-01-01. Anything else (another layout, a day that does not
// exist, year 0) is not a date.
func parseDate(s string) (int32, bool) {
	if len(s) != len(time.DateOnly) || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	for i := range len(s) {
		if i != 4 && i != 7 && (s[i] < '0' || s[i] > '9') {
			return 0, false
		}
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 1 {
		return 0, false
	}
	return int32(t.Unix() / secondsPerDay), true
}

// day is one row of dim_date.
type day struct {
	id        int32 // days since 1970-01-01
	year      int
	month     int
	day       int
	dayOfWeek int // ISO 8601: Monday 1 … Sunday 7
	dayName   string
	monthName string
	quarter   int
}

func dateRow(days int32) day {
	t := time.Unix(int64(days)*secondsPerDay, 0).UTC()
	dow := int(t.Weekday())
	if dow == 0 {
		dow = 7
	}
	return day{
		id:        days,
		year:      t.Year(),
		month:     int(t.Month()),
		day:       t.Day(),
		dayOfWeek: dow,
		dayName:   t.Weekday().String(),
		monthName: t.Month().String(),
		quarter:   (int(t.Month())-1)/3 + 1,
	}
}
