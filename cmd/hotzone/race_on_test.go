//go:build race

package main

// raceDetector: the tests run with the race detector, which slows the
// server several times over; a figure measured as users run it is not.
const raceDetector = true
