package main

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestParseRedisURL(t *testing.T) {
	good := map[string][]string{
		"redis://127.0.0.1:7000":                   {"127.0.0.1:7000"},
		"redis://a:7000,b:7001/":                   {"a:7000", "b:7001"},
		"10.0.0.1:6379,10.0.0.2:6379":              {"10.0.0.1:6379", "10.0.0.2:6379"},
		"redis://[::1]:7000,redis-1.internal:7000": {"[::1]:7000", "redis-1.internal:7000"},
	}
	for in, want := range good {
		if got, err := parseRedisURL(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("parseRedisURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "redis://", "rediss://a:1", "http://a:1", "redis://a", "redis://a:0", "redis://a:70000",
		"redis://:7000", "redis://user:pw@a:7000", "redis://a:7000/0", "redis://a:7000,", "redis://a:7000?x=1", "a:b"} {
		if got, err := parseRedisURL(in); err == nil {
			t.Errorf("parseRedisURL(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzParseRedisURL: any input is refused or gives host:port addresses
// that, spelt back, parse to themselves.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:7000", "a:1,b:2", "redis://[::1]:7000/", "rediss://x:1", "redis://a:7000,,b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := parseRedisURL(s)
		if err != nil {
			return
		}
		if len(addrs) == 0 {
			t.Fatalf("parseRedisURL(%q) gave no address and no error", s)
		}
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				t.Fatalf("parseRedisURL(%q) gave %q: %v", s, a, err)
			}
		}
		again, err := parseRedisURL("redis://" + strings.Join(addrs, ","))
		if err != nil || !slices.Equal(again, addrs) {
			t.Fatalf("spelt back, %q parses to %q, %v", addrs, again, err)
		}
	})
}
