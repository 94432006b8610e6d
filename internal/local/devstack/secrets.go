package devstack

import (
	"maps"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
)

// withLocalSecrets returns overrides with a notifier key added when none is
// given: deployed, the key is an SSM SecureString the stack does not create,
// and without one intake stores nothing (503). A fresh random key per stack
// is enough locally, as moto keeps no case from one run to the next.
func withLocalSecrets(overrides map[string]string) map[string]string {
	if overrides[intake.EnvNotifierKey] != "" {
		return overrides
	}
	out := maps.Clone(overrides)
	if out == nil {
		out = map[string]string{}
	}
	out[intake.EnvNotifierKey] = reportstore.NewNotifierKey()
	return out
}
