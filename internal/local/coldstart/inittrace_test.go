package coldstart

import (
	"testing"
	"time"
)

const trace = `init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
init runtime @0.039 ms, 0.042 ms clock, 0 bytes, 0 allocs
something the program wrote
init github.com/aws/aws-sdk-go-v2/service/ssm/schemas @1.5 ms, 0.94 ms clock, 1430000 bytes, 7882 allocs
init github.com/flagline/flagline/shared/webhook @2.1 ms, 0.17 ms clock, 50000 bytes, 722 allocs
`

func TestParseInitTrace(t *testing.T) {
	got := ParseInitTrace([]byte(trace))
	if len(got) != 4 {
		t.Fatalf("parsed %d lines, want 4: %+v", len(got), got)
	}
	ssm := got[2]
	if ssm.Package != "github.com/aws/aws-sdk-go-v2/service/ssm/schemas" || ssm.Clock != 940*time.Microsecond || ssm.Bytes != 1430000 || ssm.Allocs != 7882 {
		t.Errorf("ssm line = %+v", ssm)
	}
	total := Total(got)
	if total.Packages != 4 || total.Bytes != 1480000 || total.Allocs != 8604 {
		t.Errorf("Total = %+v", total)
	}
}

func TestExtraIsWhatTheFloorDoesNotInitialise(t *testing.T) {
	fn := ParseInitTrace([]byte(trace))
	floor := fn[:2]
	extra := Extra(fn, floor)
	if len(extra) != 2 || extra[0].Package != "github.com/aws/aws-sdk-go-v2/service/ssm/schemas" || extra[1].Package != "github.com/flagline/flagline/shared/webhook" {
		t.Errorf("Extra = %+v, want ssm/schemas then webhook (costliest first)", extra)
	}
}
