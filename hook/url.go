package hook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLBytes bounds a registered URL: longer ones are not real endpoints,
// and the URL is stored and shown with every webhook.
const MaxURLBytes = 2048

// ErrInvalidURL is matched (errors.Is) by every error CheckURL returns and
// by CheckHost's refusals, so the API layer can answer 400 without reading
// messages. The errors' own text is a short phrase meant for the user,
// such as "must be an http or https URL", to be shown beside the field
// name "url".
var ErrInvalidURL = errors.New("invalid webhook URL")

// ErrPrivateAddress is matched by the errors of CheckHost and of requests
// made with NewClient's client when the address is not Public: webhooks
// must not become a way to reach the server's own network.
var ErrPrivateAddress = errors.New("hook: address is not public")

// urlError is a user-facing reason that is also ErrInvalidURL and, through
// Unwrap, its cause.
type urlError struct {
	reason string
	cause  error
}

func (e *urlError) Error() string        { return e.reason }
func (e *urlError) Unwrap() error        { return e.cause }
func (e *urlError) Is(target error) bool { return target == ErrInvalidURL }

func invalid(reason string) error { return &urlError{reason: reason} }

// CheckURL parses a webhook URL as a user registers it and says, in words
// fit for a 400 response, what is wrong with it: it must be absolute http
// or https with a host and no user info (credentials in a URL end up in
// logs), no fragment (never sent, so it can only mislead), and at most
// MaxURLBytes both as typed and as u.String() prints it, which is the form
// to store. It checks the form only; CheckHost looks at where the host
// points.
func CheckURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLBytes {
		return nil, invalid("must be at most " + strconv.Itoa(MaxURLBytes) + " bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("must be a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, invalid("must be an http or https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, invalid("must have a host")
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and in every answer that
		// shows the webhook; a receiver can check the signature instead.
		return nil, invalid("must not contain a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, invalid("must not have a fragment")
	}
	if !validHost(u.Hostname()) {
		return nil, invalid("must have a valid host name or IP address")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, invalid("must have a port from 1 to 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, invalid("must have a port from 1 to 65535")
	}
	if len(u.String()) > MaxURLBytes {
		// The URL is stored and sent as it prints, escapes and all.
		return nil, invalid("must be at most " + strconv.Itoa(MaxURLBytes) + " bytes")
	}
	return u, nil
}

// validHost accepts an IP literal without a zone (a zone names one of the
// server's interfaces, meaningless to a user) or an ASCII DNS name. A name
// whose last label is a number ("2130706433", "10.1", "0x7f.1") is refused:
// no top-level domain is numeric, and the C resolver reads such names as
// IPv4 addresses, which would hide an address behind a "name".
func validHost(h string) bool {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Zone() == ""
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.HasPrefix(last, "0x") {
		return false
	}
	return strings.Trim(last, "0123456789") != ""
}

// CheckHost resolves u's host (an IP literal is used as it is) and refuses
// it when any address is not Public, so a user learns at registration that
// a URL cannot work. It is advice, not the guard: DNS may answer
// differently later, so NewClient checks the address each connection
// actually uses. With allowPrivate there is nothing to refuse and the host
// is not resolved at all (an on-premise name may resolve only from the
// network deliveries leave from). A nil resolver means net.DefaultResolver.
// A name that does not exist is ErrInvalidURL; other lookup failures (a DNS
// timeout) are returned wrapped, as the server's problem rather than the
// user's.
func CheckHost(ctx context.Context, u *url.URL, allowPrivate bool, resolver *net.Resolver) error {
	host := u.Hostname()
	if host == "" {
		return invalid("must have a host")
	}
	if allowPrivate {
		return nil
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = resolver.LookupNetIP(ctx, "ip", host)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound || err == nil && len(addrs) == 0 {
			return &urlError{reason: "host does not resolve", cause: err}
		}
		if err != nil {
			return fmt.Errorf("hook: resolve webhook host: %w", err)
		}
	}
	for _, ip := range addrs {
		if !Public(ip) {
			return &urlError{reason: "must not resolve to a loopback, private or link-local address", cause: ErrPrivateAddress}
		}
	}
	return nil
}

// Address ranges that are never a webhook receiver on the public internet.
var (
	nonPublic4 = prefixes(
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, where cloud metadata services live
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
	)
	global6    = netip.MustParsePrefix("2000::/3")
	nonPublic6 = prefixes(
		"2001::/32",     // Teredo: tunnels to an address the server cannot see
		"2001:db8::/32", // documentation
	)
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// Public reports whether ip is an address on the public internet, the only
// kind a webhook may be delivered to: not loopback, private, link-local,
// carrier-grade NAT, multicast, broadcast, unspecified, reserved,
// benchmarking or documentation space. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry, and so are NAT64 (64:ff9b::/96)
// and 6to4 (2002::/16) addresses, which reach the IPv4 address they embed.
// Other IPv6 addresses are public only inside global unicast 2000::/3,
// which leaves out ::1, ::, fc00::/7, fe80::/10, fec0::/10, ff00::/8 and
// the local-use NAT64 prefix 64:ff9b:1::/48. An address with a zone is
// never public: a zone only means something on one host's link.
func Public(ip netip.Addr) bool {
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return !inAny(ip, nonPublic4)
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte(b[12:16])))
	}
	if !global6.Contains(ip) || inAny(ip, nonPublic6) {
		return false
	}
	if sixToFour.Contains(ip) {
		b := ip.As16()
		return Public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}

func inAny(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
