package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/hotzone/hotzone/store/redis"
	"github.com/hotzone/hotzone/store/redis/redistest"
)

// clusterFixture is a Redis Cluster, a fake APNs, and what a hotzone
// node needs to run on them.
type clusterFixture struct {
	redis  *redistest.Cluster
	fake   *pushtest.APNs
	secret []byte
	caFile string
}

func newClusterFixture(t *testing.T) *clusterFixture {
	t.Helper()
	f := &clusterFixture{redis: redistest.Start(t, 3, 1), fake: pushtest.NewAPNs(t), secret: make([]byte, 32)}
	_, _ = rand.Read(f.secret)
	f.caFile = filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.fake.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// nodes starts n hotzone processes on the cluster under prefix.
func (f *clusterFixture) nodes(t *testing.T, n int, prefix string) []*child {
	t.Helper()
	env := []string{"HOTZONE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(f.secret), "HOTZONE_OPERATOR_KEY=hzo_cluster-test",
		"HOTZONE_REDIS=redis://" + strings.Join(f.redis.Addrs, ",")}
	out := make([]*child, n)
	for i := range out {
		out[i] = startChild(t, env, "--data", t.TempDir(), "--redis-prefix", prefix, "--apns-url", f.fake.URL(),
			"--push-ca-file", f.caFile, "--push-lease", "3s", "--device-ping-rate", "0",
			// A loaded test machine may starve a replica past the default
			// 100 ms; the failover test counts on every queued write
			// having reached one.
			"--redis-wait-timeout", "5s")
	}
	return out
}

// open opens the cluster directly, as a node would, to seed data.
func (f *clusterFixture) open(t *testing.T, prefix string) *redis.DB {
	t.Helper()
	db, err := redis.Open(t.Context(), f.redis.Addrs, redis.Options{SecretKey: f.secret, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestCluster runs three hotzone processes on one Redis Cluster and
// checks that they serve as one: the README walkthrough with each
// request to another node, a fan-out of devices that pinged other
// nodes, live counts on a third, a node killed mid fan-out, and a Redis
// primary killed under load. The last two kill things, so they come
// last.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and hotzone processes")
	}
	f := newClusterFixture(t)
	t.Run("Walkthrough", func(t *testing.T) { testClusterWalkthrough(t, f.nodes(t, 3, "walk")) })
	t.Run("FanOutAcrossNodes", func(t *testing.T) { testClusterFanOut(t, f, f.nodes(t, 3, "fan")) })
	t.Run("ExportWhileServing", func(t *testing.T) { testClusterExport(t, f, f.nodes(t, 1, "exp")) })
	t.Run("NodeKilledMidFanOut", func(t *testing.T) { testClusterNodeKilled(t, f) })
	t.Run("ClusterStalledMidFanOut", func(t *testing.T) { testClusterStalled(t, f) })
	t.Run("PrimaryKilledUnderLoad", func(t *testing.T) { testClusterPrimaryKilled(t, f) })
	t.Run("ClusterGone", func(t *testing.T) { testClusterGone(t, f) })
}

// testClusterGone: with every Redis node dead, a node is not ready and
// its API answers 503 with Retry-After, never a 500.
func testClusterGone(t *testing.T, f *clusterFixture) {
	nodes := f.nodes(t, 1, "gone")
	code, brand := httpCall(t, "POST", nodes[0].base+"/v1/brands", "hzo_cluster-test", `{"name":"Gone"}`)
	if code != 201 {
		t.Fatalf("POST /v1/brands = %d %v", code, brand)
	}
	app := brand["app_key"].(string)
	for i := range f.redis.Addrs {
		f.redis.Kill(i)
	}
	eventually(t, "/readyz 503 without the cluster", func() bool {
		code, _ := httpCall(t, "GET", nodes[0].base+"/readyz", "", "")
		return code == 503
	})
	req, _ := http.NewRequest("PUT", nodes[0].base+"/v1/devices/d", strings.NewReader(`{"platform":"ios","opt_in":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+app)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("PUT a device without the cluster = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// testClusterWalkthrough: README.md's walkthrough, each request sent to
// the next node in turn.
func testClusterWalkthrough(t *testing.T, nodes []*child) {
	i := 0
	next := func() string { i++; return nodes[i%len(nodes)].base }
	code, brand := httpCall(t, "POST", next()+"/v1/brands", "hzo_cluster-test", `{"name":"Krispy Donuts"}`)
	if code != 201 {
		t.Fatalf("POST /v1/brands = %d %v", code, brand)
	}
	admin, app := brand["admin_key"].(string), brand["app_key"].(string)
	// Keys and brands made on one node work on every node within
	// ViewLag (all of them, since each next request goes elsewhere).
	eventually(t, "the new admin key on every node", func() bool {
		for _, n := range nodes {
			if code, _ := httpCall(t, "GET", n.base+"/v1/policy", admin, ""); code != 200 {
				return false
			}
		}
		return true
	})
	if code, m := httpCall(t, "PUT", next()+"/v1/stores/main-st", admin, `{"name":"Main St","timezone":"America/New_York","tags":["drive-thru"],
		"fence":{"circle":{"lat":40.7128,"lon":-74.0060,"radius_m":800}}}`); code != 201 {
		t.Fatalf("PUT store = %d %v", code, m)
	}
	if code, m := httpCall(t, "PUT", next()+"/v1/devices/phone-1", app, `{"platform":"ios","opt_in":true,"timezone":"America/New_York",
		"push":{"provider":"apns","token":"`+strings.Repeat("ab", 32)+`"}}`); code != 201 {
		t.Fatalf("PUT device = %d %v", code, m)
	}
	eventually(t, "the store's fence on every node", func() bool {
		for range nodes {
			code, p := httpCall(t, "POST", next()+"/v1/pings", app, `{"device_id":"phone-1","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
			if inside, _ := p["inside"].([]any); code != 200 || len(inside) != 1 {
				return false
			}
		}
		return true
	})
	code, ev := httpCall(t, "POST", next()+"/v1/stores/main-st/events", admin, `{"title":"Hot Now","body":"Fresh Original Glazed at Main St","duration_s":1800}`)
	if code != 201 {
		t.Fatalf("start event = %d %v", code, ev)
	}
	if code, m := httpCall(t, "POST", next()+"/v1/stores/main-st/events", admin, `{"title":"Again","body":"x","duration_s":60}`); code != 409 {
		t.Errorf("a second start on another node = %d %v, want 409", code, m)
	}
	// Sent (dry run) or suppressed by quiet hours, depending on the hour;
	// never lost, and the same on every node.
	eventually(t, "settled counts on every node", func() bool {
		for range nodes {
			_, live := httpCall(t, "GET", next()+"/v1/stores/main-st/events/live", admin, "")
			c, _ := live["counts"].(map[string]any)
			if c == nil || c["devices_in_fence"] != 1.0 || c["queued"] != 0.0 {
				return false
			}
		}
		return true
	})
	code, list := httpCall(t, "GET", next()+"/v1/notifications?device_id=phone-1", admin, "")
	if items, _ := list["items"].([]any); code != 200 || len(items) != 1 {
		t.Errorf("GET /v1/notifications?device_id=phone-1 = %d %v, want its one entry", code, list)
	}
	if code, m := httpCall(t, "DELETE", next()+"/v1/stores/main-st/events/live", admin, ""); code != 200 {
		t.Errorf("end the event on another node = %d %v", code, m)
	}
	// The backend's round trips are on /metrics.
	if m := scrape(t, nodes[0].base); m["hotzone_backend_round_trip_seconds_count"] == 0 {
		t.Errorf("/metrics lacks the backend's round trips: %v", m["hotzone_backend_round_trip_seconds_count"])
	}
	eventually(t, "the end on every node", func() bool {
		for range nodes {
			if code, _ := httpCall(t, "GET", next()+"/v1/stores/main-st/events/live", admin, ""); code != 404 {
				return false
			}
		}
		return true
	})
}

// eventually polls ok for up to ten times ViewLag.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * hotzone.ViewLag)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, 10*hotzone.ViewLag)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seedBrand creates a brand with APNs credentials the fake accepts and
// a store, through the cluster directly.
func seedBrand(t *testing.T, f *clusterFixture, db *redis.DB) (br hotzone.Brand, adminKey, appKey string) {
	t.Helper()
	ctx := t.Context()
	br, adminKey, appKey, err := db.CreateBrand(ctx, "Cluster Donuts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error { p.QuietHours = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCredentials(ctx, br.ID, apnsCredentials(f.fake, "com.example.cluster")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PutStore(ctx, storeS(t, br.ID)); err != nil {
		t.Fatal(err)
	}
	return br, adminKey, appKey
}

// token is a device's APNs token in these tests.
func token(prefix string, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s-%d", prefix, i))
	return hex.EncodeToString(h[:])
}

// testClusterFanOut: devices register and ping through B and C; an event
// started on A reaches every one of them, and a live stream on C sees
// the counts move to all sent.
func testClusterFanOut(t *testing.T, f *clusterFixture, nodes []*child) {
	const devices = 300
	db := f.open(t, "fan")
	_, admin, appKey := seedBrand(t, f, db)
	tokens := make([]string, devices)
	for i := range devices {
		node := nodes[1+i%2].base
		tokens[i] = token("fan", i)
		if code, m := httpCall(t, "PUT", fmt.Sprintf("%s/v1/devices/d-%d", node, i), appKey,
			`{"platform":"ios","opt_in":true,"timezone":"UTC","push":{"provider":"apns","token":"`+tokens[i]+`"}}`); code != 201 {
			t.Fatalf("PUT device on node %d = %d %v", 1+i%2, code, m)
		}
		if code, m := httpCall(t, "POST", node+"/v1/pings", appKey, fmt.Sprintf(`{"device_id":"d-%d","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`, i)); code != 200 {
			t.Fatalf("ping on node %d = %d %v", 1+i%2, code, m)
		}
	}
	// Positions are written behind (a flush interval); let them land.
	time.Sleep(1500 * time.Millisecond)

	stream, cancel := openStream(t, nodes[2].base+"/v1/stores/s/events/live/stream", admin)
	defer cancel()
	if code, m := httpCall(t, "POST", nodes[0].base+"/v1/stores/s/events", admin, `{"title":"Hot","body":"Now","duration_s":600}`); code != 201 {
		t.Fatalf("start event on A = %d %v", code, m)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case data, ok := <-stream:
			if !ok {
				t.Fatal("the stream on C ended")
			}
			var ev struct {
				Counts *hotzone.Counts `json:"counts"`
			}
			if json.Unmarshal([]byte(data), &ev) == nil && ev.Counts != nil && ev.Counts.Sent == devices {
				for _, tok := range tokens {
					if n := f.fake.Count(tok); n != 1 {
						t.Errorf("token %s… got %d pushes, want 1", tok[:8], n)
					}
				}
				return
			}
		case <-deadline:
			missing := 0
			for _, tok := range tokens {
				if f.fake.Count(tok) == 0 {
					missing++
				}
			}
			t.Fatalf("the stream on C never showed %d sent (%d devices still without a push)", devices, missing)
		}
	}
}

// openStream reads a live stream's data lines until cancelled.
func openStream(t *testing.T, url, key string) (<-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	out := make(chan string, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case out <- d:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, cancel
}

// seedDevices registers n devices inside store s with fresh positions,
// through the cluster directly and in parallel.
func seedDevices(t *testing.T, db *redis.DB, brandID, prefix string, n int) []string {
	t.Helper()
	ctx := t.Context()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 32
	now := time.Now().UTC()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("dev-%05d", i)
				tokens[i] = token(prefix, i)
				d := hotzone.Device{ID: id, BrandID: brandID, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: tokens[i]}
				if _, _, err := db.PutDevice(ctx, d); err != nil {
					failed.Store(err)
					return
				}
				if err := db.RecordPosition(ctx, brandID, id, hotzone.Position{Lat: 40.7128, Lon: -74.006, AccuracyM: 10, TS: now}, true); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	if err := db.FlushPositions(ctx); err != nil {
		t.Fatal(err)
	}
	return tokens
}

// testClusterNodeKilled: SIGKILL of the node fanning out and sending, in
// the middle of a 10,000-device event; the other two finish it: every
// device gets its push, and the duplicates stay within what the dead
// node had in flight.
func testClusterNodeKilled(t *testing.T, f *clusterFixture) {
	const devices = 10_000
	nodes, admin, tokens, pushed := f.startBigEvent(t, "kill", devices)
	for i, prev := 0, 0; ; i++ {
		n := pushed()
		if n >= devices/4 && n > prev {
			break
		}
		if i > 60000 {
			t.Fatalf("only %d pushes arrived before the kill deadline", n)
		}
		prev = n
		time.Sleep(time.Millisecond)
	}
	if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = nodes[0].cmd.Wait()
	atKill := pushed()
	twice := f.allDelivered(t, tokens, "after node A died")
	// Sent by A but not yet recorded: at most its sends in flight.
	const inFlightBound = push.DefaultConcurrency
	t.Logf("SIGKILL of node A after %d of %d pushes; %d devices received theirs twice (bound: %d in flight on A)", atKill, devices, twice, inFlightBound)
	if twice > inFlightBound {
		t.Errorf("%d duplicates, more than the %d node A can have in flight", twice, inFlightBound)
	}
	allSentInCounts(t, nodes[1], admin, devices)
}

// startBigEvent seeds a brand under prefix with devices in its store's
// fence, starts three nodes and an event on the first: it answers the
// nodes, the brand's admin key, the devices' tokens and a count of the
// pushes from before the event's start.
func (f *clusterFixture) startBigEvent(t *testing.T, prefix string, devices int) (nodes []*child, admin string, tokens []string, pushed func() int) {
	t.Helper()
	db := f.open(t, prefix)
	br, admin, _ := seedBrand(t, f, db)
	tokens = seedDevices(t, db, br.ID, prefix, devices)
	nodes = f.nodes(t, 3, prefix)
	pushed = f.pushes()
	if code, m := httpCall(t, "POST", nodes[0].base+"/v1/stores/s/events", admin, `{"title":"Hot","body":"Now","duration_s":3600}`); code != 201 {
		t.Fatalf("start event = %d %v", code, m)
	}
	return nodes, admin, tokens, pushed
}

// allSentInCounts waits until a node's live event of store s counts
// every one of devices sent and none queued.
func allSentInCounts(t *testing.T, node *child, admin string, devices int) {
	t.Helper()
	eventually(t, "all sent in the counts", func() bool {
		_, live := httpCall(t, "GET", node.base+"/v1/stores/s/events/live", admin, "")
		c, _ := live["counts"].(map[string]any)
		return c != nil && c["sent"] == float64(devices) && c["queued"] == 0.0
	})
}

// pushes answers a count of the fake APNs' pushes from now on: the
// fake counts every subtest's.
func (f *clusterFixture) pushes() func() int {
	from := len(f.fake.Received())
	return func() int { return len(f.fake.Received()) - from }
}

// allDelivered waits up to two minutes until every token has received
// a push, then answers how many received two; more than two fails t.
func (f *clusterFixture) allDelivered(t *testing.T, tokens []string, when string) (twice int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		for _, tok := range tokens {
			if f.fake.Count(tok) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d devices never got their push %s", missing, when)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, tok := range tokens {
		switch n := f.fake.Count(tok); {
		case n == 2:
			twice++
		case n > 2:
			t.Errorf("token %s… received %d pushes", tok[:8], n)
		}
	}
	return twice
}

// testClusterStalled: every Redis process stopped (SIGSTOP) for longer
// than a node waits for an answer, in the middle of a 10,000-device
// event, then let go on: the fan-out and the sends fail meanwhile, and
// the nodes finish them on their own afterwards. Every device gets its
// push; the duplicates stay within what the three nodes had claimed
// (each lane's sends out plus one claimed batch per node), since the
// claims lapse during the stall; the counts end all sent.
func testClusterStalled(t *testing.T, f *clusterFixture) {
	const devices = 10_000
	nodes, admin, tokens, pushed := f.startBigEvent(t, "stall", devices)
	// From the first push on: the fan-out is then still deciding, and
	// the sends have begun.
	for i := 0; pushed() == 0; i++ {
		if i > 60000 {
			t.Fatal("no push arrived within a minute")
		}
		time.Sleep(time.Millisecond)
	}
	_, before := httpCall(t, "GET", nodes[0].base+"/v1/stores/s/events/live", admin, "")
	pids := f.redis.PIDs()
	signalAll := func(sig syscall.Signal) {
		for _, pid := range pids {
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatalf("signal %v to redis-server %d: %v", sig, pid, err)
			}
		}
	}
	signalAll(syscall.SIGSTOP)
	atStall := pushed()
	// Past the nodes' 5 s bound on a round trip (Options.OpTimeout) and
	// their 3 s send lease (--push-lease).
	time.Sleep(7 * time.Second)
	signalAll(syscall.SIGCONT)
	atResume, resumed := pushed(), time.Now()
	twice := f.allDelivered(t, tokens, fmt.Sprintf("after the stall (%d pushes before it, %d by its end)", atStall, atResume))
	bound := len(nodes) * 2 * push.DefaultConcurrency
	t.Logf("cluster stopped 7 s after %d of %d pushes (%d by its end; counts just before: %v); all delivered %.1f s after; %d devices received theirs twice (bound: %d)",
		atStall, devices, atResume, before["counts"], time.Since(resumed).Seconds(), twice, bound)
	if twice > bound {
		t.Errorf("%d duplicates, more than the %d the nodes can have claimed", twice, bound)
	}
	allSentInCounts(t, nodes[2], admin, devices)
	for _, n := range nodes {
		if code, _ := httpCall(t, "GET", n.base+"/readyz", "", ""); code != 200 {
			t.Errorf("a node's /readyz = %d after the stall", code)
		}
	}
}

// testClusterPrimaryKilled: pings and registrations go to all three
// nodes while a Redis primary is killed; its replica takes over. No
// answer is a 500, every 503 says when to retry, every registration
// answered 2xx is there afterwards, and every ping answered "queued"
// has its notification in the log.
func testClusterPrimaryKilled(t *testing.T, f *clusterFixture) {
	db := f.open(t, "failover")
	br, admin, appKey := seedBrand(t, f, db)
	nodes := f.nodes(t, 3, "failover")
	if code, m := httpCall(t, "POST", nodes[0].base+"/v1/stores/s/events", admin, `{"title":"Hot","body":"Now","duration_s":3600}`); code != 201 {
		t.Fatalf("start event = %d %v", code, m)
	}
	eventually(t, "the event live on every node", func() bool {
		for _, n := range nodes {
			if code, _ := httpCall(t, "GET", n.base+"/v1/stores/s/events/live", admin, ""); code != 200 {
				return false
			}
		}
		return true
	})
	var (
		mu         sync.Mutex
		registered []string
		queued     []string
		statuses   = map[int]int{}
		bad        []string
	)
	client := &http.Client{Timeout: 30 * time.Second}
	began := time.Now()
	bySecond := map[int]map[int]int{}
	call := func(method, url, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+appKey)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		mu.Lock()
		statuses[resp.StatusCode]++
		sec := int(time.Since(began) / time.Second)
		if bySecond[sec] == nil {
			bySecond[sec] = map[int]int{}
		}
		bySecond[sec][resp.StatusCode]++
		if resp.StatusCode >= 500 && (resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "") {
			bad = append(bad, fmt.Sprintf("%s %s = %d %v", method, url, resp.StatusCode, m))
		}
		mu.Unlock()
		return resp.StatusCode, m
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i >= 100_000 { // bounded, whatever happens
					return
				}
				node := nodes[(w+i)%len(nodes)].base
				id := fmt.Sprintf("w%d-%d", w, i)
				code, _ := call("PUT", node+"/v1/devices/"+id, `{"platform":"ios","opt_in":true,"timezone":"UTC","push":{"provider":"apns","token":"`+token("failover-"+id, 0)+`"}}`)
				if code != 201 {
					continue
				}
				mu.Lock()
				registered = append(registered, id)
				mu.Unlock()
				code, m := call("POST", nodes[(w+i+1)%len(nodes)].base+"/v1/pings", `{"device_id":"`+id+`","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
				if code != 200 {
					continue
				}
				if ns, _ := m["notifications"].([]any); len(ns) > 0 {
					if e, _ := ns[0].(map[string]any); e["status"] == "queued" {
						mu.Lock()
						queued = append(queued, id)
						mu.Unlock()
					}
				}
			}
		})
	}
	time.Sleep(time.Second)
	f.redis.Kill(0)
	time.Sleep(8 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("answers while a primary failed over: %v; %d registered, %d queued", statuses, len(registered), len(queued))
	for sec := range 12 {
		if bySecond[sec] != nil {
			t.Logf("second %d: %v", sec, bySecond[sec])
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	if len(registered) == 0 || len(queued) == 0 {
		t.Fatalf("the load did nothing: %d registered, %d queued", len(registered), len(queued))
	}
	for _, id := range registered {
		if code, m := httpCall(t, "GET", nodes[2].base+"/v1/notifications?device_id="+id, admin, ""); code != 200 {
			t.Errorf("the log of %s after the failover = %d %v", id, code, m)
		}
		if _, _, err := db.Device(t.Context(), br.ID, id); err != nil {
			t.Errorf("device %s, registered during the failover, is gone: %v", id, err)
		}
	}
	for _, id := range queued {
		code, m := httpCall(t, "GET", nodes[1].base+"/v1/notifications?device_id="+id, admin, "")
		if items, _ := m["items"].([]any); code != 200 || len(items) != 1 {
			t.Errorf("%s was answered queued, its log after the failover = %d %v", id, code, m)
		}
	}
}

// testClusterExport: hotzone export reads a brand from the cluster while
// the service runs on it.
func testClusterExport(t *testing.T, f *clusterFixture, nodes []*child) {
	base := nodes[0].base
	_, brand := httpCall(t, "POST", base+"/v1/brands", "hzo_cluster-test", `{"name":"Export"}`)
	admin, app, brandID := brand["admin_key"].(string), brand["app_key"].(string), brand["id"].(string)
	eventually(t, "the new admin key", func() bool {
		code, _ := httpCall(t, "GET", base+"/v1/policy", admin, "")
		return code == 200
	})
	httpCall(t, "PUT", base+"/v1/stores/s", admin, `{"name":"S","fence":{"circle":{"lat":40.7128,"lon":-74.0060,"radius_m":800}}}`)
	httpCall(t, "PUT", base+"/v1/devices/d1", app, `{"platform":"ios","opt_in":true}`)
	httpCall(t, "POST", base+"/v1/pings", app, `{"device_id":"d1","lat":40.7130,"lon":-74.0055,"accuracy_m":15}`)
	getenv := func(k string) string {
		if k == "HOTZONE_SECRET_KEY" {
			return base64.StdEncoding.EncodeToString(f.secret)
		}
		return ""
	}
	var out, summary strings.Builder
	err := run(t.Context(), []string{"export", "--brand", brandID, "--redis", "redis://" + strings.Join(f.redis.Addrs, ","), "--redis-prefix", "exp"},
		getenv, &out, &summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"type":"brand"`, `{"type":"store","data":{"id":"s"`, `{"type":"device","data":{"id":"d1"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the export lacks %s:\n%s", want, out.String())
		}
	}
	if !strings.Contains(summary.String(), "1 device") {
		t.Errorf("summary: %s", summary.String())
	}
}
