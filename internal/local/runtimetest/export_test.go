//go:build integration

package runtimetest

// Processes are the emulator's pid and those of the processes it started
// (the bootstrap), for tests that check Stop leaves nothing behind.
func Processes(e *Emulator) []int { return e.processes() }

// Alive reports whether pid is a live process.
func Alive(pid int) bool { return alive(pid) }
