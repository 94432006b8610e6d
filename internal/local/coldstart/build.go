package coldstart

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Packages of the reference bootstraps, relative to the module root.
const (
	// FloorPackage: hello-world handler, default SDK config, one DynamoDB
	// client; what each function is measured against.
	FloorPackage = "./internal/local/coldstart/floor"
	// HelloPackage: hello-world handler and no SDK, for sizes.
	HelloPackage = "./internal/local/coldstart/hello"
)

// Build compiles the package pkg (relative to the module root) into a
// bootstrap at out, for goos/goarch, as the Makefile's build-<LogicalId>
// targets build the functions for Lambda: CGO_ENABLED=0, -trimpath,
// -tags lambda.norpc, -ldflags '-s -w'. The arm64 build of a function is
// byte for byte what sam build deploys.
func Build(root, pkg, out, goos, goarch string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %v\n%s", pkg, goos, goarch, err, b)
	}
	return nil
}

// SizeMB is the size of the file at path in megabytes (10^6 bytes).
func SizeMB(path string) (float64, error) {
	fi, err := os.Stat(filepath.Clean(path))
	if err != nil {
		return 0, err
	}
	return float64(fi.Size()) / 1e6, nil
}
