package alert

import (
	"slices"
	"strings"
)

// Route returns the countries an alert is addressed to: the case's countries,
// sorted and without duplicates, then EU last when the case names EU, names
// no country (the coordinator receives what no country claims), or is about
// a threat to life (DSA Art. 18: the coordinator always sees those). SNS
// subscription filter policies match these values of the `country` attribute.
func Route(a *Alert) []string {
	out := make([]string, 0, len(a.Case.Countries)+1)
	eu := a.Critical()
	for _, c := range a.Case.Countries {
		switch c = strings.ToUpper(strings.TrimSpace(c)); c {
		case "":
		case EU:
			eu = true
		default:
			out = append(out, c)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if eu || len(out) == 0 {
		out = append(out, EU)
	}
	return out
}
