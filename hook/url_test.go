package hook

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name, raw, want string // want: "" for accepted, else the message
	}{
		{"https", "https://example.com/hooks", ""},
		{"http with port and query", "http://example.com:8080/h?x=1", ""},
		{"upper-case scheme", "HTTPS://Example.COM/", ""},
		{"IPv4 literal", "https://93.184.215.14/h", ""},
		{"IPv6 literal", "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/h", ""},
		{"trailing dot", "https://example.com./h", ""},
		{"underscore", "https://my_host.example.com/", ""},
		{"at the length limit", "https://example.com/" + strings.Repeat("a", MaxURLBytes-20), ""},

		{"too long", "https://example.com/" + strings.Repeat("a", MaxURLBytes-19), "must be at most 2048 bytes"},
		{"too long once escaped", "https://example.com/" + strings.Repeat(" ", 700), "must be at most 2048 bytes"},
		{"empty", "", "must be an http or https URL"},
		{"relative", "/hooks", "must be an http or https URL"},
		{"no scheme", "example.com/hooks", "must be an http or https URL"},
		{"ftp", "ftp://example.com/", "must be an http or https URL"},
		{"javascript", "javascript:alert(1)", "must be an http or https URL"},
		{"file", "file:///etc/passwd", "must be an http or https URL"},
		{"opaque", "http:example.com", "must have a host"},
		{"no host", "https:///hooks", "must have a host"},
		{"port only", "https://:443/", "must have a valid host name or IP address"},
		{"user info", "https://user:pass@example.com/", "must not contain a user name or password"},
		{"user only", "https://user@example.com/", "must not contain a user name or password"},
		{"fragment", "https://example.com/#x", "must not have a fragment"},
		{"empty fragment", "https://example.com/#", "must not have a fragment"},
		{"control character", "https://example.com/\x7f", "must be a valid URL"},
		{"space in host", "https://exa mple.com/", "must be a valid URL"},
		{"bad port", "https://example.com:99999/", "must have a port from 1 to 65535"},
		{"port zero", "https://example.com:0/", "must have a port from 1 to 65535"},
		{"empty port", "https://example.com:/", "must have a port from 1 to 65535"},
		{"zone", "https://[fe80::1%25eth0]/", "must have a valid host name or IP address"},
		{"decimal IPv4", "http://2130706433/", "must have a valid host name or IP address"},
		{"short IPv4", "http://127.1/", "must have a valid host name or IP address"},
		{"hex IPv4", "http://0x7f000001/", "must have a valid host name or IP address"},
		{"five octets", "http://1.2.3.4.5/", "must have a valid host name or IP address"},
		{"non-ASCII", "https://bücher.example/", "must have a valid host name or IP address"},
		{"empty label", "https://a..b/", "must have a valid host name or IP address"},
		{"leading hyphen", "https://-a.example/", "must have a valid host name or IP address"},
		{"label too long", "https://" + strings.Repeat("a", 64) + ".example/", "must have a valid host name or IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := CheckURL(tt.raw)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want accepted", tt.raw, err)
				}
				if u.Scheme != "http" && u.Scheme != "https" {
					t.Errorf("CheckURL(%q).Scheme = %q", tt.raw, u.Scheme)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = %v, want %q", tt.raw, u, tt.want)
			}
			if err.Error() != tt.want || !errors.Is(err, ErrInvalidURL) {
				t.Errorf("CheckURL(%q) = %q (is ErrInvalidURL: %v), want %q", tt.raw, err, errors.Is(err, ErrInvalidURL), tt.want)
			}
		})
	}
}

func TestPublic(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"93.184.215.14", true},
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"172.15.255.255", true},
		{"172.32.0.0", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"198.17.255.255", true},
		{"198.20.0.0", true},
		{"223.255.255.255", true},
		{"2606:4700:4700::1111", true},
		{"2a00:1450:4001:80b::200e", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},  // 6to4 of 8.8.8.8

		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"10.0.0.1", false},
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"169.254.169.254", false}, // cloud metadata
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.0.0.1", false},
		{"192.0.2.1", false},
		{"192.168.1.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"::127.0.0.1", false}, // IPv4-compatible, deprecated
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:0.0.0.0", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"febf::1", false},
		{"fec0::1", false},
		{"ff02::1", false}, // link-local multicast
		{"ff0e::1", false},
		{"2001:db8::1", false},
		{"2001::1", false},            // Teredo
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b:1::808:808", false}, // local-use NAT64
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", false},   // 6to4 of 192.168.1.1
		{"100::1", false},             // discard-only
	}
	for _, tt := range tests {
		if got := Public(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Public(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if Public(netip.Addr{}) {
		t.Errorf("Public(zero Addr) = true, want false")
	}
}

func TestCheckHost(t *testing.T) {
	dns := newFakeDNS(t)
	dns.set("public.example.test", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
	dns.set("internal.example.test", "10.0.0.5")
	dns.set("mixed.example.test", "93.184.215.14", "fd00::1")
	dns.set("metadata.example.test", "169.254.169.254")
	dns.set("empty.example.test")
	tests := []struct {
		name, url    string
		allowPrivate bool
		want         error // nil, ErrPrivateAddress, or ErrInvalidURL
	}{
		{"public literal", "https://93.184.215.14/", false, nil},
		{"public name", "https://public.example.test/", false, nil},
		{"loopback literal", "http://127.0.0.1:8080/", false, ErrPrivateAddress},
		{"mapped loopback literal", "http://[::ffff:127.0.0.1]/", false, ErrPrivateAddress},
		{"private name", "https://internal.example.test/", false, ErrPrivateAddress},
		{"one private address of two", "https://mixed.example.test/", false, ErrPrivateAddress},
		{"metadata name", "https://metadata.example.test/", false, ErrPrivateAddress},
		{"localhost", "http://localhost/", false, ErrPrivateAddress},
		{"no such name", "https://nx.example.test/", false, ErrInvalidURL},
		{"no addresses", "https://empty.example.test/", false, ErrInvalidURL},
		{"private allowed", "https://internal.example.test/", true, nil},
		{"loopback allowed", "http://127.0.0.1/", true, nil},
		{"unresolvable allowed", "https://nx.example.test/", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := CheckURL(tt.url)
			if err != nil {
				t.Fatalf("CheckURL(%q) = %v", tt.url, err)
			}
			err = CheckHost(context.Background(), u, tt.allowPrivate, dns.resolver())
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckHost(%q, allowPrivate %v) = %v, want %v", tt.url, tt.allowPrivate, err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrInvalidURL) {
				t.Errorf("CheckHost(%q) = %v, want it to match ErrInvalidURL too", tt.url, err)
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hooks",
		"http://[::1]:80/",
		"http://user@host/#f",
		"HTTP://EXAMPLE.COM:65535/a%20b?c",
		"javascript:alert(1)",
		"http://%41.com/",
		"http://[fe80::1%25en0]/",
		"https://a.b./",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := CheckURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("CheckURL(%q) = %v, want an ErrInvalidURL", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || len(raw) > MaxURLBytes {
			t.Fatalf("CheckURL(%q) accepted %#v", raw, u)
		}
		// What is stored and sent (the URL as it prints) is as valid
		// as what was typed, and names the same host.
		again, err := CheckURL(u.String())
		if err != nil {
			t.Fatalf("CheckURL(%q) accepted, but its String %q: %v", raw, u.String(), err)
		}
		if again.Host != u.Host {
			t.Fatalf("CheckURL(%q).Host = %q, of its String %q", raw, u.Host, again.Host)
		}
	})
}
