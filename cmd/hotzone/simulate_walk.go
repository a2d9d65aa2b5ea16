package main

import (
	"math"
	"math/rand/v2"
	"time"
)

// This file is the movement model of `hotzone simulate`: people walking
// or cycling around a store, some heading in, some lingering inside, some
// passing by. Positions are kept in meters on a plane tangent at the
// store's centre, which is accurate to well under a meter at the few
// kilometers a simulated person ever strays.

const earthRadiusM = 6371008.8 // the server's spherical Earth

// simStore is what the simulator knows of a store: a centre and a radius
// that is inside the fence (the fence's own radius for a circle, a part of
// the bounding box for a polygon).
type simStore struct {
	ID       string
	Lat, Lon float64
	RadiusM  float64
	Timezone string
	Live     bool // had a live event when the run started
}

type walkMode int

const (
	modeVisit  walkMode = iota // heading for the store's centre
	modeLinger                 // inside, milling about
	modePass                   // walking or riding by, wandering
)

// walker is one simulated person. It is owned by whoever holds its
// device, so it needs no lock.
type walker struct {
	store   *simStore
	x, y    float64 // meters east and north of the store's centre
	heading float64 // radians, 0 = east, counter-clockwise
	speedMS float64 // while moving; 1–1.8 walking, 3–5 cycling
	mode    walkMode
	lingerS float64 // seconds left in modeLinger
	last    time.Time
	rng     *rand.Rand
}

// newWalker places a person near st. horizon is how long the run lasts:
// visitors start close enough to arrive within it, so a short demo still
// shows people walking in.
func newWalker(rng *rand.Rand, st *simStore, horizon time.Duration, now time.Time) *walker {
	w := &walker{store: st, rng: rng, last: now}
	w.speedMS = 1 + 0.8*rng.Float64()
	if rng.Float64() < 0.3 {
		w.speedMS = 3 + 2*rng.Float64()
	}
	r := st.RadiusM
	bearing := 2 * math.Pi * rng.Float64()
	switch p := rng.Float64(); {
	case p < 0.15: // already inside
		d := 0.6 * r * math.Sqrt(rng.Float64())
		w.x, w.y = d*math.Cos(bearing), d*math.Sin(bearing)
		w.heading = 2 * math.Pi * rng.Float64()
		w.mode, w.lingerS = modeLinger, 10+50*rng.Float64()
	case p < 0.6: // on the way in
		reach := min(1000, w.speedMS*horizon.Seconds())
		d := r + 5 + (0.1+0.8*rng.Float64())*reach
		w.x, w.y = d*math.Cos(bearing), d*math.Sin(bearing)
		w.heading = bearing + math.Pi + 0.4*rng.NormFloat64()
		w.mode = modeVisit
	default: // passing by, along a tangent just outside the fence
		d := r + 30 + 300*rng.Float64()
		w.x, w.y = d*math.Cos(bearing), d*math.Sin(bearing)
		side := math.Pi / 2
		if rng.IntN(2) == 0 {
			side = -side
		}
		w.heading = bearing + side + 0.3*rng.NormFloat64()
		w.mode = modePass
	}
	return w
}

// advance moves the walker to now, in steps of at most a second so the
// heading changes smoothly; at most a minute is simulated per call.
func (w *walker) advance(now time.Time) {
	dt := min(now.Sub(w.last).Seconds(), 60)
	w.last = now
	for dt > 0 {
		h := min(dt, 1)
		dt -= h
		w.step(h)
	}
}

func (w *walker) step(h float64) {
	r := w.store.RadiusM
	d := math.Hypot(w.x, w.y)
	toCentre := math.Atan2(-w.y, -w.x)
	speed := w.speedMS
	switch w.mode {
	case modeVisit:
		w.turn(toCentre, 0.6*h)
		w.heading += 0.15 * math.Sqrt(h) * w.rng.NormFloat64()
		if d < 0.35*r {
			w.mode, w.lingerS = modeLinger, 10+50*w.rng.Float64()
		}
	case modeLinger:
		speed = 0.4
		w.heading += math.Sqrt(h) * w.rng.NormFloat64()
		if d > 0.6*r {
			w.turn(toCentre, math.Pi)
		}
		if w.lingerS -= h; w.lingerS <= 0 {
			w.mode = modePass
			w.heading = toCentre + math.Pi + 0.5*w.rng.NormFloat64() // out again
		}
	case modePass:
		w.heading += 0.2 * math.Sqrt(h) * w.rng.NormFloat64()
		if d > r+1500 { // stay in the neighbourhood
			w.turn(toCentre, 0.3*h)
		}
	}
	w.x += speed * h * math.Cos(w.heading)
	w.y += speed * h * math.Sin(w.heading)
}

// turn swings the heading toward target by at most maxRad.
func (w *walker) turn(target, maxRad float64) {
	diff := math.Remainder(target-w.heading, 2*math.Pi)
	w.heading += max(-maxRad, min(maxRad, diff))
}

// fix is what the phone reports: the true position blurred by its
// accuracy. Most fixes are good (5–20 m), some mediocre (20–60 m), and one
// in twenty is a cell-tower fix of 600 m, beyond the default
// max_accuracy_m, which the server answers with low_accuracy.
func (w *walker) fix() (lat, lon, accuracyM float64) {
	switch p := w.rng.Float64(); {
	case p < 0.05:
		accuracyM = 600
	case p < 0.25:
		accuracyM = 20 + 40*w.rng.Float64()
	default:
		accuracyM = 5 + 15*w.rng.Float64()
	}
	ex, ey := w.rng.NormFloat64()*accuracyM/2, w.rng.NormFloat64()*accuracyM/2
	if e := math.Hypot(ex, ey); e > accuracyM {
		ex, ey = ex*accuracyM/e, ey*accuracyM/e
	}
	lat, lon = offset(w.store.Lat, w.store.Lon, w.x+ex, w.y+ey)
	return lat, lon, math.Round(accuracyM*10) / 10
}

// offset is the point east and north meters away from lat, lon on the
// tangent plane, rounded to 1e-7° (about a centimeter).
func offset(lat, lon, east, north float64) (float64, float64) {
	const deg = 180 / math.Pi
	la := lat + north/earthRadiusM*deg
	lo := lon + east/(earthRadiusM*math.Cos(lat/deg))*deg
	la = max(-90, min(90, la))
	lo = math.Remainder(lo, 360) // back into [-180, 180]
	return math.Round(la*1e7) / 1e7, math.Round(lo*1e7) / 1e7
}
