package runtimetest

import (
	"errors"
	"fmt"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// EmulatorPackage is the AWS Lambda Runtime Interface Emulator, a tool of
// the module (a `tool` line in go.mod).
const EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// builds holds what this test binary has built, in one temporary
// directory, so each function is compiled once however many tests use it.
var builds struct {
	mu   sync.Mutex
	dir  string
	once map[string]*buildOnce
}

type buildOnce struct {
	once sync.Once
	path string
	err  error
}

// Root is the module root: the nearest directory holding go.mod, from the
// working directory (a test's package directory) up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// Compile builds a function's bootstrap as the Makefile's build-<LogicalId>
// target does (CGO_ENABLED=0, -trimpath, -tags lambda.norpc, -ldflags -s -w)
// but for the host's GOOS and GOARCH, once per test binary, and returns its
// path. The package is functions/<samtemplate.FunctionDir(logicalID)>.
func Compile(logicalID string) (string, error) {
	dir := samtemplate.FunctionDir(logicalID)
	return once("function:"+dir, func(out string) (string, error) {
		bin := filepath.Join(out, dir, "bootstrap")
		return bin, goBuild("-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", bin, "./functions/"+dir)
	})
}

// Build is Compile for a test: a build failure fails t.
func Build(t testing.TB, logicalID string) string {
	t.Helper()
	bin, err := Compile(logicalID)
	if err != nil {
		t.Fatalf("build %s: %v", logicalID, err)
	}
	return bin
}

// EmulatorBinary builds aws-lambda-rie once per test binary and returns its
// path.
func EmulatorBinary() (string, error) {
	return once("emulator", func(out string) (string, error) {
		bin := filepath.Join(out, "aws-lambda-rie")
		return bin, goBuild("-o", bin, EmulatorPackage)
	})
}

// RemoveBuilds deletes everything Compile and EmulatorBinary built. Call it
// from TestMain after m.Run.
func RemoveBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.once = "", nil
}

func once(key string, build func(dir string) (string, error)) (string, error) {
	builds.mu.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "flagline-runtimetest-")
		if err != nil {
			builds.mu.Unlock()
			return "", err
		}
		builds.dir, builds.once = dir, map[string]*buildOnce{}
	}
	b, ok := builds.once[key]
	if !ok {
		b = &buildOnce{}
		builds.once[key] = b
	}
	dir := builds.dir
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = build(dir) })
	return b.path, b.err
}

// goBuild runs `go build args…` in the module root for the host platform.
func goBuild(args ...string) error {
	root, err := Root()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, append([]string{"build"}, args...)...)
	cmd.Dir = root
	// The host's platform, whatever GOOS/GOARCH the caller exported for sam build.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("go build %v: %s\n%s", args, exit, out)
		}
		return fmt.Errorf("go build %v: %w", args, err)
	}
	return nil
}
