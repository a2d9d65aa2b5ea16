package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/push/pushtest"
	"github.com/hotzone/hotzone/store/bolt"
)

// TestMain lets a test start this very binary as the real server: with
// HOTZONE_TEST_SERVE set it runs main instead of the tests, so a test can
// SIGKILL a real process without building it first.
func TestMain(m *testing.M) {
	if os.Getenv("HOTZONE_TEST_SERVE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// child is a hotzone process started from the test binary.
type child struct {
	cmd  *exec.Cmd
	base string
}

func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "text"}, args...)...)
	cmd.Env = append(os.Environ(), append(env, "HOTZONE_TEST_SERVE=1")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if addr, ok := strings.CutPrefix(l, "listening on "); ok {
				return &child{cmd: cmd, base: "http://" + addr}
			}
		case <-deadline:
			t.Fatal("child server did not start")
		}
	}
}

// TestCrashMidFanOut kills the server with SIGKILL in the middle of a
// 10,000-device fan-out against the fake APNs, starts it again on the
// same data dir, and checks every device gets its push, none is lost, and
// duplicates stay within what was in flight at the kill.
func TestCrashMidFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts real processes")
	}
	const devices = 10_000
	fake := pushtest.NewAPNs(t)
	dir := t.TempDir()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	adminKey, tokens := seedCrashData(t, dir, secret, fake, devices)
	env := []string{"HOTZONE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(secret), "HOTZONE_OPERATOR_KEY=hzo_crash-test"}
	args := []string{"--data", dir, "--apns-url", fake.URL(), "--push-ca-file", caFile}

	c := startChild(t, env, args...)
	if code, m := httpCall(t, "POST", c.base+"/v1/stores/s/events", adminKey, `{"title":"Hot","body":"Now","duration_s":3600}`); code != 201 {
		t.Fatalf("start event = %d %v", code, m)
	}
	atKill := killMidSend(t, c, func() int { return len(fake.Received()) }, devices/4)
	c = startChild(t, env, args...)
	twice := countTwice(t, tokens, fake.Count)
	// In flight at the kill: sent, but not yet recorded as sent. A send's
	// slot frees only once its result is recorded, so that is at most the
	// dispatcher's concurrency per lane.
	const inFlightBound = push.DefaultConcurrency
	t.Logf("SIGKILL after %d of %d pushes; %d devices received theirs twice (bound: %d in flight)", atKill, devices, twice, inFlightBound)
	if twice > inFlightBound {
		t.Errorf("%d duplicates, more than the %d that can be in flight", twice, inFlightBound)
	}
	code, list := httpCall(t, "GET", c.base+"/v1/notifications?status=sent&limit=1000", adminKey, "")
	if items, _ := list["items"].([]any); code != 200 || len(items) == 0 {
		t.Errorf("delivery log after restart = %d, %d sent items", code, len(items))
	}
}

