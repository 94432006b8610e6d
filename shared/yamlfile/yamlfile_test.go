package yamlfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type doc struct {
	Items []struct {
		Name string `yaml:"name"`
	} `yaml:"items"`
}

// parse refuses a document without items, and one item with an empty
// name per problem.
func parse(data []byte) (*doc, error) {
	d, err := Decode[doc](data)
	if err != nil {
		return nil, err
	}
	var problems []string
	for i, it := range d.Items {
		if it.Name == "" {
			problems = append(problems, fmt.Sprintf("items[%d]: name is missing", i))
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return &d, nil
}

func TestValidationErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *ValidationError
		want string
	}{
		{&ValidationError{Problems: []string{"a: bad"}}, "a: bad"},
		{&ValidationError{File: "f.yaml", Problems: []string{"a: bad"}}, "f.yaml: a: bad"},
		{&ValidationError{File: "f.yaml", Problems: []string{"a: bad", "b: worse"}}, "f.yaml: 2 problems:\n  a: bad\n  b: worse"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// Decoding is strict, and a file that makes the YAML library panic is an
// error, not a crash.
func TestDecodeIsStrict(t *testing.T) {
	for name, in := range map[string]string{
		"unknown key":   "items:\n  - name: a\n    nmae: b\n",
		"repeated key":  "items:\n  - name: a\n    name: b\n",
		"malformed tag": "items: !00000000 000000000000000000\n",
	} {
		if _, err := Decode[doc]([]byte(in)); err == nil || !strings.HasPrefix(err.Error(), "decode YAML: ") {
			t.Errorf("%s: error %v, want a decode error", name, err)
		}
	}
	if _, err := Decode[doc]([]byte("items: !00000000 000000000000000000\n")); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("malformed tag: %v", err)
	}
	d, err := Decode[doc]([]byte("items:\n  - name: a\n"))
	if err != nil || len(d.Items) != 1 || d.Items[0].Name != "a" {
		t.Errorf("valid document: %+v, %v", d, err)
	}
}

// Load names the file in every error: a validation error carries it in
// File, any other parse error is prefixed with it.
func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	invalid := write("invalid.yaml", "items:\n  - name: a\n  - name: \"\"\n  - {}\n")
	_, err := Load(invalid, "test list", parse)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.File != invalid || len(ve.Problems) != 2 ||
		err.Error() != invalid+": 2 problems:\n  items[1]: name is missing\n  items[2]: name is missing" {
		t.Errorf("invalid file: %v", err)
	}
	undecodable := write("undecodable.yaml", "items: [\n")
	if _, err := Load(undecodable, "test list", parse); err == nil || !strings.HasPrefix(err.Error(), undecodable+": decode YAML: ") {
		t.Errorf("undecodable file: %v", err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing, "test list", parse); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read test list: ") {
		t.Errorf("missing file: %v", err)
	}
	d, err := Load(write("valid.yaml", "items:\n  - name: a\n"), "test list", parse)
	if err != nil || len(d.Items) != 1 {
		t.Errorf("valid file: %+v, %v", d, err)
	}
}
