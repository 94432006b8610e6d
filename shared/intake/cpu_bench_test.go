package intake_test

import (
	"syscall"
	"testing"
	"time"
)

// cpuPerOp starts counting the process's CPU time (user and system, every
// thread, so garbage collection is included); the function it returns
// reports that time per iteration as cpu-ns/op. On a shared machine a
// benchmark's wall time per op swings with whatever else runs; its CPU
// time much less, so `make bench` takes its ratios from cpu-ns/op. Call it
// as `defer cpuPerOp(b)()` just before the b.Loop loop.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
