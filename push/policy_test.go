package push

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the zone rules the tests rely on, whatever the host has

	"github.com/hotzone/hotzone"
)

// Instants in these tests are written with an explicit UTC offset
// (RFC 3339), never built in the device's zone: Decide must do the
// conversion itself, so the tests prove that the device's zone is the one
// that counts.

func loadZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func instant(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time.Parse(%q): %v", s, err)
	}
	return ts
}

func history(t *testing.T, ss ...string) History {
	t.Helper()
	h := make(History, 0, len(ss))
	for _, s := range ss {
		h = append(h, instant(t, s))
	}
	return h
}

// openPolicy has every time rule switched off; cases switch on the ones
// they test.
func openPolicy() hotzone.Policy {
	p := hotzone.DefaultPolicy()
	p.MinIntervalS = 0
	p.DailyCap = 0
	p.QuietHours = nil
	return p
}

func reachable() hotzone.Device {
	return hotzone.Device{ID: "d1", OptIn: true, Token: "tok", Provider: hotzone.ProviderFCM}
}

var night = &hotzone.QuietHours{Start: "21:00", End: "08:00"}

// wantWall checks that an instant reads as the expected wall clock in loc,
// so a case whose UTC instant was worked out wrong fails as such instead
// of as a policy bug.
func wantWall(t *testing.T, now time.Time, loc *time.Location, want string) {
	t.Helper()
	if want == "" {
		return
	}
	if got := now.In(loc).Format("2006-01-02 15:04 MST"); got != want {
		t.Fatalf("test setup: %s in %s reads %s, want %s", now.Format(time.RFC3339), loc, got, want)
	}
}

