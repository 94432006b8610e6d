package coldstart

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// PackageInit is one package's initialisation as GODEBUG=inittrace=1
// reports it (https://pkg.go.dev/runtime#hdr-Environment_Variables).
type PackageInit struct {
	Package string
	Clock   time.Duration
	Bytes   int64
	Allocs  int64
}

// initLine is the runtime's format:
// "init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs".
var initLine = regexp.MustCompile(`^init (\S+) @[0-9.]+ ms, ([0-9.]+) ms clock, ([0-9]+) bytes, ([0-9]+) allocs$`)

// ParseInitTrace reads the inittrace lines out of a process's stderr,
// skipping anything else it wrote.
func ParseInitTrace(stderr []byte) []PackageInit {
	var out []PackageInit
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	for sc.Scan() {
		m := initLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(string(m[2]), 64)
		b, _ := strconv.ParseInt(string(m[3]), 10, 64)
		a, _ := strconv.ParseInt(string(m[4]), 10, 64)
		out = append(out, PackageInit{Package: string(m[1]), Clock: time.Duration(ms * float64(time.Millisecond)), Bytes: b, Allocs: a})
	}
	return out
}

// TraceInit starts a bootstrap once with GODEBUG=inittrace=1 and returns
// its package initialisations.
func TraceInit(ctx context.Context, b Bootstrap) ([]PackageInit, error) {
	env := maps.Clone(b.Env)
	env["GODEBUG"] = "inittrace=1"
	_, stderr, err := Start(ctx, b.Path, env)
	if err != nil {
		return nil, err
	}
	return ParseInitTrace(stderr), nil
}

// InitCost is the sum of a set of package initialisations.
type InitCost struct {
	Packages int
	Clock    time.Duration
	Bytes    int64
	Allocs   int64
}

// Total sums inits.
func Total(inits []PackageInit) InitCost {
	c := InitCost{Packages: len(inits)}
	for _, p := range inits {
		c.Clock += p.Clock
		c.Bytes += p.Bytes
		c.Allocs += p.Allocs
	}
	return c
}

// Extra is what a function initialises that the floor does not: the
// packages of fn absent from floor, costliest first (by allocated bytes,
// which vary less from run to run than clock time).
func Extra(fn, floor []PackageInit) []PackageInit {
	in := map[string]bool{}
	for _, p := range floor {
		in[p.Package] = true
	}
	var out []PackageInit
	for _, p := range fn {
		if !in[p.Package] {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b PackageInit) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(b.Clock, a.Clock))
	})
	return out
}
