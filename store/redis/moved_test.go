package redis

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/hotzone/hotzone/store/redis/redistest"
)

// testWaitedWriteMoved: a write that waits for a replica still lands
// when its slot moved to another primary and the client has not caught
// up: the connection of its own answers MOVED, which it does not follow,
// and the write goes again through the shared client, which does.
func testWaitedWriteMoved(t *testing.T, c *redistest.Cluster, db *DB, prefix string) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal(err)
	}
	primaries := primaryNodes(t, cli, c.Addrs[0])
	// A slot of no key yet: moving it needs no MIGRATE.
	var (
		tag      string
		slot     int
		src, dst clusterNode
	)
	for n := 0; ; n++ {
		tag = prefix + ":moved:" + strconv.Itoa(n)
		slot = int(crc16(tag) % slots)
		for i, p := range primaries {
			if p.owns(slot) {
				src, dst = p, primaries[(i+1)%len(primaries)]
			}
		}
		out, err := redistest.Cmd(cli, src.addr, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "0" {
			break
		}
	}
	s := strconv.Itoa(slot)
	for _, step := range []struct{ addr, verb, id string }{
		{dst.addr, "IMPORTING", src.id}, {src.addr, "MIGRATING", dst.id},
		{dst.addr, "NODE", dst.id}, {src.addr, "NODE", dst.id},
	} {
		if _, err := redistest.Cmd(cli, step.addr, "CLUSTER", "SETSLOT", s, step.verb, step.id); err != nil {
			t.Fatal(err)
		}
	}
	key := "{" + tag + "}:n"
	incr := newScript(`return redis.call('INCR', KEYS[1])`)
	if n, err := db.execWaited(t.Context(), incr, []string{key}, nil).AsInt64(); err != nil || n != 1 {
		t.Fatalf("a waited write to a moved slot = %d, %v; want 1", n, err)
	}
	if out, err := redistest.Cmd(cli, dst.addr, "GET", key); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("the slot's new primary has %q, %v; want 1", out, err)
	}
}

// clusterNode is a primary as CLUSTER NODES lists it.
type clusterNode struct {
	id, addr string
	ranges   [][2]int
}

func (n clusterNode) owns(slot int) bool {
	for _, r := range n.ranges {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// primaryNodes reads the cluster's primaries and their slots from addr.
func primaryNodes(t *testing.T, cli, addr string) []clusterNode {
	t.Helper()
	out, err := redistest.Cmd(cli, addr, "CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	var ps []clusterNode
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		n := clusterNode{id: f[0], addr: f[1][:strings.IndexByte(f[1], '@')]}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				n.ranges = append(n.ranges, [2]int{a, b})
			}
		}
		ps = append(ps, n)
	}
	if len(ps) < 2 {
		t.Fatalf("CLUSTER NODES lists %d primaries:\n%s", len(ps), out)
	}
	return ps
}
