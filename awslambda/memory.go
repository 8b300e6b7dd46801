package awslambda

import "strconv"

// MemoryLimit returns the soft memory limit the Go runtime should keep to
// in a function whose environment getenv reads: 85% of the function's
// memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MiB), leaving the rest to
// what the runtime does not count. Under the limit the garbage collector
// works harder instead of letting the heap double between collections, so
// a stage whose live data is bounded (they are: see docs/performance.md)
// fits a 512 MiB function at any scale. It returns 0, for no change, when
// GOMEMLIMIT is set (the runtime has applied it) or outside Lambda.
func MemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	mib, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mib <= 0 {
		return 0
	}
	return mib << 20 * 85 / 100
}
