// Package redistest runs a real Redis Cluster for tests: redis-server
// processes on 127.0.0.1, each on a free port with its own temporary
// directory, joined by redis-cli --cluster create, and stopped by PID
// when the test ends. Nothing here imitates Redis.
//
// It needs redis-server and redis-cli (Debian's redis-server package,
// 7.0 or newer). Without them a test is skipped, unless CI is set in the
// environment: CI installs them, so there a missing binary fails.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a running Redis Cluster.
type Cluster struct {
	// Addrs are the nodes' host:port, primaries first as created; which
	// node is a primary changes after a failover.
	Addrs []string
	nodes []*node
}

type node struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
}

// Start runs primaries primary nodes with replicas replicas each and
// returns once the cluster says cluster_state:ok on every node and every
// replica is in sync with its primary. The processes are stopped when t
// ends.
func Start(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	server, cli := binaries(t)
	c := &Cluster{}
	t.Cleanup(c.stop)
	n := primaries * (1 + replicas)
	for i := range n {
		nd, err := startNode(server, cli, filepath.Join(t.TempDir(), strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("redistest: node %d: %v", i, err)
		}
		c.nodes = append(c.nodes, nd)
		c.Addrs = append(c.Addrs, nd.addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range c.Addrs {
		if err := waitFor(60*time.Second, func() error {
			info, err := Cmd(cli, a, "cluster", "info")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("not ok yet:\n%s", info)
			}
			// A replica that has not finished its first sync would
			// refuse to take over from a dead primary (its data counts
			// as too old), so the cluster is ready once every replica's
			// link to its primary is up.
			repl, err := Cmd(cli, a, "info", "replication")
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("replica not in sync yet:\n%s", repl)
			}
			return nil
		}); err != nil {
			t.Fatalf("redistest: %s: %v", a, err)
		}
	}
	return c
}

// Kill sends SIGKILL to node i, as a crash would, and waits for it to
// be gone.
func (c *Cluster) Kill(i int) {
	nd := c.nodes[i]
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
}

// PIDs are the nodes' process ids, in the order of Addrs.
func (c *Cluster) PIDs() []int {
	pids := make([]int, len(c.nodes))
	for i, nd := range c.nodes {
		pids[i] = nd.cmd.Process.Pid
	}
	return pids
}

// stop ends every node still running: SIGTERM, and SIGKILL for one that
// has not exited five seconds later.
func (c *Cluster) stop() {
	for _, nd := range c.nodes {
		_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, nd := range c.nodes {
		select {
		case <-nd.done:
		case <-time.After(5 * time.Second):
			_ = nd.cmd.Process.Signal(syscall.SIGKILL)
			<-nd.done
		}
	}
}

// Cmd runs one command through redis-cli against addr and returns its
// output, or an error with that output when redis-cli fails or answers
// an error.
func Cmd(cli, addr string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	s := string(out)
	if err == nil && strings.HasPrefix(s, "ERR") {
		err = errors.New(strings.TrimSpace(s))
	}
	if err != nil {
		return s, fmt.Errorf("redis-cli %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

// binaries finds redis-server and redis-cli, or skips t (fails it in CI).
func binaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err := errors.Join(err1, err2); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("redis-server and redis-cli are needed (apt-get install redis-server); CI runs these tests: %v", err)
		}
		t.Fatalf("CI must run the Redis tests: %v", err)
	}
	return server, cli
}

// startNode starts one cluster-enabled redis-server in dir, on a free
// port whose cluster bus port (port+10000) is free too, and waits until
// it answers PING. A port taken between the check and the start is
// tried again with another.
func startNode(server, cli, dir string) (*node, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		nd, err := runNode(server, cli, dir, port)
		if err == nil {
			return nd, nil
		}
		last = err
	}
	return nil, last
}

func runNode(server, cli, dir string, port int) (*node, error) {
	log, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(server,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "2000",
		// A replica whose link looks old (a loaded test machine starves
		// it) would otherwise refuse to take over: in tests, any replica
		// may.
		"--cluster-replica-validity-factor", "0",
		"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a Ctrl-C to the test run is the test's to
	// handle, and Cleanup stops the node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	nd := &node{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(nd.done) }()
	err = waitFor(10*time.Second, func() error {
		select {
		case <-nd.done:
			out, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return fatal{fmt.Errorf("exited: %s", out)}
		default:
		}
		out, err := Cmd(cli, nd.addr, "ping")
		if err != nil || strings.TrimSpace(out) != "PONG" {
			return fmt.Errorf("no PONG: %q %v", out, err)
		}
		return nil
	})
	if err != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-nd.done
		return nil, err
	}
	return nd, nil
}

// freePort answers a port free on 127.0.0.1 whose cluster bus port is
// free too.
func freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			ln.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		ln.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port with a free bus port")
}

// fatal wraps an error that no retry can mend.
type fatal struct{ error }

// waitFor calls fn until it returns nil, a fatal error, or d has passed.
func waitFor(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		var s fatal
		if err == nil || errors.As(err, &s) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
