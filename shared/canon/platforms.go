package canon

import "strings"

// KnownPlatform reports whether name, a URL's Platform, is one of the
// platforms this package has rules for (the registrable domains of the
// hosts of hostAliases and hostPlatforms), as opposed to any other
// website: a personal site, a blog, an IP address.
func KnownPlatform(name string) bool { return knownPlatforms[strings.ToLower(name)] }

var knownPlatforms = func() map[string]bool {
	m := make(map[string]bool, len(platformNames))
	for _, p := range platformNames {
		m[p] = true
	}
	return m
}()
