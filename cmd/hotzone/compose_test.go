package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestCompose checks compose.yaml without a Docker engine: six Redis
// Cluster nodes with fixed addresses, an init that joins exactly those
// with one replica each, and three hotzone nodes given all six, the
// shared secret from the environment, waiting for the cluster.
func TestCompose(t *testing.T) {
	buf, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     any               `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   any               `yaml:"depends_on"`
			Networks    any               `yaml:"networks"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(buf, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	text := func(v any) string { return fmt.Sprint(v) }
	var redisAddrs, hotzones []string
	for name, s := range doc.Services {
		switch {
		case strings.HasPrefix(name, "redis-") && name != "redis-init":
			if !strings.Contains(text(s.Command), "--cluster-enabled yes") {
				t.Errorf("%s: not started with --cluster-enabled yes: %v", name, s.Command)
			}
			nets, _ := s.Networks.(map[string]any)
			hz, _ := nets["hz"].(map[string]any)
			addr, _ := hz["ipv4_address"].(string)
			if addr == "" {
				t.Errorf("%s: no fixed address", name)
			}
			redisAddrs = append(redisAddrs, addr+":6379")
		case strings.HasPrefix(name, "hotzone-"):
			hotzones = append(hotzones, name)
			if s.Build == nil {
				t.Errorf("%s: not built from this checkout", name)
			}
			if !strings.Contains(s.Environment["HOTZONE_SECRET_KEY"], "${HOTZONE_SECRET_KEY:?") {
				t.Errorf("%s: the secret key does not come from the environment, required: %q", name, s.Environment["HOTZONE_SECRET_KEY"])
			}
			if !strings.Contains(text(s.DependsOn), "service_completed_successfully") {
				t.Errorf("%s: does not wait for the cluster to be formed: %v", name, s.DependsOn)
			}
			if len(s.Ports) != 1 {
				t.Errorf("%s: ports %v, want one", name, s.Ports)
			}
		}
	}
	slices.Sort(redisAddrs)
	if len(redisAddrs) != 6 || len(hotzones) != 3 {
		t.Fatalf("%d Redis nodes and %d hotzone nodes, want 6 and 3", len(redisAddrs), len(hotzones))
	}
	for _, name := range hotzones {
		cmd := text(doc.Services[name].Command)
		for _, a := range redisAddrs {
			if !strings.Contains(cmd, a) {
				t.Errorf("%s: --redis lacks %s: %s", name, a, cmd)
			}
		}
		args := strings.Fields(strings.Trim(cmd, "[]"))
		i := slices.Index(args, "--redis")
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("%s: no --redis: %s", name, cmd)
		}
		if _, err := parseRedisURL(args[i+1]); err != nil {
			t.Errorf("%s: --redis %s: %v", name, args[i+1], err)
		}
	}
	initCmd := text(doc.Services["redis-init"].Command)
	for _, a := range redisAddrs {
		if !strings.Contains(initCmd, a) {
			t.Errorf("redis-init does not join %s: %s", a, initCmd)
		}
	}
	if !strings.Contains(initCmd, "--cluster-replicas 1") {
		t.Errorf("redis-init: not one replica per primary: %s", initCmd)
	}
}
