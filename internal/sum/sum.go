// Package sum adds up one number over a slice: the totals the stages'
// results and the lake's manifests report (rows, bytes, deletions). It
// owns no type and knows none of the stages.
package sum

// Of is the sum of f over xs; 0 when xs is empty.
func Of[T any](xs []T, f func(T) int64) int64 {
	var n int64
	for _, x := range xs {
		n += f(x)
	}
	return n
}
