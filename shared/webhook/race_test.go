//go:build race

package webhook_test

// The race detector makes sync.Pool drop a share of what is put back, so
// allocation counts mean nothing under it.
func init() { raceEnabled = true }
