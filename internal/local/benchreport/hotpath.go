package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchunit"

	"github.com/flagline/flagline/internal/local/coldstart"
)

// HotPathRatio is one ratio of the intake benchmarks: a benchmark's time
// per op over BenchmarkFloor's, per run, and their median.
type HotPathRatio struct {
	Name   string // e.g. "HotPath/secrets=2"
	Unit   string // the measure divided: cpu-ns/op or ns/op
	Runs   []float64
	Median float64
}

// cpuUnit is the CPU time per op the intake benchmarks report besides
// wall time, as benchfmt names it once tidied.
var _, cpuUnit = benchunit.Tidy(1, "cpu-ns/op")

// HotPathRatios reads `go test -bench` output of several runs of the
// shared/intake benchmarks, one after another (each run has Floor, Core and
// HotPath once), and gives, for each benchmark other than Floor, its time
// per op divided by Floor's in the same run: CPU time (cpu-ns/op) when
// every result has it, as it varies least on a shared machine, else wall
// time (ns/op). A run ends where a benchmark name repeats. A run without
// Floor is an error: no ratio without it.
func HotPathRatios(r io.Reader, name string) ([]HotPathRatio, error) {
	type run map[string][2]float64 // name → wall, cpu (0: not reported)
	var runs []run
	cur := run{}
	cpu := true
	rd := benchfmt.NewReader(r, name)
	for rd.Scan() {
		res, ok := rd.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		wall, ok := res.Value("sec/op")
		if !ok {
			continue
		}
		c, ok := res.Value(cpuUnit)
		cpu = cpu && ok && c > 0
		n := benchName(res.Name)
		if _, seen := cur[n]; seen {
			runs = append(runs, cur)
			cur = run{}
		}
		cur[n] = [2]float64{wall, c}
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", name)
	}
	measure, unit := 0, "ns/op"
	if cpu {
		measure, unit = 1, "cpu-ns/op"
	}
	by := map[string]*HotPathRatio{}
	var names []string
	for i, rn := range runs {
		floor, ok := rn["Floor"]
		if !ok {
			return nil, fmt.Errorf("%s: run %d has no BenchmarkFloor", name, i+1)
		}
		for n, t := range rn {
			if n == "Floor" {
				continue
			}
			if by[n] == nil {
				by[n] = &HotPathRatio{Name: n, Unit: unit}
				names = append(names, n)
			}
			by[n].Runs = append(by[n].Runs, t[measure]/floor[measure])
		}
	}
	slices.Sort(names)
	out := make([]HotPathRatio, 0, len(names))
	for _, n := range names {
		h := by[n]
		h.Median = coldstart.Median(h.Runs)
		out = append(out, *h)
	}
	return out, nil
}

// benchName is a result's name without "Benchmark" and GOMAXPROCS:
// "HotPath/secrets=2".
func benchName(n benchfmt.Name) string {
	base, parts := n.Parts()
	var b strings.Builder
	b.Write(base)
	for _, p := range parts {
		if len(p) > 0 && p[0] == '-' {
			continue
		}
		b.Write(p)
	}
	return b.String()
}
