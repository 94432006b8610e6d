package alert_test

import (
	"slices"
	"testing"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

func TestRoute(t *testing.T) {
	tests := []struct {
		name       string
		countries  []string
		categories []string
		severity   casestore.Severity
		want       []string
	}{
		{"one country", []string{"IT"}, []string{"smuggling_offer"}, casestore.Low, []string{"IT"}},
		{"no country goes to the coordinator", nil, []string{"transport"}, casestore.Medium, []string{"EU"}},
		{"empty strings are no country", []string{"", " "}, []string{"transport"}, casestore.Low, []string{"EU"}},
		{"critical copies EU", []string{"IT"}, []string{"threat_to_life"}, casestore.Critical, []string{"IT", "EU"}},
		{"critical severity copies EU", []string{"IT"}, []string{"transport"}, casestore.Critical, []string{"IT", "EU"}},
		{"critical without countries is EU once", nil, []string{"threat_to_life"}, casestore.Critical, []string{"EU"}},
		{"sorted and de-duplicated", []string{"MT", "IT", "GR", "IT", "mt"}, []string{"transport"}, casestore.High, []string{"GR", "IT", "MT"}},
		{"EU named by the case comes last", []string{"EU", "ES", "IT"}, []string{"other"}, casestore.High, []string{"ES", "IT", "EU"}},
		{"critical with EU named once", []string{"EU", "IT"}, []string{"threat_to_life"}, casestore.Critical, []string{"IT", "EU"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := alert.Alert{Severity: tc.severity, Case: casestore.Case{Countries: tc.countries, Categories: tc.categories}}
			if got := alert.Route(&a); !slices.Equal(got, tc.want) {
				t.Errorf("Route = %q, want %q", got, tc.want)
			}
		})
	}
}
