package devstack

import (
	"maps"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/reportstore"
)

// EnvDashboardURL is the base URL of the links in alert emails and of the
// case pages (functions that declare it: alert, cases).
const EnvDashboardURL = "DASHBOARD_URL"

// withLocalSecrets returns overrides with what a deployment keeps in SSM
// added when the caller gives none: the notifier key (without one intake
// stores nothing, 503) and the link key (without one no email carries a
// link and every link page answers 503). A fresh random key per stack is
// enough locally, as moto keeps no case from one run to the next; one map
// serves every function, so the alert function signs links with the key
// the cases function verifies them with. DASHBOARD_URL becomes the stack's
// own URL (unless the caller sets it), so the links in the inbox's emails
// open the local case pages. As with every override, a function gets only
// the variables its template declares.
func withLocalSecrets(overrides map[string]string, stackURL string) map[string]string {
	out := maps.Clone(overrides)
	if out == nil {
		out = map[string]string{}
	}
	if out[intake.EnvNotifierKey] == "" {
		out[intake.EnvNotifierKey] = reportstore.NewNotifierKey()
	}
	if out[linksign.EnvKey] == "" {
		out[linksign.EnvKey] = linksign.NewKey()
	}
	if _, set := out[EnvDashboardURL]; !set {
		out[EnvDashboardURL] = stackURL
	}
	return out
}