func TestDecidePrecedence(t *testing.T) {
	utc := time.UTC
	now := instant(t, "2026-01-15T23:00:00Z") // quiet under 21:00–08:00 UTC
	today := history(t, "2026-01-15T20:00:00Z", "2026-01-15T21:00:00Z", "2026-01-15T22:59:00Z")
	all := hotzone.Policy{MinIntervalS: 3600, DailyCap: 3, QuietHours: night}
	noQuiet := all
	noQuiet.QuietHours = nil
	noCap := noQuiet
	noCap.DailyCap = 0

	optedOut := reachable()
	optedOut.OptIn = false
	neither := optedOut
	neither.Token = ""
	noToken := reachable()
	noToken.Token = ""

	tests := []struct {
		name string
		p    hotzone.Policy
		d    hotzone.Device
		h    History
		want Reason
	}{
		{"every rule fails", all, neither, today, ReasonOptedOut},
		{"opted out with token", all, optedOut, today, ReasonOptedOut},
		{"opted out and nothing else", openPolicy(), optedOut, nil, ReasonOptedOut},
		{"no token before quiet, cap, interval", all, noToken, today, ReasonNoToken},
		{"no token and nothing else", openPolicy(), noToken, nil, ReasonNoToken},
		{"quiet before cap and interval", all, reachable(), today, ReasonQuietHours},
		{"cap before interval", noQuiet, reachable(), today, ReasonDailyCap},
		{"interval when under cap", noQuiet, reachable(), today[1:], ReasonMinInterval},
		{"interval alone", noCap, reachable(), today, ReasonMinInterval},
		{"nothing holds it back", noCap, reachable(), today[:2], ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.p, tc.d, utc, tc.h, now); got != tc.want {
				t.Errorf("Decide(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestDecideDefaultPolicyDaytime(t *testing.T) {
	now := instant(t, "2026-01-15T12:00:00Z")
	if got := Decide(hotzone.DefaultPolicy(), reachable(), time.UTC, nil, now); got != ReasonNone {
		t.Errorf("Decide(default policy at noon, no history) = %q, want %q", got, ReasonNone)
	}
}

func TestDecideQuietHours(t *testing.T) {
	auckland := loadZone(t, "Pacific/Auckland")
	la := loadZone(t, "America/Los_Angeles")
	lunch := &hotzone.QuietHours{Start: "13:00", End: "14:00"}

	tests := []struct {
		name string
		q    *hotzone.QuietHours
		loc  *time.Location
		now  string // UTC
		wall string // what now reads in loc, checked first
		want Reason
	}{
		// Auckland in January is on NZDT (UTC+13).
		{"Auckland 20:59 NZDT", night, auckland, "2026-01-15T07:59:00Z", "2026-01-15 20:59 NZDT", ReasonNone},
		{"Auckland 21:00 NZDT", night, auckland, "2026-01-15T08:00:00Z", "2026-01-15 21:00 NZDT", ReasonQuietHours},
		{"Auckland 23:59 NZDT", night, auckland, "2026-01-15T10:59:00Z", "2026-01-15 23:59 NZDT", ReasonQuietHours},
		{"Auckland 00:00 NZDT", night, auckland, "2026-01-15T11:00:00Z", "2026-01-16 00:00 NZDT", ReasonQuietHours},
		{"Auckland 07:59 NZDT", night, auckland, "2026-01-15T18:59:00Z", "2026-01-16 07:59 NZDT", ReasonQuietHours},
		{"Auckland 08:00 NZDT", night, auckland, "2026-01-15T19:00:00Z", "2026-01-16 08:00 NZDT", ReasonNone},
		// And in July on NZST (UTC+12): same wall clock, other instants.
		{"Auckland 20:59 NZST", night, auckland, "2026-07-15T08:59:00Z", "2026-07-15 20:59 NZST", ReasonNone},
		{"Auckland 21:00 NZST", night, auckland, "2026-07-15T09:00:00Z", "2026-07-15 21:00 NZST", ReasonQuietHours},
		{"Auckland 07:59 NZST", night, auckland, "2026-07-15T19:59:00Z", "2026-07-16 07:59 NZST", ReasonQuietHours},
		{"Auckland 08:00 NZST", night, auckland, "2026-07-15T20:00:00Z", "2026-07-16 08:00 NZST", ReasonNone},
		// Los Angeles in January is on PST (UTC-8).
		{"LA 20:59 PST", night, la, "2026-01-16T04:59:00Z", "2026-01-15 20:59 PST", ReasonNone},
		{"LA 21:00 PST", night, la, "2026-01-16T05:00:00Z", "2026-01-15 21:00 PST", ReasonQuietHours},
		{"LA 07:59 PST", night, la, "2026-01-16T15:59:00Z", "2026-01-16 07:59 PST", ReasonQuietHours},
		{"LA 08:00 PST", night, la, "2026-01-16T16:00:00Z", "2026-01-16 08:00 PST", ReasonNone},
		// And in July on PDT (UTC-7).
		{"LA 20:59 PDT", night, la, "2026-07-16T03:59:00Z", "2026-07-15 20:59 PDT", ReasonNone},
		{"LA 21:00 PDT", night, la, "2026-07-16T04:00:00Z", "2026-07-15 21:00 PDT", ReasonQuietHours},
		{"LA 07:59 PDT", night, la, "2026-07-16T14:59:00Z", "2026-07-16 07:59 PDT", ReasonQuietHours},
		{"LA 08:00 PDT", night, la, "2026-07-16T15:00:00Z", "2026-07-16 08:00 PDT", ReasonNone},
		// One instant, two zones: the device's zone decides.
		{"17:00Z is 06:00 in Auckland", night, auckland, "2026-01-14T17:00:00Z", "2026-01-15 06:00 NZDT", ReasonQuietHours},
		{"17:00Z is 09:00 in LA", night, la, "2026-01-14T17:00:00Z", "2026-01-14 09:00 PST", ReasonNone},
		{"06:00Z is 19:00 in Auckland", night, auckland, "2026-01-15T06:00:00Z", "2026-01-15 19:00 NZDT", ReasonNone},
		{"06:00Z is 22:00 in LA", night, la, "2026-01-15T06:00:00Z", "2026-01-14 22:00 PST", ReasonQuietHours},
		{"06:00Z in UTC", night, time.UTC, "2026-01-15T06:00:00Z", "2026-01-15 06:00 UTC", ReasonQuietHours},
		{"06:00Z with nil zone is UTC", night, nil, "2026-01-15T06:00:00Z", "", ReasonQuietHours},
		// A window that does not wrap.
		{"lunch 12:59", lunch, la, "2026-01-15T20:59:00Z", "2026-01-15 12:59 PST", ReasonNone},
		{"lunch 13:00", lunch, la, "2026-01-15T21:00:00Z", "2026-01-15 13:00 PST", ReasonQuietHours},
		{"lunch 13:59", lunch, la, "2026-01-15T21:59:00Z", "2026-01-15 13:59 PST", ReasonQuietHours},
		{"lunch 14:00", lunch, la, "2026-01-15T22:00:00Z", "2026-01-15 14:00 PST", ReasonNone},
		{"lunch 01:00 (its complement)", lunch, la, "2026-01-15T09:00:00Z", "2026-01-15 01:00 PST", ReasonNone},
		// Empty and absent windows.
		{"start == end at start", &hotzone.QuietHours{Start: "21:00", End: "21:00"}, la, "2026-01-16T05:00:00Z", "2026-01-15 21:00 PST", ReasonNone},
		{"start == end at 03:00", &hotzone.QuietHours{Start: "21:00", End: "21:00"}, la, "2026-01-15T11:00:00Z", "2026-01-15 03:00 PST", ReasonNone},
		{"nil window at 03:00", nil, la, "2026-01-15T11:00:00Z", "2026-01-15 03:00 PST", ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := instant(t, tc.now)
			wantWall(t, now, tc.loc, tc.wall)
			p := openPolicy()
			p.QuietHours = tc.q
			if got := Decide(p, reachable(), tc.loc, nil, now); got != tc.want {
				t.Errorf("Decide(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestInQuietHours(t *testing.T) {
	wall := func(h, m, s, ns int) time.Time { return time.Date(2026, 5, 4, h, m, s, ns, time.UTC) }
	q := func(start, end string) *hotzone.QuietHours { return &hotzone.QuietHours{Start: start, End: end} }
	tests := []struct {
		name  string
		q     *hotzone.QuietHours
		local time.Time
		want  bool
	}{
		{"nil", nil, wall(23, 0, 0, 0), false},
		{"wrap 20:59:59.999999999", night, wall(20, 59, 59, 999999999), false},
		{"wrap 21:00", night, wall(21, 0, 0, 0), true},
		{"wrap 00:00", night, wall(0, 0, 0, 0), true},
		{"wrap 07:59:59.999999999", night, wall(7, 59, 59, 999999999), true},
		{"wrap 08:00", night, wall(8, 0, 0, 0), false},
		{"wrap noon", night, wall(12, 0, 0, 0), false},
		{"plain 12:59", q("13:00", "14:00"), wall(12, 59, 0, 0), false},
		{"plain 13:00", q("13:00", "14:00"), wall(13, 0, 0, 0), true},
		{"plain 13:59", q("13:00", "14:00"), wall(13, 59, 0, 0), true},
		{"plain 14:00", q("13:00", "14:00"), wall(14, 0, 0, 0), false},
		{"plain 23:00", q("13:00", "14:00"), wall(23, 0, 0, 0), false},
		{"empty at its start", q("13:00", "13:00"), wall(13, 0, 0, 0), false},
		{"empty 00:00–00:00 at midnight", q("00:00", "00:00"), wall(0, 0, 0, 0), false},
		{"whole day but a minute, 00:00", q("00:00", "23:59"), wall(0, 0, 0, 0), true},
		{"whole day but a minute, 23:59", q("00:00", "23:59"), wall(23, 59, 0, 0), false},
		{"one minute wrap 23:59–00:00 at 23:59", q("23:59", "00:00"), wall(23, 59, 0, 0), true},
		{"one minute wrap 23:59–00:00 at 00:00", q("23:59", "00:00"), wall(0, 0, 0, 0), false},
		{"malformed start", q("9:00", "10:00"), wall(9, 30, 0, 0), false},
		{"out of range end", q("21:00", "24:00"), wall(22, 0, 0, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := InQuietHours(tc.q, tc.local); got != tc.want {
				t.Errorf("InQuietHours(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

func TestDecideDailyCap(t *testing.T) {
	auckland := loadZone(t, "Pacific/Auckland")
	la := loadZone(t, "America/Los_Angeles")
	many := make([]string, 50)
	for i := range many {
		many[i] = time.Date(2026, 1, 15, 10, i, 0, 0, time.UTC).Format(time.RFC3339)
	}

	tests := []struct {
		name string
		cap  int
		loc  *time.Location
		h    []string
		now  string
		wall string
		want Reason
	}{
		{
			name: "LA 3 yesterday evening, just after local midnight",
			cap:  3,
			loc:  la,
			h:    []string{"2026-01-14T18:00:00-08:00", "2026-01-14T19:00:00-08:00", "2026-01-14T23:59:59-08:00"},
			now:  "2026-01-15T08:00:00Z",
			wall: "2026-01-15 00:00 PST",
			want: ReasonNone,
		},
		{
			name: "LA 3 today",
			cap:  3,
			loc:  la,
			h:    []string{"2026-01-15T00:00:00-08:00", "2026-01-15T09:00:00-08:00", "2026-01-15T12:00:00-08:00"},
			now:  "2026-01-16T07:59:00Z",
			wall: "2026-01-15 23:59 PST",
			want: ReasonDailyCap,
		},
		{
			name: "LA 2 today under cap 3",
			cap:  3,
			loc:  la,
			h:    []string{"2026-01-14T23:00:00-08:00", "2026-01-15T09:00:00-08:00", "2026-01-15T12:00:00-08:00"},
			now:  "2026-01-15T21:00:00Z",
			wall: "2026-01-15 13:00 PST",
			want: ReasonNone,
		},
		{
			name: "LA 4 today over cap 3",
			cap:  3,
			loc:  la,
			h:    []string{"2026-01-15T08:00:00-08:00", "2026-01-15T09:00:00-08:00", "2026-01-15T10:00:00-08:00", "2026-01-15T11:00:00-08:00"},
			now:  "2026-01-15T21:00:00Z",
			wall: "2026-01-15 13:00 PST",
			want: ReasonDailyCap,
		},
		{
			// Same UTC date as now (Jan 14), but yesterday in Auckland.
			name: "Auckland 3 before local midnight, same UTC date",
			cap:  3,
			loc:  auckland,
			h:    []string{"2026-01-14T09:00:00Z", "2026-01-14T10:00:00Z", "2026-01-14T10:59:59Z"},
			now:  "2026-01-14T11:30:00Z",
			wall: "2026-01-15 00:30 NZDT",
			want: ReasonNone,
		},
		{
			// UTC date Jan 14 for the history, Jan 15 for now: one local day.
			name: "Auckland 3 today, UTC date differs",
			cap:  3,
			loc:  auckland,
			h:    []string{"2026-01-14T11:00:00Z", "2026-01-14T21:00:00Z", "2026-01-14T23:00:00Z"},
			now:  "2026-01-15T01:00:00Z",
			wall: "2026-01-15 14:00 NZDT",
			want: ReasonDailyCap,
		},
		{
			name: "same history in UTC spans two days",
			cap:  3, loc: time.UTC,
			h:    []string{"2026-01-14T11:00:00Z", "2026-01-14T21:00:00Z", "2026-01-14T23:00:00Z"},
			now:  "2026-01-15T01:00:00Z",
			wall: "2026-01-15 01:00 UTC",
			want: ReasonNone,
		},
		{
			name: "nil zone counts UTC days",
			cap:  1,
			loc:  nil,
			h:    []string{"2026-01-15T00:00:00Z"},
			now:  "2026-01-15T23:59:59Z",
			want: ReasonDailyCap,
		},
		{
			name: "cap 0 is no cap",
			cap:  0, loc: time.UTC,
			h:    many,
			now:  "2026-01-15T12:00:00Z",
			wall: "2026-01-15 12:00 UTC",
			want: ReasonNone,
		},
		{
			name: "cap 1 with one today",
			cap:  1,
			loc:  la,
			h:    []string{"2026-01-15T00:00:01-08:00"},
			now:  "2026-01-15T10:00:00-08:00",
			wall: "2026-01-15 10:00 PST",
			want: ReasonDailyCap,
		},
		{
			// A clock stepped back: the entry is later than now, but it was
			// still queued today and counts.
			name: "entry later today than now counts",
			cap:  1,
			loc:  la,
			h:    []string{"2026-01-15T10:05:00-08:00"},
			now:  "2026-01-15T10:00:00-08:00",
			wall: "2026-01-15 10:00 PST",
			want: ReasonDailyCap,
		},
		{
			name: "entry tomorrow does not count today",
			cap:  1,
			loc:  la,
			h:    []string{"2026-01-16T00:00:00-08:00"},
			now:  "2026-01-15T23:59:00-08:00",
			wall: "2026-01-15 23:59 PST",
			want: ReasonNone,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := instant(t, tc.now)
			wantWall(t, now, tc.loc, tc.wall)
			p := openPolicy()
			p.DailyCap = tc.cap
			if got := Decide(p, reachable(), tc.loc, history(t, tc.h...), now); got != tc.want {
				t.Errorf("Decide(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

// TestDecideDaylightSaving covers the 23- and 25-hour days of
// America/Los_Angeles in 2026 (clocks change at 02:00), and zones whose
// clocks spring forward at 00:00, so that local midnight does not exist.
func TestDecideDaylightSaving(t *testing.T) {
	la := loadZone(t, "America/Los_Angeles")
	havana := loadZone(t, "America/Havana")
	santiago := loadZone(t, "America/Santiago")
	dst := &hotzone.QuietHours{Start: "01:00", End: "01:45"}
	gap := &hotzone.QuietHours{Start: "02:00", End: "03:00"}

	tests := []struct {
		name string
		cap  int
		q    *hotzone.QuietHours
		loc  *time.Location
		h    []string
		now  string
		wall string
		want Reason
	}{
		// 2026-03-08: 02:00 PST becomes 03:00 PDT; the day is 23 hours.
		{
			name: "spring forward: 00:30, 01:30 PST, 03:30 PDT count",
			cap:  3,
			loc:  la,
			h:    []string{"2026-03-08T00:30:00-08:00", "2026-03-08T01:30:00-08:00", "2026-03-08T03:30:00-07:00"},
			now:  "2026-03-08T23:30:00-07:00",
			wall: "2026-03-08 23:30 PDT",
			want: ReasonDailyCap,
		},
		{
			name: "spring forward: 23:30 the day before does not count",
			cap:  3,
			loc:  la,
			h:    []string{"2026-03-07T23:30:00-08:00", "2026-03-08T00:30:00-08:00", "2026-03-08T01:30:00-08:00"},
			now:  "2026-03-08T23:30:00-07:00",
			wall: "2026-03-08 23:30 PDT",
			want: ReasonNone,
		},
		{
			name: "spring forward: first and last instant of the day",
			cap:  2,
			loc:  la,
			h:    []string{"2026-03-07T23:59:59-08:00", "2026-03-08T00:00:00-08:00", "2026-03-08T12:00:00-07:00"},
			now:  "2026-03-08T23:59:59-07:00",
			wall: "2026-03-08 23:59 PDT",
			want: ReasonDailyCap,
		},
		{
			name: "spring forward: next local day starts fresh",
			cap:  3,
			loc:  la,
			h:    []string{"2026-03-08T00:30:00-08:00", "2026-03-08T01:30:00-08:00", "2026-03-08T03:30:00-07:00"},
			now:  "2026-03-09T00:00:00-07:00",
			wall: "2026-03-09 00:00 PDT",
			want: ReasonNone,
		},
		// 2026-11-01: 02:00 PDT becomes 01:00 PST; 01:xx happens twice and
		// the day is 25 hours.
		{
			name: "fall back: 00:30 and both 01:30s count",
			cap:  3,
			loc:  la,
			h:    []string{"2026-11-01T00:30:00-07:00", "2026-11-01T01:30:00-07:00", "2026-11-01T01:30:00-08:00"},
			now:  "2026-11-01T23:30:00-08:00",
			wall: "2026-11-01 23:30 PST",
			want: ReasonDailyCap,
		},
		{
			name: "fall back: 23:30 the day before does not count",
			cap:  3,
			loc:  la,
			h:    []string{"2026-10-31T23:30:00-07:00", "2026-11-01T01:30:00-07:00", "2026-11-01T01:30:00-08:00"},
			now:  "2026-11-01T23:30:00-08:00",
			wall: "2026-11-01 23:30 PST",
			want: ReasonNone,
		},
		{
			// 25 hours apart, one local day.
			name: "fall back: first and last instant of the day",
			cap:  2,
			loc:  la,
			h:    []string{"2026-10-31T23:59:59-07:00", "2026-11-01T00:00:00-07:00"},
			now:  "2026-11-01T23:59:59-08:00",
			wall: "2026-11-01 23:59 PST",
			want: ReasonNone,
		},
		{
			name: "fall back: first and last instant of the day, cap 1",
			cap:  1,
			loc:  la,
			h:    []string{"2026-10-31T23:59:59-07:00", "2026-11-01T00:00:00-07:00"},
			now:  "2026-11-01T23:59:59-08:00",
			wall: "2026-11-01 23:59 PST",
			want: ReasonDailyCap,
		},
		{
			name: "fall back: during the second 01:30, the first counts",
			cap:  2,
			loc:  la,
			h:    []string{"2026-11-01T00:30:00-07:00", "2026-11-01T01:30:00-07:00"},
			now:  "2026-11-01T01:30:00-08:00",
			wall: "2026-11-01 01:30 PST",
			want: ReasonDailyCap,
		},
		// Quiet hours read the wall clock, whichever offset is in force.
		{name: "01:30 PDT in 01:00–01:45", q: dst, loc: la, now: "2026-11-01T08:30:00Z", wall: "2026-11-01 01:30 PDT", want: ReasonQuietHours},
		{name: "01:30 PST in 01:00–01:45", q: dst, loc: la, now: "2026-11-01T09:30:00Z", wall: "2026-11-01 01:30 PST", want: ReasonQuietHours},
		{name: "01:50 PDT after 01:00–01:45", q: dst, loc: la, now: "2026-11-01T08:50:00Z", wall: "2026-11-01 01:50 PDT", want: ReasonNone},
		{name: "01:50 PST after 01:00–01:45", q: dst, loc: la, now: "2026-11-01T09:50:00Z", wall: "2026-11-01 01:50 PST", want: ReasonNone},
		{name: "01:30 PDT in 21:00–08:00", q: night, loc: la, now: "2026-11-01T08:30:00Z", wall: "2026-11-01 01:30 PDT", want: ReasonQuietHours},
		{name: "01:30 PST in 21:00–08:00", q: night, loc: la, now: "2026-11-01T09:30:00Z", wall: "2026-11-01 01:30 PST", want: ReasonQuietHours},
		{name: "08:00 PST after fall back", q: night, loc: la, now: "2026-11-01T16:00:00Z", wall: "2026-11-01 08:00 PST", want: ReasonNone},
		{name: "07:59 PDT before spring forward day ends quiet", q: night, loc: la, now: "2026-03-08T14:59:00Z", wall: "2026-03-08 07:59 PDT", want: ReasonQuietHours},
		{name: "08:00 PDT on spring forward day", q: night, loc: la, now: "2026-03-08T15:00:00Z", wall: "2026-03-08 08:00 PDT", want: ReasonNone},
		// 02:00–03:00 never happens on 2026-03-08.
		{name: "01:59 PST before the skipped hour", q: gap, loc: la, now: "2026-03-08T09:59:00Z", wall: "2026-03-08 01:59 PST", want: ReasonNone},
		{name: "03:00 PDT after the skipped hour", q: gap, loc: la, now: "2026-03-08T10:00:00Z", wall: "2026-03-08 03:00 PDT", want: ReasonNone},
		{name: "02:30 PDT the next day", q: gap, loc: la, now: "2026-03-09T09:30:00Z", wall: "2026-03-09 02:30 PDT", want: ReasonQuietHours},
		// Havana 2026-03-08 and Santiago 2026-09-06 go from 23:59:59 the
		// day before straight to 01:00: a notification at 23:30 the day
		// before is not today's.
		{
			name: "Havana: midnight skipped, 23:30 the day before",
			cap:  1,
			loc:  havana,
			h:    []string{"2026-03-07T23:30:00-05:00"},
			now:  "2026-03-08T10:00:00-04:00",
			wall: "2026-03-08 10:00 CDT",
			want: ReasonNone,
		},
		{
			name: "Havana: midnight skipped, 01:00 the same day",
			cap:  1,
			loc:  havana,
			h:    []string{"2026-03-08T01:00:00-04:00"},
			now:  "2026-03-08T10:00:00-04:00",
			wall: "2026-03-08 10:00 CDT",
			want: ReasonDailyCap,
		},
		{
			name: "Santiago: midnight skipped, 23:30 the day before",
			cap:  1,
			loc:  santiago,
			h:    []string{"2026-09-05T23:30:00-04:00"},
			now:  "2026-09-06T10:00:00-03:00",
			wall: "2026-09-06 10:00 -03",
			want: ReasonNone,
		},
		{
			name: "Santiago: midnight skipped, 01:00 the same day",
			cap:  1,
			loc:  santiago,
			h:    []string{"2026-09-06T01:00:00-03:00"},
			now:  "2026-09-06T10:00:00-03:00",
			wall: "2026-09-06 10:00 -03",
			want: ReasonDailyCap,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := instant(t, tc.now)
			wantWall(t, now, tc.loc, tc.wall)
			p := openPolicy()
			p.DailyCap = tc.cap
			p.QuietHours = tc.q
			if got := Decide(p, reachable(), tc.loc, history(t, tc.h...), now); got != tc.want {
				t.Errorf("Decide(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestDecideMinInterval(t *testing.T) {
	now := instant(t, "2026-01-15T12:00:00Z")
	const fourHours = 14400
	tests := []struct {
		name     string
		interval int
		h        History
		want     Reason
	}{
		{"empty history", fourHours, nil, ReasonNone},
		{"exactly the interval ago", fourHours, History{now.Add(-4 * time.Hour)}, ReasonNone},
		{"1ns short of the interval", fourHours, History{now.Add(-4*time.Hour + 1)}, ReasonMinInterval},
		{"1s short of the interval", fourHours, History{now.Add(-4*time.Hour + time.Second)}, ReasonMinInterval},
		{"longer ago than the interval", fourHours, History{now.Add(-5 * time.Hour)}, ReasonNone},
		{"only the newest entry matters", fourHours, History{now.Add(-6 * time.Hour), now.Add(-time.Hour)}, ReasonMinInterval},
		{"older entries are further away", fourHours, History{now.Add(-6 * time.Hour), now.Add(-4 * time.Hour)}, ReasonNone},
		{"queued at this very instant", fourHours, History{now}, ReasonMinInterval},
		{"interval 0, queued at this very instant", 0, History{now}, ReasonNone},
		{"interval 0, queued 1ns ago", 0, History{now.Add(-1)}, ReasonNone},
		{"interval 1s, exactly 1s ago", 1, History{now.Add(-time.Second)}, ReasonNone},
		{"interval 1s, 1ns short", 1, History{now.Add(-time.Second + 1)}, ReasonMinInterval},
		{"max interval, 1ns short of 7 days", 604800, History{now.Add(-7*24*time.Hour + 1)}, ReasonMinInterval},
		{"max interval, exactly 7 days", 604800, History{now.Add(-7 * 24 * time.Hour)}, ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := openPolicy()
			p.MinIntervalS = tc.interval
			if got := Decide(p, reachable(), time.UTC, tc.h, now); got != tc.want {
				t.Errorf("Decide(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestHistoryTrim(t *testing.T) {
	now := instant(t, "2026-01-15T12:00:00Z")
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	w := HistoryWindow
	tests := []struct {
		name string
		h    History
		want History
	}{
		{"nil", nil, History{}},
		{"all recent", History{ago(3 * time.Hour), ago(time.Hour), now}, History{ago(3 * time.Hour), ago(time.Hour), now}},
		{"exactly the window old is kept", History{ago(w), ago(time.Hour)}, History{ago(w), ago(time.Hour)}},
		{"1ns past the window is dropped", History{ago(w + 1), ago(w), ago(time.Hour)}, History{ago(w), ago(time.Hour)}},
		{"old ones dropped, rest kept in order", History{ago(3 * w), ago(2 * w), ago(w + time.Hour), ago(50 * time.Hour), ago(26 * time.Hour), ago(time.Minute)}, History{ago(50 * time.Hour), ago(26 * time.Hour), ago(time.Minute)}},
		{"all old", History{ago(2 * w), ago(w + time.Second)}, History{}},
		{"future entries are kept", History{ago(time.Hour), now.Add(time.Minute)}, History{ago(time.Hour), now.Add(time.Minute)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.h)
			got := tc.h.Trim(now)
			if !slices.EqualFunc(got, tc.want, time.Time.Equal) {
				t.Errorf("Trim(%s) = %v, want %v", tc.name, got, tc.want)
			}
			if !slices.EqualFunc(tc.h, in, time.Time.Equal) {
				t.Errorf("Trim(%s) changed its receiver to %v", tc.name, tc.h)
			}
		})
	}
}

// TestHistoryWindowReachesEveryRule: trimming the history never changes
// a decision, for any policy the contract allows. The window must cover
// the longest min_interval_s (7 days), not only the longest local day.
func TestHistoryWindowReachesEveryRule(t *testing.T) {
	if HistoryWindow < 604800*time.Second {
		t.Errorf("HistoryWindow = %v, shorter than the longest min_interval_s (604800 s)", HistoryWindow)
	}
	zones := []*time.Location{
		time.UTC,
		loadZone(t, "Pacific/Auckland"),
		loadZone(t, "America/Los_Angeles"),
		loadZone(t, "America/Havana"),
		loadZone(t, "Pacific/Kiritimati"), // UTC+14
		loadZone(t, "Pacific/Pago_Pago"),  // UTC-11
	}
	intervals := []int{0, 60, 14400, 86400, 3 * 86400, 604800}
	start := instant(t, "2026-01-01T00:00:00Z")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		// A sorted history over ten days, then a now after it.
		var h History
		at := start
		for range r.IntN(12) {
			at = at.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
			h = append(h, at)
		}
		now := at.Add(time.Duration(r.Int64N(int64(9 * 24 * time.Hour))))
		p := openPolicy()
		p.DailyCap = r.IntN(4)
		p.MinIntervalS = intervals[r.IntN(len(intervals))]
		loc := zones[r.IntN(len(zones))]
		full := Decide(p, reachable(), loc, h, now)
		trimmed := Decide(p, reachable(), loc, h.Trim(now), now)
		if full != trimmed {
			t.Fatalf("case %d (%s, cap %d, interval %ds, history %v, now %v): Decide(full) = %q, Decide(trimmed) = %q",
				i, loc, p.DailyCap, p.MinIntervalS, h, now, full, trimmed)
		}
	}
}
