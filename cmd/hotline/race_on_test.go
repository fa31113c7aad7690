//go:build race

package main

// raceEnabled: the test binary was built with -race, so the hotline binary the tests run is built with it too.
const raceEnabled = true
