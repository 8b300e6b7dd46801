package lambdatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func terminate(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
}

// kill ends the emulator and the function's process. RIE starts the
// function in a process group of its own, which killing RIE would leave
// running, so that group goes first. (RIE itself stays in the test's
// group, so that Ctrl-C reaches it and it stops the function cleanly.)
func kill(cmd *exec.Cmd) {
	for _, pid := range children(cmd.Process.Pid) {
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	cmd.Process.Kill()
}

// children returns the pids of parent's child processes.
func children(parent int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
