package sum

import "testing"

func TestOf(t *testing.T) {
	type file struct{ rows int64 }
	rows := func(f file) int64 { return f.rows }
	for _, c := range []struct {
		files []file
		want  int64
	}{
		{nil, 0},
		{[]file{{7}}, 7},
		{[]file{{1}, {0}, {40}, {-3}}, 38},
	} {
		if got := Of(c.files, rows); got != c.want {
			t.Errorf("Of(%v) = %d, want %d", c.files, got, c.want)
		}
	}
}
