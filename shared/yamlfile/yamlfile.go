// Package yamlfile reads the YAML files operators keep under version
// control and apply to a deployment (the contact directory, the
// humanitarian allow-list): decoding is strict, so that a typo cannot
// silently drop a setting, and a file's problems are reported all at once,
// naming the file.
package yamlfile

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// ValidationError lists every problem found in a file, each naming the
// entry it is about.
type ValidationError struct {
	File     string
	Problems []string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if len(e.Problems) == 1 {
		b.WriteString(e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	return b.String()
}

// Decode decodes data into a T strictly: an unknown or repeated key is an
// error. go-yaml v1.19.2 (the newest release) panics on a sequence field
// given a malformed tag ("endpoints: !0… 0…", found by protect's
// FuzzParse): that is a malformed file, to be refused, not a crash of the
// command.
func Decode[T any](data []byte) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("decode YAML: the file is malformed")
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, &v, yaml.Strict()); err != nil {
		return v, fmt.Errorf("decode YAML: %w", err)
	}
	return v, nil
}

// Load reads the file at path and parses it. A *ValidationError gets the
// file's name; other errors are prefixed with it. what names the file's
// kind in a read error ("contact directory").
func Load[T any](path, what string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", what, err)
	}
	v, err := parse(data)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.File = path
			return zero, ve
		}
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
