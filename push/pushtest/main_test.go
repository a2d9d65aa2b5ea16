package pushtest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain checks two things the package promises.
//
// No client in these tests reaches a host other than the fakes: the proxy
// variables point at a proxy that records and refuses everything. Go's
// ProxyFromEnvironment never proxies loopback addresses, so the fakes are
// reached directly, and any other destination (a Google host the
// firebase client might call, say) lands here. The variables are set
// before any client reads them.
//
// The fakes leave no goroutines behind once their tests have cleaned up.
func TestMain(m *testing.M) {
	var (
		mu      sync.Mutex
		reached []string
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.Host)
		mu.Unlock()
		http.Error(w, "pushtest: tests must not leave 127.0.0.1", http.StatusForbidden)
	}))
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, proxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy", "GOOGLE_APPLICATION_CREDENTIALS"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	proxy.Close()
	if len(reached) > 0 {
		fmt.Fprintf(os.Stderr, "pushtest: tests tried to reach other hosts: %v\n", reached)
		code = 1
	}
	if code == 0 {
		if g := leaked(5 * time.Second); len(g) > 0 {
			fmt.Fprintf(os.Stderr, "pushtest: %d goroutines left behind:\n\n%s\n", len(g), strings.Join(g, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leaked waits up to d for the goroutines of HTTP servers and clients to
// end, and returns the stacks of those that do not.
func leaked(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n")[1:] { // [0] is this one
			if strings.Contains(g, "net/http.") || strings.Contains(g, "x/net/http2.") || strings.Contains(g, "/push/pushtest.") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}
