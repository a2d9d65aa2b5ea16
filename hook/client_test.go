package hook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// newServer starts h on 127.0.0.1 only, whatever httptest's defaults.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestClientRefusesPrivateAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, url := range []string{
		srv.URL,
		"http://localhost:" + strconv.Itoa(port) + "/", // a name, refused once resolved
	} {
		_, err := post(t, NewClient(ClientOptions{}), url)
		if !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("POST %s = %v, want %v", url, err, ErrPrivateAddress)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}

	resp, err := post(t, NewClient(ClientOptions{AllowPrivate: true}), srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s with AllowPrivate = %v, %v; want 200", srv.URL, resp, err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

// TestClientRefusesRebinding repoints a name at loopback after CheckHost
// passed it: the connect-time check still refuses it.
func TestClientRefusesRebinding(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	dns := newFakeDNS(t)
	dns.set("rebind.example.test", "93.184.215.14")
	u, err := CheckURL("http://rebind.example.test:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHost(context.Background(), u, false, dns.resolver()); err != nil {
		t.Fatalf("CheckHost(%s) while public = %v, want nil", u, err)
	}
	dns.set("rebind.example.test", "127.0.0.1")

	_, err = post(t, NewClient(ClientOptions{Resolver: dns.resolver()}), u.String())
	if !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("POST %s after rebinding = %v, want %v", u, err, ErrPrivateAddress)
	}
	// The name really does reach the server now: AllowPrivate gets through.
	resp, err := post(t, NewClient(ClientOptions{Resolver: dns.resolver(), AllowPrivate: true}), u.String())
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s with AllowPrivate = %v, %v; want 200", u, resp, err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
	})
	srv := newServer(t, mux)

	resp, err := post(t, NewClient(ClientOptions{AllowPrivate: true}), srv.URL+"/hook")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusTemporaryRedirect)
	}
	if followed.Load() {
		t.Errorf("redirect was followed")
	}
}

func TestClientHasNoProxy(t *testing.T) {
	c := NewClient(ClientOptions{})
	tr := c.Transport.(limitBody).rt.(*http.Transport)
	if tr.Proxy != nil {
		t.Errorf("Transport.Proxy is set; an environment proxy would bypass the address check")
	}
}

func TestClientLimitsResponseBody(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", len(r.URL.Query().Get("n"))))
	}))
	c := NewClient(ClientOptions{AllowPrivate: true, MaxResponseBytes: 10})
	tests := []struct {
		name    string
		n       int
		want    int
		wantErr error
	}{
		{"under", 9, 9, nil},
		{"exactly", 10, 10, nil},
		{"over", 11, 10, ErrResponseTooLarge},
		{"far over", 5000, 10, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := post(t, c, srv.URL+"/?n="+strings.Repeat("1", tt.n))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if len(b) != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadAll(%d-byte body) = %d bytes, %v; want %d, %v", tt.n, len(b), err, tt.want, tt.wantErr)
			}
		})
	}
}
