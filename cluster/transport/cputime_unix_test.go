//go:build unix

package transport

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process used so far; the
// benchmarks run both ends of a channel in-process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
