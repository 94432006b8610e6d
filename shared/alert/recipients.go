package alert

import (
	"slices"

	"github.com/flagline/flagline/shared/contacts"
)

// Recipients are the contact points of dir that answer for one of the
// routed countries (Route), in dir's order. A country nobody answers for
// reaches nobody; the EU coordinator answers for EU.
func Recipients(dir []contacts.ContactPoint, routed []string) []contacts.ContactPoint {
	var out []contacts.ContactPoint
	for _, cp := range dir {
		if slices.ContainsFunc(cp.Countries, func(c string) bool { return slices.Contains(routed, c) }) {
			out = append(out, cp)
		}
	}
	return out
}

// ReopenRecipients are the recipients of a reopened alert: the case's lead
// alone when it has one still in the directory (the desk that had it
// removed is the one to act again), else the desks of the routed
// countries.
func ReopenRecipients(dir []contacts.ContactPoint, lead string, routed []string) []contacts.ContactPoint {
	if lead != "" {
		if i := slices.IndexFunc(dir, func(cp contacts.ContactPoint) bool { return cp.ID == lead }); i >= 0 {
			return dir[i : i+1]
		}
	}
	return Recipients(dir, routed)
}

// ids are the contact points' ids.
func ids(cps []contacts.ContactPoint) []string {
	out := make([]string, len(cps))
	for i, cp := range cps {
		out[i] = cp.ID
	}
	return out
}

// countriesOf are the countries of contact point id in dir, or nil.
func countriesOf(dir []contacts.ContactPoint, id string) []string {
	for _, cp := range dir {
		if cp.ID == id {
			return cp.Countries
		}
	}
	return nil
}
