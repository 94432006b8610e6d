package webhook

import (
	"hash"
	"sync/atomic"
	"testing"
)

// CountHMACs counts, until the test ends, every signature computed by the
// HMAC states created from now on (each secret's pool makes its states on
// first use, so secrets parsed after the call are counted from the start).
// Tests that call it must not run in parallel.
func CountHMACs(t testing.TB) *atomic.Int64 {
	n := new(atomic.Int64)
	prev := newMAC
	newMAC = func(key []byte) hash.Hash { return countingMAC{Hash: prev(key), n: n} }
	t.Cleanup(func() { newMAC = prev })
	return n
}

// countingMAC counts the signatures (Sum calls) of an HMAC.
type countingMAC struct {
	hash.Hash
	n *atomic.Int64
}

func (m countingMAC) Sum(b []byte) []byte {
	m.n.Add(1)
	return m.Hash.Sum(b)
}
