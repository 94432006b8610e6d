package tailbuf_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flagline/flagline/internal/local/tailbuf"
)

func TestKeepsTheLastBytes(t *testing.T) {
	b := tailbuf.New(10)
	for i := range 5 {
		fmt.Fprintf(b, "line%d\n", i)
	}
	if got := b.String(); !strings.HasSuffix(got, "line4\n") || len(got) != 10 {
		t.Errorf("kept %q, want the last 10 bytes", got)
	}
	if got := b.Last(6); got != "line4\n" {
		t.Errorf("Last(6) = %q", got)
	}
	if got := b.Last(100); len(got) != 10 {
		t.Errorf("Last(100) = %q, want all 10 kept bytes", got)
	}
}
