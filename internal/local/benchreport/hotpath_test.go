package main

import (
	"strings"
	"testing"
)

// Two runs of the intake benchmarks, as `make bench` appends them.
const twoRuns = `goos: linux
goarch: amd64
pkg: github.com/flagline/flagline/shared/intake
BenchmarkHotPath/secrets=2-2   	  100000	     20000 ns/op	   500 B/op	  10 allocs/op
BenchmarkHotPath/secrets=1-2   	  100000	     18000 ns/op	   500 B/op	  10 allocs/op
BenchmarkFloor-2               	  100000	     10000 ns/op	   300 B/op	   5 allocs/op
BenchmarkCore/secrets=2-2      	  100000	     13000 ns/op	   400 B/op	   8 allocs/op
BenchmarkCore/secrets=1-2      	  100000	     11000 ns/op	   400 B/op	   8 allocs/op
PASS
goos: linux
goarch: amd64
pkg: github.com/flagline/flagline/shared/intake
BenchmarkHotPath/secrets=2-2   	  100000	     30000 ns/op	   500 B/op	  10 allocs/op
BenchmarkHotPath/secrets=1-2   	  100000	     24000 ns/op	   500 B/op	  10 allocs/op
BenchmarkFloor-2               	  100000	     20000 ns/op	   300 B/op	   5 allocs/op
BenchmarkCore/secrets=2-2      	  100000	     24000 ns/op	   400 B/op	   8 allocs/op
BenchmarkCore/secrets=1-2      	  100000	     22000 ns/op	   400 B/op	   8 allocs/op
PASS
`

func TestHotPathRatiosPairEachRunWithItsFloor(t *testing.T) {
	got, err := HotPathRatios(strings.NewReader(twoRuns), "bench.out")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{
		"Core/secrets=1":    {1.1, 1.1},
		"Core/secrets=2":    {1.3, 1.2},
		"HotPath/secrets=1": {1.8, 1.2},
		"HotPath/secrets=2": {2.0, 1.5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d ratios, want %d: %+v", len(got), len(want), got)
	}
	for _, r := range got {
		w, ok := want[r.Name]
		if !ok || len(r.Runs) != 2 || !near(r.Runs[0], w[0]) || !near(r.Runs[1], w[1]) || !near(r.Median, (w[0]+w[1])/2) {
			t.Errorf("%s: runs %v median %v, want runs %v", r.Name, r.Runs, r.Median, w)
		}
	}
}

func TestHotPathRatiosNeedTheFloor(t *testing.T) {
	noFloor := strings.ReplaceAll(twoRuns, "BenchmarkFloor", "BenchmarkOther")
	if _, err := HotPathRatios(strings.NewReader(noFloor), "bench.out"); err == nil || !strings.Contains(err.Error(), "no BenchmarkFloor") {
		t.Errorf("HotPathRatios without Floor = %v, want an error", err)
	}
	if _, err := HotPathRatios(strings.NewReader("PASS\n"), "bench.out"); err == nil {
		t.Error("HotPathRatios of no results: no error")
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// With cpu-ns/op on every result the ratios divide CPU time, which a busy
// machine disturbs far less than wall time; one result without it and
// they fall back to wall time for all.
func TestHotPathRatiosPreferCPUTime(t *testing.T) {
	const run = `BenchmarkHotPath/secrets=1-2   100000   40000 ns/op   15000 cpu-ns/op
BenchmarkFloor-2               100000   10000 ns/op   10000 cpu-ns/op
`
	got, err := HotPathRatios(strings.NewReader(run), "bench.out")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Unit != "cpu-ns/op" || !near(got[0].Median, 1.5) {
		t.Errorf("got %+v, want HotPath/secrets=1 at 1.5 in cpu-ns/op", got)
	}
	mixed := run + strings.ReplaceAll(run, "   15000 cpu-ns/op", "")
	got, err = HotPathRatios(strings.NewReader(mixed), "bench.out")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Unit != "ns/op" || !near(got[0].Median, 4) {
		t.Errorf("got %+v, want HotPath/secrets=1 at 4 in ns/op", got)
	}
}
