package redistest

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCluster: three primaries with a replica each form one cluster; a
// key written through one node is read through another (redis-cli
// follows the redirect); a killed primary's replica takes over; and
// when the test ends every process is gone.
func TestCluster(t *testing.T) {
	var pids []int
	t.Run("run", func(t *testing.T) {
		c := Start(t, 3, 1)
		pids = c.PIDs()
		_, cli := binaries(t)
		info, err := Cmd(cli, c.Addrs[0], "cluster", "info")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_size:3", "cluster_known_nodes:6", "cluster_slots_assigned:16384"} {
			if !strings.Contains(info, want) {
				t.Errorf("cluster info lacks %s:\n%s", want, info)
			}
		}
		if _, err := Cmd(cli, c.Addrs[1], "-c", "set", "hotzone:k", "v"); err != nil {
			t.Fatal(err)
		}
		if got, err := Cmd(cli, c.Addrs[2], "-c", "get", "hotzone:k"); err != nil || strings.TrimSpace(got) != "v" {
			t.Fatalf("get through another node = %q, %v", got, err)
		}

		// The primary holding the key dies; its replica is promoted and
		// the key is still there.
		slot, err := Cmd(cli, c.Addrs[0], "cluster", "keyslot", "hotzone:k")
		if err != nil {
			t.Fatal(err)
		}
		owner := -1
		for i, a := range c.Addrs[:3] {
			if out, err := Cmd(cli, a, "cluster", "countkeysinslot", strings.TrimSpace(slot)); err == nil && strings.TrimSpace(out) == "1" {
				owner = i
			}
		}
		if owner < 0 {
			t.Fatal("no primary holds the key")
		}
		// The write reached the replica before the primary dies: WAIT
		// covers the writes of its own connection, so the key is written
		// again on the one connection that then waits (a WAIT on a fresh
		// connection answers at once, whatever the replica has).
		host, port, _ := net.SplitHostPort(c.Addrs[owner])
		sess := exec.Command(cli, "-h", host, "-p", port)
		sess.Stdin = strings.NewReader("SET hotzone:k v\nWAIT 1 10000\n")
		out, err := sess.CombinedOutput()
		if lines := strings.Fields(string(out)); err != nil || len(lines) != 2 || lines[0] != "OK" || lines[1] != "1" {
			t.Fatalf("SET, then WAIT 1 on the same connection: %q, %v", out, err)
		}
		c.Kill(owner)
		other := c.Addrs[(owner+1)%3]
		err = waitFor(60*time.Second, func() error {
			got, err := Cmd(cli, other, "-c", "get", "hotzone:k")
			if err != nil || strings.TrimSpace(got) != "v" {
				return fmt.Errorf("not yet: %q, %v", got, err)
			}
			return nil
		})
		if err != nil {
			nodes, _ := Cmd(cli, other, "cluster", "nodes")
			t.Fatalf("after the primary died: %v\ncluster nodes as %s sees them:\n%s", err, other, nodes)
		}
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("redis-server %d still runs after the test (kill 0: %v)", pid, err)
		}
	}
}
