package warehouse

// SetBeforeCommit sets the function called with the batch id right before
// a batch's transaction commits (nil for none).
func SetBeforeCommit(f func(batch string)) { beforeCommit = f }