// seedCrashData writes the brand, its APNs credentials, a store and the
// devices with positions inside it straight into the data dir, as a long
// running installation would have them.
func seedCrashData(t *testing.T, dir string, secret []byte, fake *pushtest.APNs, n int) (string, []string) {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(dir, bolt.Options{SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	br, adminKey, _, err := db.CreateBrand(ctx, "Crash Donuts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdatePolicy(ctx, br.ID, func(p *hotzone.Policy) error { p.QuietHours = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCredentials(ctx, br.ID, apnsCredentials(fake, "com.example.crash")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.PutStore(ctx, storeS(t, br.ID)); err != nil {
		t.Fatal(err)
	}
	ds := make([]hotzone.Device, n)
	tokens := make([]string, n)
	for i := range ds {
		id := fmt.Sprintf("dev-%05d", i)
		h := sha256.Sum256([]byte(id))
		tokens[i] = hex.EncodeToString(h[:])
		ds[i] = hotzone.Device{ID: id, Platform: hotzone.PlatformIOS, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderAPNs, Token: tokens[i]}
	}
	if err := db.PutDevices(ctx, br.ID, ds); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, d := range ds {
		if err := db.RecordPosition(ctx, br.ID, d.ID, hotzone.Position{Lat: 40.7128, Lon: -74.006, AccuracyM: 10, TS: now}, true); err != nil {
			t.Fatal(err)
		}
	}
	return adminKey, tokens
}

// TestCrashAfterRegistrations kills the server with SIGKILL right after
// the last of many concurrent registrations was answered (before any
// checkpoint could run) and checks, on the same data dir, that every
// answered registration is there, and that a token that moved to
// another device moved for good.
func TestCrashAfterRegistrations(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts real processes")
	}
	dir := t.TempDir()
	env := []string{"HOTZONE_OPERATOR_KEY=hzo_crash-test"}
	// A long flush interval: nothing but the journal holds the devices
	// when the process dies.
	c := startChild(t, env, "--data", dir, "--flush-interval", "1m")
	code, m := httpCall(t, "POST", c.base+"/v1/brands", "hzo_crash-test", `{"name":"Crash"}`)
	if code != 201 {
		t.Fatalf("create brand = %d %v", code, m)
	}
	brandID, appKey := m["id"].(string), m["app_key"].(string)
	const n, workers = 600, 16
	token := func(i int) string { return fmt.Sprintf("fcm-token-%d", i) }
	body := func(tok string) string {
		return `{"platform":"android","push":{"provider":"fcm","token":"` + tok + `"},"opt_in":true,"timezone":"UTC"}`
	}
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/devices/d-%d", c.base, i), strings.NewReader(body(token(i))))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+appKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 201 {
					errs <- fmt.Errorf("PUT d-%d = %d", i, resp.StatusCode)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The last word: d-0's token moves to another device.
	if code, m := httpCall(t, "PUT", c.base+"/v1/devices/thief", appKey, body(token(0))); code != 201 {
		t.Fatalf("PUT thief = %d %v", code, m)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()

	db, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i := 1; i < n; i++ {
		d, _, err := db.Device(ctx, brandID, fmt.Sprintf("d-%d", i))
		if err != nil || d.Token != token(i) {
			t.Fatalf("after the kill, d-%d = %+v, %v", i, d, err)
		}
	}
	if d, _, err := db.Device(ctx, brandID, "d-0"); err != nil || d.Token != "" {
		t.Errorf("after the kill, d-0 = %+v, %v; want it without the token it lost", d, err)
	}
	if d, _, err := db.Device(ctx, brandID, "thief"); err != nil || d.Token != token(0) {
		t.Errorf("after the kill, thief = %+v, %v; want it with d-0's token", d, err)
	}
}

// apnsCredentials are APNs credentials with a fresh key the fake
// accepts.
func apnsCredentials(fake *pushtest.APNs, topic string) hotzone.PushCredentials {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	fake.AddKey("TEAM000001", "KEY0000001", &key.PublicKey)
	return hotzone.PushCredentials{Provider: hotzone.ProviderAPNs, Secret: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		KeyID: "KEY0000001", TeamID: "TEAM000001", Topic: topic, Environment: "production"}
}

// storeS is the store "s" of brandID the crash and cluster tests use: a
// 1 km circle around lower Manhattan.
func storeS(t *testing.T, brandID string) hotzone.Store {
	t.Helper()
	st := hotzone.Store{ID: "s", BrandID: brandID, Name: "S", Timezone: "UTC", Spec: hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: 40.7128, Lon: -74.006, RadiusM: 1000}}}
	var err error
	if st.Fence, err = st.Spec.Build(); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCrashDuplicatesBounded: SIGKILL in the middle of a 3,000-device
// send to the local fakes, half APNs and half FCM, with the defaults,
// then a restart on the same data dir: every device gets its push, and
// at most 200 get it twice. What can be sent twice is what was sent but
// not yet recorded, which the dispatcher keeps to what each lane's
// measured round trip needs (push.Paced, the in-flight limit) rather
// than --push-concurrency's ceiling of 512 a lane.
//
// The bound is a figure of the server as users run it, so the test runs
// without the race detector (scripts/test runs it on its own so): with
// it, every send and commit takes several times longer, and so many
// more are out at once.
func TestCrashDuplicatesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts real processes")
	}
	if raceDetector {
		t.Skip("measured without the race detector: scripts/test runs it so")
	}
	const devices = 3000
	apns, fcm := pushtest.NewAPNs(t), pushtest.NewFCM(t)
	dir := t.TempDir()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apns.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	adminKey, apnsTokens := seedCrashData(t, dir, secret, apns, devices)
	// Every other device moves to FCM.
	var fcmTokens []string
	db, err := bolt.Open(dir, bolt.Options{SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	br, err := db.Authenticate(ctx, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	var moved []hotzone.Device
	for i := 1; i < devices; i += 2 {
		id := fmt.Sprintf("dev-%05d", i)
		tok := "fcm-" + id
		fcmTokens = append(fcmTokens, tok)
		moved = append(moved, hotzone.Device{ID: id, Platform: hotzone.PlatformAndroid, OptIn: true, Timezone: "UTC", Provider: hotzone.ProviderFCM, Token: tok})
	}
	for _, d := range moved {
		d.BrandID = br.BrandID
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for i, tok := range apnsTokens {
		if i%2 == 0 {
			tokens = append(tokens, tok)
		}
	}
	tokens = append(tokens, fcmTokens...)
	received := func(tok string) int {
		if strings.HasPrefix(tok, "fcm-") {
			return fcm.Count(tok)
		}
		return apns.Count(tok)
	}
	total := func() int { return len(apns.Received()) + len(fcm.Received()) }

	env := []string{"HOTZONE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(secret), "HOTZONE_OPERATOR_KEY=hzo_crash-test"}
	args := []string{"--data", dir, "--apns-url", apns.URL(), "--push-ca-file", caFile, "--fcm-url", fcm.Endpoint()}
	c := startChild(t, env, args...)
	sa, _ := fcm.NewServiceAccount("crash-app")
	body, _ := json.Marshal(map[string]string{"service_account_json": string(sa)})
	if code, m := httpCall(t, "PUT", c.base+"/v1/push/fcm", adminKey, string(body)); code != 204 {
		t.Fatalf("PUT /v1/push/fcm = %d %v", code, m)
	}
	if code, m := httpCall(t, "POST", c.base+"/v1/stores/s/events", adminKey, `{"title":"Hot","body":"Now","duration_s":3600}`); code != 201 {
		t.Fatalf("start event = %d %v", code, m)
	}
	atKill := killMidSend(t, c, total, devices/4)
	startChild(t, env, args...) // the restart: it sends the rest
	twice := countTwice(t, tokens, received)
	twiceFCM := countTwice(t, fcmTokens, fcm.Count)
	t.Logf("SIGKILL after %d of %d pushes (half APNs, half FCM); %d devices received theirs twice (%d APNs, %d FCM)", atKill, devices, twice, twice-twiceFCM, twiceFCM)
	if twice > 200 {
		t.Errorf("%d devices pushed twice, more than 200", twice)
	}
}

// killMidSend SIGKILLs c in the middle of sending: once at least from
// pushes have arrived, at a moment when they are arriving (not in a
// pause between batches). It answers how many had arrived.
func killMidSend(t *testing.T, c *child, arrived func() int, from int) int {
	t.Helper()
	for i, prev := 0, 0; ; i++ {
		n := arrived()
		if n >= from && n > prev {
			break
		}
		if i > 6000 {
			t.Fatalf("only %d pushes arrived before the kill deadline", n)
		}
		prev = n
		time.Sleep(time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	return arrived()
}

// countTwice waits (bounded) until every token received its push, and
// answers how many received it twice; more than twice is an error.
func countTwice(t *testing.T, tokens []string, received func(string) int) int {
	t.Helper()
	for i := 0; ; i++ {
		missing := 0
		for _, tok := range tokens {
			if received(tok) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if i > 6000 {
			t.Fatalf("%d devices never got their push after the restart", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	twice := 0
	for _, tok := range tokens {
		switch n := received(tok); {
		case n == 2:
			twice++
		case n > 2:
			t.Errorf("token %s received %d pushes", tok, n)
		}
	}
	return twice
}
