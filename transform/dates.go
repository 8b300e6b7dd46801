package transform

import (
	"time"

	"github.com/parquet-go/parquet-go"
)

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
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range []byte(s[from:to]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	m, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// daysIn is the number of days in month m of year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (Howard Hinnant's days_from_civil): the
// same as time.Date(y, m, d, …).Unix()/86400, without time.Parse's cost on
// millions of rows.
func daysFromCivil(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y ≥ 0 here
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
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

// part returns the part of the day that a calendar table's column of that
// name holds (star.Calendar), and whether there is such a part.
func (d day) part(name string) (parquet.Value, bool) {
	switch name {
	case "date_id":
		return parquet.Int32Value(d.id), true
	case "year":
		return parquet.Int32Value(int32(d.year)), true
	case "month":
		return parquet.Int32Value(int32(d.month)), true
	case "day":
		return parquet.Int32Value(int32(d.day)), true
	case "day_of_week":
		return parquet.Int32Value(int32(d.dayOfWeek)), true
	case "day_name":
		return parquet.ByteArrayValue([]byte(d.dayName)), true
	case "month_name":
		return parquet.ByteArrayValue([]byte(d.monthName)), true
	case "quarter":
		return parquet.Int32Value(int32(d.quarter)), true
	}
	return parquet.Value{}, false
}
