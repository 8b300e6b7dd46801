//go:build linux

package pgcluster

import "syscall"

// setParentDeathSignal has the kernel send postgres SIGINT, a fast shutdown,
// if this process dies without calling Stop (a test binary killed by a
// timeout, say), so no server is left running. Its temp dir is left behind.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGINT
}
