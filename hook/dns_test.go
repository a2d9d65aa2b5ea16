package hook

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeDNS answers A and AAAA queries from a table the test can change, so
// name lookups need no network and a test can repoint a name (DNS
// rebinding). Names not in the table are NXDOMAIN.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]netip.Addr
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	return &fakeDNS{records: map[string][]netip.Addr{}}
}

func (d *fakeDNS) set(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	d.records[name] = as
}

// resolver is a pure-Go resolver whose every connection is an in-memory
// pipe to d. The resolver speaks DNS over TCP framing on a net.Pipe, since
// a pipe is not a PacketConn.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go d.serve(server)
			return client, nil
		},
	}
}

func (d *fakeDNS) serve(c net.Conn) {
	defer c.Close()
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := d.answer(q)
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// answer builds the response to one well-formed query (the resolver's own).
func (d *fakeDNS) answer(q []byte) []byte {
	i := 12
	var labels []string
	for q[i] != 0 {
		n := int(q[i])
		labels = append(labels, string(q[i+1:i+1+n]))
		i += 1 + n
	}
	i++
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]

	d.mu.Lock()
	addrs, known := d.records[strings.ToLower(strings.Join(labels, "."))]
	d.mu.Unlock()

	// ID copied; QR, AA, RD, RA set; one question, answers counted below.
	resp := append([]byte{q[0], q[1], 0x85, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, question...)
	if !known {
		resp[3] |= 3 // NXDOMAIN
		return resp
	}
	var n uint16
	for _, a := range addrs {
		rtype := uint16(1) // A
		if a.Is6() {
			rtype = 28 // AAAA
		}
		if rtype != qtype {
			continue
		}
		resp = append(resp, 0xc0, 12) // name: pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, rtype)
		resp = append(resp, 0, 1, 0, 0, 0, 60) // class IN, TTL 60 s
		b := a.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(b)))
		resp = append(resp, b...)
		n++
	}
	binary.BigEndian.PutUint16(resp[6:], n)
	return resp
}
