// Command benchreport prints the figures of docs/performance.md from one
// run (`make bench` runs it):
//
//   - -hotpath FILE: the intake's HotPath/Floor and Core/Floor ratios from
//     `go test -bench` output of several interleaved runs;
//   - -rounds N: cold init, process start to first /next, of each
//     function's bootstrap against the floor bootstrap, N rounds;
//   - -sizes: each function's arm64 bootstrap size, as sam build makes it,
//     and the floor's.
//
// It is local tooling and never ships.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flagline/flagline/internal/local/coldstart"
	"github.com/flagline/flagline/internal/local/runtimetest"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

// The goals of issue 12; a figure over its goal is marked.
const (
	goalHotPath = 1.5
	goalCore    = 1.2
	goalInit    = 1.2
	goalSizeMB  = 10
)

func main() {
	hotpath := flag.String("hotpath", "", "`go test -bench` output of interleaved runs of the shared/intake benchmarks")
	rounds := flag.Int("rounds", 0, "cold-init rounds (0: skip the cold-init benchmark)")
	warmup := flag.Int("warmup", 2, "cold-init rounds not counted")
	sizes := flag.Bool("sizes", false, "report arm64 bootstrap sizes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *hotpath, *rounds, *warmup, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, hotpath string, rounds, warmup int, sizes bool) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	if hotpath != "" {
		if err := reportHotPath(w, hotpath); err != nil {
			return err
		}
	}
	if rounds == 0 && !sizes {
		return nil
	}
	root, err := runtimetest.Root()
	if err != nil {
		return err
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	functions := tpl.Functions()
	tmp, err := os.MkdirTemp("", "flagline-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer runtimetest.RemoveBuilds()
	if rounds > 0 {
		if err := reportColdInit(ctx, w, root, tmp, tpl, functions, rounds, warmup); err != nil {
			return err
		}
	}
	if sizes {
		if err := reportSizes(w, root, tmp, functions); err != nil {
			return err
		}
	}
	return nil
}

func reportHotPath(w *tabwriter.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ratios, err := HotPathRatios(f, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nHot path: %s over Floor's in the same run, median of %d interleaved runs (%s)\n", ratios[0].Unit, len(ratios[0].Runs), path)
	fmt.Fprintln(w, "benchmark\tratio\tgoal\truns")
	for _, r := range ratios {
		goal := goalCore
		if strings.HasPrefix(r.Name, "HotPath") {
			goal = goalHotPath
		}
		fmt.Fprintf(w, "%s / Floor\t%.2f×\t%s\t%s\n", r.Name, r.Median, verdict(r.Median, goal, "×"), fmtRatios(r.Runs))
	}
	return w.Flush()
}

func reportColdInit(ctx context.Context, w *tabwriter.Writer, root, tmp string, tpl *samtemplate.Template, functions []string, rounds, warmup int) error {
	floor := coldstart.Bootstrap{Name: "floor", Path: filepath.Join(tmp, runtime.GOARCH, "floor", "bootstrap")}
	if err := coldstart.Build(root, coldstart.FloorPackage, floor.Path, runtime.GOOS, runtime.GOARCH); err != nil {
		return err
	}
	var fns []coldstart.Bootstrap
	for _, id := range functions {
		path, err := runtimetest.Compile(id)
		if err != nil {
			return err
		}
		env, err := coldstart.LambdaEnv(tpl, id)
		if err != nil {
			return err
		}
		fns = append(fns, coldstart.Bootstrap{Name: samtemplate.FunctionDir(id), Path: path, Env: env})
		if floor.Env == nil {
			// The floor starts in the first function's environment: what
			// Lambda sets and the Globals variables are what its SDK
			// config reads; the function's own variables it ignores.
			floor.Env = env
		}
	}

	start := time.Now()
	cmp, err := coldstart.Compare(ctx, floor, fns, rounds, warmup)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nCold init: process start → first GET /runtime/invocation/next, %s/%s, %d rounds (+%d warm-up) in %s; ratio = median of per-round function/floor\n",
		runtime.GOOS, runtime.GOARCH, rounds, warmup, time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintln(w, "function\tmedian ms\tfloor ms\tratio\tgoal")
	for _, c := range cmp {
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%.2f×\t%s\n", c.Name, ms(coldstart.Median(c.Init)), ms(coldstart.Median(c.Floor)), c.Ratio(), verdict(c.Ratio(), goalInit, "×"))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	floorInit, err := coldstart.TraceInit(ctx, floor)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPackage init (GODEBUG=inittrace=1, one start each): sum over packages; extra = packages the floor does not initialise, costliest first\n")
	fmt.Fprintln(w, "bootstrap\tpackages\tinit ms\tinit MB\tallocs\textra vs floor")
	t := coldstart.Total(floorInit)
	fmt.Fprintf(w, "floor\t%d\t%.2f\t%.2f\t%d\t\n", t.Packages, ms(t.Clock), float64(t.Bytes)/1e6, t.Allocs)
	for _, fn := range fns {
		inits, err := coldstart.TraceInit(ctx, fn)
		if err != nil {
			return err
		}
		t := coldstart.Total(inits)
		extra := coldstart.Extra(inits, floorInit)
		e := coldstart.Total(extra)
		top := ""
		for i, p := range extra {
			if i == 3 {
				break
			}
			top += fmt.Sprintf("; %s %.2f ms %.2f MB %d allocs", p.Package, ms(p.Clock), float64(p.Bytes)/1e6, p.Allocs)
		}
		fmt.Fprintf(w, "%s\t%d\t%.2f\t%.2f\t%d\t+%d pkgs %.2f ms %.2f MB %d allocs%s\n", fn.Name, t.Packages, ms(t.Clock), float64(t.Bytes)/1e6, t.Allocs, e.Packages, ms(e.Clock), float64(e.Bytes)/1e6, e.Allocs, top)
	}
	return w.Flush()
}

func reportSizes(w *tabwriter.Writer, root, tmp string, functions []string) error {
	fmt.Fprintf(w, "\narm64 bootstrap size (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -trimpath -tags lambda.norpc -ldflags='-s -w'), MB = 10^6 bytes; floor = hello-world + SDK config + DynamoDB client, hello = hello-world without the SDK\n")
	fmt.Fprintln(w, "bootstrap\tMB\tgoal")
	pkgs := map[string]string{"floor": coldstart.FloorPackage, "hello": coldstart.HelloPackage}
	names := []string{}
	for _, id := range functions {
		n := samtemplate.FunctionDir(id)
		pkgs[n] = "./functions/" + n
		names = append(names, n)
	}
	names = append(names, "floor", "hello")
	for _, n := range names {
		out := filepath.Join(tmp, "arm64", n, "bootstrap")
		if err := coldstart.Build(root, pkgs[n], out, "linux", "arm64"); err != nil {
			return err
		}
		mb, err := coldstart.SizeMB(out)
		if err != nil {
			return err
		}
		goal := ""
		if pkgs[n] == "./functions/"+n {
			goal = verdict(mb, goalSizeMB, " MB")
		}
		fmt.Fprintf(w, "%s\t%.2f\t%s\n", n, mb, goal)
	}
	return w.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func verdict(v, goal float64, unit string) string {
	if v <= goal {
		return fmt.Sprintf("≤ %g%s ok", goal, unit)
	}
	return fmt.Sprintf("≤ %g%s MISSED", goal, unit)
}

func fmtRatios(rs []float64) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", r)
	}
	return s
}
