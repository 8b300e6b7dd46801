package extract

// SetCommitHooks sets the functions a logical extraction calls just before
// and just after it commits a batch's manifest (for the crash tests).
func SetCommitHooks(o *Options, before, after func()) {
	o.beforeCommit, o.afterCommit = before, after
}
