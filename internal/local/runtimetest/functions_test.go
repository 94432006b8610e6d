//go:build integration

package runtimetest_test

import (
	"github.com/flagline/flagline/internal/local/samtemplate"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flagline/flagline/internal/local/runtimetest"
)

// function is one function of the template running under the emulator.
type function struct {
	id  string // logical id
	env map[string]string
	emu *runtimetest.Emulator
}

// suite is the runtime test of one function: the expected outcome of each
// of its sample events (by file name), and how to check them.
type suite struct {
	// events names every sample event the suite expects.
	events []string
	// overrides set variables the template declares, as
	// `sam local invoke --env-vars` would.
	overrides map[string]string
	run       func(t *testing.T, fn *function, files []eventFile)
}

// suites maps a function's directory to its suite. A function of the
// template with no suite fails TestFunctions.
var suites = map[string]suite{
	"ingest":    ingestSuite,
	"aggregate": aggregateSuite,
	"alert":     alertSuite,
	"cases":     casesSuite,
	"escalate":  escalateSuite,
}

// TestFunctions builds each function of template.yaml once, runs it under
// the emulator once, and invokes it with every sample event of its suite.
func TestFunctions(t *testing.T) {
	for _, id := range stack.Template.Functions() {
		t.Run(id, func(t *testing.T) {
			dir := samtemplate.FunctionDir(id)
			if !exists(filepath.Join(root, "functions", dir)) {
				t.Skipf("functions/%s does not exist yet: %s is not covered until it does", dir, id)
			}
			s, ok := suites[dir]
			if !ok {
				t.Fatalf("%s has no runtime test: add a suite for %q to suites", id, dir)
			}
			files := eventFiles(t, dir)
			if len(files) == 0 {
				t.Skipf("no events/%s-*.json (and no draft in testdata/): nothing to invoke %s with", dir, id)
			}
			var known []eventFile
			for _, f := range files {
				if f.draft {
					t.Logf("events/%s does not exist yet: using the draft testdata/%s", f.name, f.name)
				}
				if !slices.Contains(s.events, f.name) {
					t.Errorf("%s has no expected outcome in the %s suite: add one", f.path, dir)
					continue
				}
				known = append(known, f)
			}
			bootstrap := runtimetest.Build(t, id)
			env, err := stack.FunctionEnv(id, moto.Env(), s.overrides)
			if err != nil {
				t.Fatal(err)
			}
			fn := &function{id: id, env: env, emu: runtimetest.Start(t, bootstrap, env)}
			s.run(t, fn, known)
		})
	}
}

// TestEveryFunctionAndEventIsCovered: every events/*.json belongs to a
// function of the template and has an expected outcome; every function
// whose directory exists has a suite and at least one sample event.
func TestEveryFunctionAndEventIsCovered(t *testing.T) {
	dirs := map[string]string{} // functions/<dir> → logical id
	for _, id := range stack.Template.Functions() {
		dirs[samtemplate.FunctionDir(id)] = id
	}
	paths, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range paths {
		name := filepath.Base(p)
		have[name] = true
		dir, _, ok := strings.Cut(name, "-")
		id, known := dirs[dir]
		switch {
		case !ok || !known:
			t.Errorf("events/%s belongs to no function of template.yaml: name it <function>-<case>.json, one of %v", name, slices.Sorted(maps.Keys(dirs)))
		case !slices.Contains(suites[dir].events, name):
			t.Errorf("events/%s has no expected outcome in the %s suite (%s)", name, dir, id)
		}
	}
	for dir, id := range dirs {
		if !exists(filepath.Join(root, "functions", dir)) {
			t.Logf("%s: functions/%s does not exist yet; not covered", id, dir)
			continue
		}
		s, ok := suites[dir]
		if !ok {
			t.Errorf("%s has no runtime test: add a suite for %q", id, dir)
			continue
		}
		n := 0
		for _, name := range s.events {
			switch {
			case have[name]:
				n++
			case exists(filepath.Join("testdata", name)):
				t.Errorf("%s: events/%s does not exist: move the draft internal/local/runtimetest/testdata/%s there", id, name, name)
			default:
				t.Errorf("%s: the suite expects events/%s, which does not exist", id, name)
			}
		}
		if n == 0 && len(s.events) == 0 {
			t.Errorf("%s has no sample event: add events/%s-*.json", id, dir)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
