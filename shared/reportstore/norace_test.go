//go:build !race

package reportstore

const raceEnabled = false
