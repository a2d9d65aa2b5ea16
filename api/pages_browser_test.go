package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hotzone/hotzone"
)

// The browser tests drive the real pages in Debian's headless Chromium
// against the real server on 127.0.0.1. They skip where Chromium is
// missing, except in CI, where they must run.

const chromiumPath = "/usr/bin/chromium"

// waitTimeout bounds every single wait; browserTimeout the whole test.
const (
	waitTimeout    = 20 * time.Second
	browserTimeout = 4 * time.Minute
)

type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	// allowed are console errors a test expects: the browser logs every
	// failed request (a 401 the page handles, a refused connection while
	// the server is down) and the page cannot stop it.
	allowed []*regexp.Regexp
}

// newBrowser starts Chromium for one test; extra options go to its
// allocator (chromedp.Env("TZ=…") to set its time zone, say).
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (apt-get install chromium); CI runs these tests", chromiumPath)
		}
		t.Fatalf("CI must run the browser tests: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication"),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelAll := context.WithTimeout(ctx, browserTimeout)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelAll()
		cancelTab()
		cancelAlloc()
	})
	messages := chromedp.Console(ctx) // starts the browser and subscribes
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, m)
				b.mu.Unlock()
			}
		}
	}()
	b.do("set viewport", chromedp.EmulateViewport(1024, 768))
	return b
}

// allow lets console errors matching re pass (from now on).
func (b *browser) allow(re string) {
	b.mu.Lock()
	b.allowed = append(b.allowed, regexp.MustCompile(re))
	b.mu.Unlock()
}

// checkConsole fails the test on any console error or exception that no
// allow rule expects.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		ok := false
		for _, re := range b.allowed {
			if !m.IsException() && re.MatchString(m.Text+" "+m.URL) {
				ok = true
			}
		}
		if !ok {
			b.t.Errorf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1)
		} else {
			b.t.Logf("expected console %s: %s", m.Type, m.Text)
		}
	}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do("navigate "+url, chromedp.Navigate(url))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// typeInto replaces an input's value by typing, as a person would.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	// chromedp.Clear resets the attribute, not what was typed.
	b.eval(fmt.Sprintf(`(() => { document.querySelector(%q).value = ''; return true })()`, sel))
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// setValue sets a long value at once and tells the page, as a paste would.
func (b *browser) setValue(sel, text string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true })()`, sel, text))
}

// eval evaluates a JavaScript expression, awaited if a promise, to a
// string (JSON for other values).
func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => { const v = await (`+expr+`); return typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v) })()`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("eval %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr until it is true; on timeout it reports what show
// evaluates to.
func (b *browser) waitJS(what, expr, show string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if b.eval(`!!(`+expr+`)`) == "true" {
			return
		}
		if time.Now().After(deadline) {
			b.fail("timed out waiting for %s; %s = %s", what, show, b.eval(show))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is an element's trimmed text, "" when it does not exist.
func textJS(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '<none>').trim()`, sel)
}

// visibleJS is true when an element exists, is not hidden, and has a box.
func visibleJS(sel string) string {
	return fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false;
		const r = el.getBoundingClientRect(); return !el.closest('[hidden]') && r.width > 0 && r.height > 0 })()`, sel)
}

func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("%s to read %q", sel, want), textJS(sel)+` === `+jsString(want), textJS(sel))
}

func (b *browser) waitTextContains(sel, want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("%s to contain %q", sel, want), textJS(sel)+`.includes(`+jsString(want)+`)`, textJS(sel))
}

func (b *browser) waitVisible(sel string) {
	b.t.Helper()
	b.waitJS(sel+" to be visible", visibleJS(sel), `document.body.innerText.slice(0, 400)`)
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// fail stops the test with a screenshot of the moment, for the reviewer.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if b.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		if buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			p := filepath.Join(screenshotDir(b.t), "FAILED-"+sanitize(b.t.Name())+".png")
			if os.WriteFile(p, buf, 0o644) == nil {
				msg += "\nscreenshot: " + p
			}
		}
		cancel()
	}
	b.t.Fatal(msg)
}

// screenshotDir is $HOTZONE_SCREENSHOTS, or screenshots/ at the repo
// root (git-ignored).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("HOTZONE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshots: %v", err)
	}
	return dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// viewport is a screen size the pages are shot and checked at.
type viewport struct {
	w, h  int64
	scale float64
}

var (
	phone  = viewport{390, 844, 2}
	tablet = viewport{1024, 768, 1}
	laptop = viewport{1280, 800, 1}
)

// screenshots saves the screen at phone and tablet size, checking at
// each that nothing overflows, and leaves the viewport at tablet size.
func (b *browser) screenshots(name string) { b.shoot(name, false, phone, tablet) }

// adminScreenshots is the admin page's: whole, at phone and laptop
// size; it leaves the viewport at laptop size.
func (b *browser) adminScreenshots(name string) { b.shoot(name, true, phone, laptop) }

func (b *browser) shoot(name string, full bool, sizes ...viewport) {
	b.t.Helper()
	dir := screenshotDir(b.t)
	// Let animations (a map zooming to fit, say) finish first.
	b.eval(`new Promise(r => setTimeout(r, 400))`)
	for _, size := range sizes {
		b.resize(size)
		b.checkFits(fmt.Sprintf("%s at %dx%d", name, size.w, size.h))
		ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
		shot := chromedp.CaptureScreenshot()
		if full {
			shot = chromedp.FullScreenshot(100) // 100: PNG
		}
		buf, err := chromedp.Run(ctx, shot)
		cancel()
		if err != nil {
			b.fail("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, size.w, size.h))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.t.Fatalf("screenshot: %v", err)
		}
	}
}

// resize sets the viewport and waits two frames, so layout and the map
// settle at the new size.
func (b *browser) resize(size viewport) {
	b.t.Helper()
	b.do("resize", chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(size.scale)))
	b.eval(`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 150))))`)
}

// overflowJS lists what does not fit on the page as it is shown: a page
// wider than the window; a box whose content is wider than the box (cut
// off, or hidden behind a sideways scroll, as a tab bar or a table can
// be); an element that sticks out of its parent; and text set not to
// wrap (a time) that wrapped all the same. The map's own panes, form
// controls' insides and text cut with a visible ellipsis are not
// overflow.
const overflowJS = `(() => {
	const bad = [];
	const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
		(el.classList.length ? '.' + [...el.classList].join('.') : '') +
		(el.textContent.trim() ? ' "' + el.textContent.trim().replace(/\s+/g, ' ').slice(0, 30) + '"' : '');
	const doc = document.documentElement;
	if (doc.scrollWidth > innerWidth + 1) bad.push('the page is ' + doc.scrollWidth + ' px wide in a ' + innerWidth + ' px window');
	for (const el of document.querySelectorAll('body *')) {
		if (el.closest('[hidden], .leaflet-container, svg, noscript, .visually-hidden')) continue;
		const cs = getComputedStyle(el);
		if (cs.display === 'none' || cs.visibility === 'hidden' || cs.position === 'fixed') continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) continue;
		const control = ['INPUT', 'TEXTAREA', 'SELECT', 'OPTION'].includes(el.tagName);
		if (!control && cs.overflowX !== 'visible' && cs.textOverflow !== 'ellipsis' && el.scrollWidth > el.clientWidth + 1) {
			bad.push(name(el) + ' holds ' + el.scrollWidth + ' px in ' + el.clientWidth + ' px');
		}
		const p = el.parentElement;
		if (p && p !== document.body && cs.position !== 'absolute') {
			const pr = p.getBoundingClientRect();
			if (r.right > pr.right + 1 || r.left < pr.left - 1) {
				bad.push(name(el) + ' sticks out of ' + name(p) + ' (' + Math.round(r.left) + '-' + Math.round(r.right) + ' in ' + Math.round(pr.left) + '-' + Math.round(pr.right) + ')');
			}
		}
		if (cs.whiteSpace === 'nowrap' && cs.display.startsWith('inline') && el.getClientRects().length > 1) {
			bad.push(name(el) + ' wraps onto ' + el.getClientRects().length + ' lines');
		}
	}
	return bad.slice(0, 20).join('\n');
})()`

// checkFits fails the test when anything on the page does not fit.
func (b *browser) checkFits(what string) {
	b.t.Helper()
	if bad := b.eval(overflowJS); bad != "" {
		b.t.Errorf("%s: does not fit:\n%s", what, bad)
	}
}

// liveServer serves the API on 127.0.0.1 and can go down and come back
// on the same port, which is what a server restart looks like to a
// browser.
type liveServer struct {
	t    *testing.T
	h    http.Handler
	addr string
	mu   sync.Mutex
	ts   *httptest.Server
}

func startLiveServer(t *testing.T, h http.Handler) *liveServer {
	t.Helper()
	ts := httptest.NewServer(h)
	ls := &liveServer{t: t, h: h, addr: ts.Listener.Addr().String(), ts: ts}
	t.Cleanup(ls.down)
	return ls
}

func (l *liveServer) URL() string { return "http://" + l.addr }

// down stops listening and cuts every connection, streams included.
func (l *liveServer) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ts == nil {
		return
	}
	_ = l.ts.Listener.Close()
	l.ts.CloseClientConnections()
	l.ts.Close()
	l.ts = nil
}

// up listens again on the same address.
func (l *liveServer) up() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		ln  net.Listener
		err error
	)
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", l.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		l.t.Fatalf("listen again on %s: %v", l.addr, err)
	}
	l.ts = &httptest.Server{Listener: ln, Config: &http.Server{Handler: l.h}}
	l.ts.Start()
}

// cut drops the open connections while the server keeps listening.
func (l *liveServer) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ts.CloseClientConnections()
}

// tabletFixture is a brand with one store, a manager key, a policy that
// never holds a notification back, and devices of the brand's app.
type tabletFixture struct {
	brand      brandKeys
	storeID    string
	managerKey string
	tabletURL  string
}

// Main St's fence: 500 m around this point.
const (
	mainLat = 40.7128
	mainLon = -74.0060
)

func newTabletFixture(e *env) tabletFixture {
	e.t.Helper()
	f := tabletFixture{brand: e.brand("Krispy Donuts"), storeID: "main-st"}
	// No quiet hours or intervals: the counts must not depend on when
	// the test runs.
	e.uncapped(f.brand.AdminKey, nil)
	e.must(201, "PUT", "/v1/stores/main-st", f.brand.AdminKey, circleStore("Main St", mainLat, mainLon, 500))
	f.managerKey, f.tabletURL = e.managerKey(f.brand.AdminKey, "main-st")
	return f
}

func (e *env) managerKey(admin, storeID string) (key, tabletURL string) {
	e.t.Helper()
	var mk struct {
		ManagerKey string `json:"manager_key"`
		TabletURL  string `json:"tablet_url"`
	}
	e.must(201, "POST", "/v1/stores/"+storeID+"/manager-keys", admin, map[string]any{"label": "front counter"}).decode(e.t, &mk)
	return mk.ManagerKey, mk.TabletURL
}

// arrive registers a device and pings it at the store.
func (e *env) arrive(app, id string, inside bool) {
	e.t.Helper()
	e.device(app, id)
	lat := mainLat + 0.001 // about 110 m north
	if !inside {
		lat = mainLat + 0.05 // about 5.5 km north
	}
	e.must(200, "POST", "/v1/pings", app, ping(id, lat, mainLon))
}

// smallTargets lists the visible controls smaller than 48×48 CSS px.
const smallTargetsJS = `(() => {
	const bad = [];
	for (const el of document.querySelectorAll('button, input:not([type=radio]), textarea, select, a[href], .segmented label')) {
		const r = el.getBoundingClientRect();
		if (el.closest('[hidden]') || r.width === 0) continue;
		if (r.width < 48 || r.height < 48) bad.push((el.id || el.textContent.trim() || el.tagName) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
	}
	return bad.join(', ');
})()`

func TestTabletPage(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	e.arrive(f.brand.AppKey, "early-bird", true) // in the fence before the event starts

	b.navigate(ls.URL() + f.tabletURL)
	b.waitText("#store-name", "Main St")
	b.waitText("#conn", "Connected")
	if href := b.eval(`location.href`); strings.Contains(href, "key") {
		t.Errorf("the key is still in the address bar: %s", href)
	}
	if got := b.eval(`localStorage.getItem('hotzone.tablet.key')`); got != f.managerKey {
		t.Errorf("stored key = %q, want the manager key", got)
	}
	if got := b.eval(`document.getElementById('ev-title').value`); got != "Hot Now" {
		t.Errorf("preset title = %q, want Hot Now", got)
	}
	if got := b.eval(`document.getElementById('ev-body').value`); got != "Fresh batch at Main St, right now" {
		t.Errorf("preset body = %q", got)
	}
	for _, size := range [][2]int64{{1024, 768}, {390, 844}} {
		b.do("resize", chromedp.EmulateViewport(size[0], size[1]))
		if bad := b.eval(smallTargetsJS); bad != "" {
			t.Errorf("touch targets under 48 px at %dx%d: %s", size[0], size[1], bad)
		}
	}
	b.screenshots("tablet-start")

	b.typeInto("#ev-title", "Glazed are hot")
	b.click(`label[for="dur-3600"]`)
	b.click("#start")
	b.waitVisible("#live")
	b.waitText("#live-title", "Glazed are hot")
	var live eventJSON
	e.must(200, "GET", "/v1/stores/main-st/events/live", f.brand.AdminKey, nil).decode(t, &live)
	if live.Title != "Glazed are hot" || live.EndsAt.Sub(live.StartsAt) != time.Hour {
		t.Errorf("started event = %q for %v, want the edited title for 1 h", live.Title, live.EndsAt.Sub(live.StartsAt))
	}
	b.waitText("#c-in", "1")

	// Devices ping into the fence while the page watches.
	e.arrive(f.brand.AppKey, "phone-a", true)
	e.arrive(f.brand.AppKey, "phone-b", true)
	e.arrive(f.brand.AppKey, "far-away", false)
	b.waitText("#c-in", "3")
	b.waitText("#c-sent", "3")
	b.waitText("#c-queued", "0")
	if cd := b.eval(textJS("#countdown")); !regexp.MustCompile(`^(1:00:00|59:[0-5]\d)$`).MatchString(cd) {
		t.Errorf("countdown = %q, want about an hour", cd)
	}
	if bad := b.eval(smallTargetsJS); bad != "" {
		t.Errorf("touch targets under 48 px while live: %s", bad)
	}
	b.screenshots("tablet-live")

	// End now asks once, in the page.
	b.click("#end")
	b.waitVisible("#end-confirm")
	b.screenshots("tablet-end-confirm")
	e.must(200, "GET", "/v1/stores/main-st/events/live", f.brand.AdminKey, nil) // still live
	b.click("#end-yes")
	b.waitVisible("#idle")
	b.waitTextContains("#ended-summary", "3 devices in range")
	e.must(404, "GET", "/v1/stores/main-st/events/live", f.brand.AdminKey, nil)
	b.screenshots("tablet-ended")

	// The manager's last title and duration are remembered.
	b.navigate(ls.URL() + "/tablet")
	b.waitText("#store-name", "Main St")
	if got := b.eval(`document.getElementById('ev-title').value + ' ' + document.querySelector('input[name=duration]:checked').value`); got != "Glazed are hot 3600" {
		t.Errorf("remembered preset = %q, want the last title and 3600", got)
	}
	b.checkConsole()
}

// TestTabletEndsInStoreZone: the end time is the store's wall clock,
// whatever zone the tablet itself is set to.
func TestTabletEndsInStoreZone(t *testing.T) {
	b := newBrowser(t, chromedp.Env("TZ=Asia/Tokyo"))
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e) // Main St is in America/New_York
	var ev eventJSON
	e.must(201, "POST", "/v1/stores/main-st/events", f.brand.AdminKey, map[string]any{"title": "Hot Now", "body": "Fresh", "duration_s": 5400}).decode(t, &ev)

	b.navigate(ls.URL() + f.tabletURL)
	if zone := b.eval(`Intl.DateTimeFormat().resolvedOptions().timeZone`); zone != "Asia/Tokyo" {
		t.Fatalf("the browser's zone is %s, want Asia/Tokyo for this test", zone)
	}
	b.waitVisible("#live")
	b.waitTextContains("#ends-at", "Ends at")
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	got := b.eval(textJS("#ends-at"))
	end := ev.EndsAt.In(ny)
	// The page's locale decides 12 or 24 hours; either way the store's
	// hour and minute, never Tokyo's (13 or 14 hours ahead).
	h12 := (end.Hour()+11)%12 + 1
	want := regexp.MustCompile(fmt.Sprintf(`^Ends at (0?%d|%02d):%02d\b`, h12, end.Hour(), end.Minute()))
	if !want.MatchString(got) {
		t.Errorf("#ends-at = %q, want %s in New York (%s)", got, end.Format("15:04"), want)
	}
	b.checkConsole()
}

func TestTabletReconnects(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	e.arrive(f.brand.AppKey, "phone-1", true)
	// Started elsewhere (the admin): the tablet shows it from /v1/me.
	e.must(201, "POST", "/v1/stores/main-st/events", f.brand.AdminKey, map[string]any{"title": "Hot Now", "body": "Fresh", "duration_s": 1800})

	b.navigate(ls.URL() + f.tabletURL)
	b.waitVisible("#live")
	b.waitText("#c-in", "1")
	b.waitText("#conn", "Connected")

	// The server goes away: refused connections are expected now.
	b.allow(`ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_CONNECTION_CLOSED|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to fetch`)
	ls.down()
	b.waitJS("the reconnecting state", `document.getElementById('conn').dataset.state === 'reconnecting'`, textJS("#conn"))
	b.waitTextContains("#conn", "reconnecting")
	b.screenshots("tablet-reconnecting")
	e.arrive(f.brand.AppKey, "phone-2", true) // while the tablet cannot see
	ls.up()
	b.waitText("#conn", "Connected")
	b.waitText("#c-in", "2")

	// A cut connection with the server still up recovers as well.
	ls.cut()
	e.arrive(f.brand.AppKey, "phone-3", true)
	b.waitText("#c-in", "3")
	b.waitText("#conn", "Connected")
	e.arrive(f.brand.AppKey, "phone-4", true) // and the new stream is live
	b.waitText("#c-in", "4")
	b.checkConsole()
}

func TestTabletRevokedKey(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)

	b.navigate(ls.URL() + f.tabletURL)
	b.waitText("#conn", "Connected")

	var keys page[managerKeyJSON]
	e.must(200, "GET", "/v1/stores/main-st/manager-keys", f.brand.AdminKey, nil).decode(t, &keys)
	e.must(204, "DELETE", "/v1/manager-keys/"+keys.Items[0].ID, f.brand.AdminKey, nil)
	// The open stream does not end by itself; the next connection meets
	// the revoked key.
	b.allow(`status of 401|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING`)
	ls.cut()
	b.waitVisible("#signin")
	b.waitText("#signin-msg", "This tablet's key was revoked — ask your brand admin for a new link.")
	if got := b.eval(`localStorage.getItem('hotzone.tablet.key')`); got != "null" {
		t.Errorf("revoked key still stored: %q", got)
	}
	b.screenshots("tablet-revoked")

	// A new key signs the tablet in again through the form.
	key, _ := e.managerKey(f.brand.AdminKey, "main-st")
	b.typeInto("#signin-key", key)
	b.click("#signin-form button[type=submit]")
	b.waitText("#store-name", "Main St")
	b.waitText("#conn", "Connected")
	b.checkConsole()
}

func TestTabletStartConflict(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	// Hold the live stream back, so the page cannot learn of the other
	// event before it tries to start its own.
	held := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events/live/stream") {
			<-r.Context().Done()
			return
		}
		e.srv.ServeHTTP(w, r)
	})
	ls := startLiveServer(t, held)
	f := newTabletFixture(e)

	b.navigate(ls.URL() + f.tabletURL)
	b.waitVisible("#idle")
	e.must(201, "POST", "/v1/stores/main-st/events", f.brand.AdminKey, map[string]any{"title": "Started by the admin", "body": "Fresh"})
	b.allow(`status of 409`)
	b.click("#start")
	b.waitVisible("#live")
	b.waitText("#live-title", "Started by the admin")
	b.waitTextContains("#live-note", "already live")
	b.checkConsole()
}

// TestAdminKeyLink: the link `hotzone serve --demo` prints,
// /admin#key=hza_…, signs the page in as /tablet#key=… does and leaves no
// key in the address bar; the server's bare address leads there too,
// fragment and all.
func TestAdminKeyLink(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	br := e.brand("Krispy Donuts")
	// The tests have no network: no tile layer.
	b.navigate(ls.URL() + "/admin")
	b.waitVisible("#view-signin")
	b.eval(`(localStorage.setItem('hotzone.admin.tileURL', ''), true)`)

	b.navigate(ls.URL() + "/#key=" + br.AdminKey)
	b.waitText("#brand-name", "Krispy Donuts")
	b.waitVisible("#view-stores")
	if href := b.eval(`location.href`); href != ls.URL()+"/admin" {
		t.Errorf("address bar = %s, want %s/admin without the key", href, ls.URL())
	}
	if got := b.eval(`localStorage.getItem('hotzone.admin.key')`); got != br.AdminKey {
		t.Errorf("stored key = %q, want the admin key", got)
	}
	b.click("#signout")
	b.waitVisible("#view-signin")

	// A tablet's key in the link is refused, with a pointer to /tablet.
	e.must(201, "PUT", "/v1/stores/main-st", br.AdminKey, circleStore("Main St", mainLat, mainLon, 500))
	mk, _ := e.managerKey(br.AdminKey, "main-st")
	b.navigate(ls.URL() + "/admin#key=" + mk)
	b.waitTextContains("#signin-msg", "belongs on the store tablet page")
	if got := b.eval(`localStorage.getItem('hotzone.admin.key') + ' ' + location.hash`); got != "null " {
		t.Errorf("after a manager key link: stored key and hash = %q, want neither", got)
	}
	b.checkConsole()
}

func TestAdminPage(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	admin := f.brand.AdminKey
	e.must(201, "PUT", "/v1/stores/uptown", admin, map[string]any{"name": "Uptown <b>Bakery</b>", "tags": []string{"downtown"},
		"fence": map[string]any{"polygon": map[string]any{"type": "Polygon", "coordinates": [][][]float64{
			{{-73.99, 40.72}, {-73.98, 40.72}, {-73.98, 40.73}, {-73.99, 40.73}, {-73.99, 40.72}}}}}})
	e.arrive(f.brand.AppKey, "phone-1", true)
	e.must(201, "POST", "/v1/stores/main-st/events", admin, map[string]any{"title": "Hot Now", "body": "Fresh"})

	b.signInAdmin(ls.URL(), admin)
	b.waitVisible("#map")
	b.waitJS("main-st listed as live", `document.querySelector('.store-item[data-id="main-st"] .badge-live') !== null`, textJS("#store-list"))
	// Server strings are text, never markup.
	b.waitTextContains(`.store-item[data-id="uptown"]`, "Uptown <b>Bakery</b>")
	if got := b.eval(`document.querySelectorAll('#store-list b').length`); got != "0" {
		t.Errorf("a store name became markup: %s <b> elements", got)
	}
	b.waitJS("fences on the map", `document.querySelectorAll('.leaflet-overlay-pane canvas').length > 0`, `document.querySelector('.leaflet-overlay-pane')?.innerHTML.slice(0, 200)`)
	if got := b.eval(`document.querySelectorAll('.leaflet-tile').length`); got != "0" {
		t.Errorf("%s map tiles requested with the tile URL set empty", got)
	}
	// Search filters the list in the page; the tag filter asks the server.
	b.typeInto("#store-search", "uptown")
	b.waitJS("search to narrow the list", `document.querySelectorAll('#store-list .store-item').length === 1`, textJS("#store-count"))
	b.typeInto("#store-search", "")
	b.typeInto("#tag-filter", "downtown")
	b.click("#tag-form button[type=submit]")
	b.waitTextContains("#store-count", "1 of 1 stores tagged")
	b.typeInto("#tag-filter", "")
	b.click("#tag-form button[type=submit]")
	b.waitTextContains("#store-count", "2 of 2 stores")
	b.adminScreenshots("admin-stores")

	// A circle store placed by clicking the map.
	b.click("#new-store")
	b.waitVisible("#editor")
	b.typeInto("#f-id", "corner")
	b.typeInto("#f-name", "Corner Cafe")
	b.typeInto("#f-tags", "drive-thru, late")
	b.click("#map")
	b.waitJS("the centre from the click", `document.getElementById('f-lat').value !== ''`, `document.getElementById('f-lat').value`)
	b.typeInto("#f-radius", "300")
	b.typeInto("#f-visit", "40")
	b.waitJS("the dashed circle", `document.querySelector('.leaflet-marker-icon') !== null`, `''`)
	b.click("#save-store")
	b.waitTextContains("#flash", "Saved Corner Cafe")
	var corner storeJSON
	e.must(200, "GET", "/v1/stores/corner", admin, nil).decode(t, &corner)
	lat, lon := b.eval(`document.getElementById('f-lat').value`), b.eval(`document.getElementById('f-lon').value`)
	if v := corner.Visit; v == nil || v.Circle == nil || v.Circle.RadiusM != 40 || v.Circle.Lat != corner.Fence.Circle.Lat {
		t.Errorf("saved walk-in area = %+v, want 40 m around the fence's centre", v)
	}
	if c := corner.Fence.Circle; c == nil || c.RadiusM != 300 || fmt.Sprint(c.Lat) != lat || fmt.Sprint(c.Lon) != lon ||
		strings.Join(corner.Tags, ",") != "drive-thru,late" {
		t.Errorf("saved store = %+v %+v, want a 300 m circle at %s,%s tagged drive-thru,late", corner, corner.Fence.Circle, lat, lon)
	}
	var list page[storeJSON]
	e.must(200, "GET", "/v1/stores", admin, nil).decode(t, &list)
	if len(list.Items) != 3 {
		t.Errorf("GET /v1/stores has %d stores, want 3", len(list.Items))
	}

	// A tablet link for it, shown once, absolute, with a QR code.
	b.typeInto("#key-label", "front counter")
	b.click("#key-form button[type=submit]")
	prefix := ls.URL() + "/tablet#key=hzm_"
	b.waitJS("the tablet link", `document.getElementById('new-key-url').value.startsWith(`+jsString(prefix)+`)`, `document.getElementById('new-key-url').value`)
	b.waitJS("the QR code", `(document.querySelector('#qr svg path')?.getAttribute('d') || '').length > 500`, `document.getElementById('qr').childElementCount`)
	b.waitTextContains("#key-list", "front counter")
	url := b.eval(`document.getElementById('new-key-url').value`)
	var me struct {
		Kind  string    `json:"kind"`
		Store storeJSON `json:"store"`
	}
	e.must(200, "GET", "/v1/me", strings.TrimPrefix(url, ls.URL()+"/tablet#key="), nil).decode(t, &me)
	if me.Kind != "manager" || me.Store.ID != "corner" {
		t.Errorf("the link's key is %s of %q, want the manager of corner", me.Kind, me.Store.ID)
	}
	b.adminScreenshots("admin-store-editor")

	// Import a file with one bad feature: its error shows next to it.
	fc := `{"type": "FeatureCollection", "features": [
		{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.95, 40.70]}, "properties": {"id": "imp-a", "name": "Imported A", "radius_m": 150}},
		{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[-73.9, 40.7], [-73.8, 40.7], [-73.8, 40.8]]]}, "properties": {"id": "imp-b", "name": "Broken B"}},
		{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.96, 40.71]}, "properties": {"id": "imp-c", "name": "Imported C", "radius_m": 200}}]}`
	file := filepath.Join(t.TempDir(), "stores.geojson")
	if err := os.WriteFile(file, []byte(fc), 0o644); err != nil {
		t.Fatal(err)
	}
	b.click("#open-import")
	b.do("upload", chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{file}))
	b.waitJS("the file read", `document.getElementById('import-text').value.includes('Broken B')`, `document.getElementById('import-text').value.length`)
	b.allow(`status of 400`)
	b.click("#import-form button[type=submit]")
	b.waitVisible("#feature-1 .feat-errors")
	b.waitTextContains("#feature-1", "Broken B")
	b.waitTextContains("#feature-1 .feat-errors", "geometry")
	if got := b.eval(`document.querySelectorAll('#import-features .bad').length + ' ' + document.querySelectorAll('#import-features > li').length`); got != "1 3" {
		t.Errorf("import list: %s bad of all, want 1 3", got)
	}
	b.waitTextContains("#import-error", "nothing was imported")
	e.must(404, "GET", "/v1/stores/imp-a", admin, nil)
	b.adminScreenshots("admin-import-errors")

	// Events, and from one to its deliveries.
	b.click(`#tabs a[data-view="events"]`)
	b.waitTextContains("#events-rows", "main-st")
	b.adminScreenshots("admin-events")
	b.click(`#events-rows tr.is-live button`)
	b.waitTextContains("#deliveries-rows", "phone-1")
	if got := b.eval(`document.getElementById('dl-event').value`); got == "" {
		t.Error("deliveries not filtered by the event")
	}
	b.adminScreenshots("admin-deliveries")

	// Policy: a good value saves, a bad one is shown next to its field.
	b.click(`#tabs a[data-view="policy"]`)
	b.waitJS("the policy", `document.getElementById('p-daily-cap').value === '0'`, `document.getElementById('p-daily-cap').value`)
	if got := b.eval(`document.getElementById('p-holdout').value + ' ' + document.getElementById('p-retention').value`); got != "0 30" {
		t.Errorf("holdout and retention shown as %q, want the defaults 0 30", got)
	}
	b.typeInto("#p-daily-cap", "5")
	b.typeInto("#p-holdout", "10")
	b.typeInto("#p-retention", "90")
	b.click("#policy-form button[type=submit]")
	b.waitTextContains("#flash", "Policy saved")
	var pol struct {
		DailyCap      int `json:"daily_cap"`
		HoldoutPct    int `json:"holdout_pct"`
		RetentionDays int `json:"retention_days"`
	}
	e.must(200, "GET", "/v1/policy", admin, nil).decode(t, &pol)
	if pol.DailyCap != 5 || pol.HoldoutPct != 10 || pol.RetentionDays != 90 {
		t.Errorf("policy saved from the page: %+v, want daily_cap 5, holdout_pct 10, retention_days 90", pol)
	}
	b.typeInto("#p-daily-cap", "500")
	b.click("#policy-form button[type=submit]")
	b.waitVisible("#p-daily-cap-error")
	b.adminScreenshots("admin-policy")

	// Push credentials: saved, never shown back.
	b.click(`#tabs a[data-view="push"]`)
	b.waitTextContains("#apns-status", "not configured")
	b.setValue("#apns-key", testP8())
	b.typeInto("#apns-key-id", "ABC123DEFG")
	b.typeInto("#apns-team-id", "DEF123GHIJ")
	b.typeInto("#apns-topic", "com.example.app")
	b.click("#apns-form button[type=submit]")
	b.waitTextContains("#apns-status", "ABC123DEFG")
	if got := b.eval(`document.getElementById('apns-key').value + document.getElementById('apns-key-id').value`); got != "" {
		t.Errorf("inputs not cleared after save: %q", got)
	}
	if strings.Contains(b.eval(`document.body.innerText`), "PRIVATE KEY") {
		t.Error("the private key is shown on the page")
	}
	b.adminScreenshots("admin-push")

	b.click("#signout")
	b.waitVisible("#view-signin")
	if got := b.eval(`localStorage.getItem('hotzone.admin.key')`); got != "null" {
		t.Errorf("admin key kept after sign-out: %q", got)
	}
	b.checkConsole()
}

// TestTabletReport: the tablet offers the brand's saved template and
// audience, starts the event with them, shows taps as they come, and
// after the event "N visits, +X% vs held back" from its report; the
// admin page shows the report in the event's row.
func TestTabletReport(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	admin := f.brand.AdminKey
	e.must(200, "PATCH", "/v1/policy", admin, map[string]any{"holdout_pct": 50})
	e.must(201, "PUT", "/v1/templates/glazed", admin, map[string]any{"name": "Glazed are hot", "title": "Glazed are hot",
		"body": "Come in now", "duration_s": 3600, "url": "app://glazed", "localized": map[string]any{"de": map[string]any{"title": "Heiss", "body": "Jetzt"}}})
	e.must(201, "PUT", "/v1/audiences/app-users", admin, map[string]any{"name": "App users", "any": []string{"app"}})
	var ids []string
	for i := range 120 {
		id := fmt.Sprintf("phone-%03d", i)
		ids = append(ids, id)
		e.must(201, "PUT", "/v1/devices/"+id, f.brand.AppKey, map[string]any{"platform": "ios", "opt_in": true, "tags": []string{"app"},
			"push": map[string]any{"provider": "apns", "token": tokenFor(id)}})
		e.must(200, "POST", "/v1/pings", f.brand.AppKey, ping(id, mainLat+0.001, mainLon)) // 110 m north: in range, not in the store
	}
	e.arrive(f.brand.AppKey, "untagged", true)

	b.navigate(ls.URL() + f.tabletURL)
	b.waitText("#conn", "Connected")
	b.waitVisible("#template-field")
	b.waitVisible("#audience-field")
	b.setValue("#ev-template", "glazed")
	if got := b.eval(`document.getElementById('ev-title').value + '|' + document.querySelector('input[name=duration]:checked').value`); got != "Glazed are hot|3600" {
		t.Errorf("the template filled %q, want its title and 3600", got)
	}
	b.setValue("#ev-audience", "app-users")
	if bad := b.eval(smallTargetsJS); bad != "" {
		t.Errorf("touch targets under 48 px with choices: %s", bad)
	}
	b.screenshots("tablet-choices")
	b.click("#start")
	b.waitVisible("#live")
	var live struct {
		ID        string         `json:"id"`
		URL       *string        `json:"url"`
		Audience  map[string]any `json:"audience"`
		Localized map[string]any `json:"localized"`
	}
	e.must(200, "GET", "/v1/stores/main-st/events/live", admin, nil).decode(t, &live)
	if live.URL == nil || *live.URL != "app://glazed" || live.Localized["de"] == nil || fmt.Sprint(live.Audience["any"]) != "[app]" {
		t.Errorf("the event started from the template and audience: url %v, localized %v, audience %v", live.URL, live.Localized, live.Audience)
	}
	b.waitText("#c-in", "121")

	group := map[string]string{}
	for _, n := range e.eventLog(admin, live.ID) {
		group[n.DeviceID] = n.Status
		if n.Reason != nil {
			group[n.DeviceID] = *n.Reason
		}
	}
	var notified, held []string
	for _, id := range ids {
		if group[id] == hotzone.ReasonHoldout {
			held = append(held, id)
		} else {
			notified = append(notified, id)
		}
	}
	if len(notified) < 40 || len(held) < 40 {
		t.Fatalf("groups of %d and %d", len(notified), len(held))
	}
	// Three taps; visits: 30 notified and 6 held back walk in.
	var log struct {
		Items []logEntry `json:"items"`
	}
	e.must(200, "GET", "/v1/notifications?limit=1000&event_id="+live.ID, admin, nil).decode(t, &log)
	taps := 0
	for _, n := range log.Items {
		if n.DeviceID == notified[0] || n.DeviceID == notified[1] || n.DeviceID == notified[2] {
			e.must(204, "POST", "/v1/notifications/"+n.ID+"/open", f.brand.AppKey, map[string]any{"device_id": n.DeviceID})
			taps++
		}
	}
	b.waitText("#c-opened", fmt.Sprint(taps))
	for _, id := range append(append([]string{}, notified[:30]...), held[:6]...) {
		e.must(200, "POST", "/v1/pings", f.brand.AppKey, ping(id, mainLat, mainLon))
	}
	b.click("#end")
	b.click("#end-yes")
	b.waitVisible("#idle")
	r := e.report(admin, live.ID)
	if r.Visits != (hotzone.Pair{Notified: 30, HeldBack: 6}) || r.Lift == nil || r.Lift.Ratio == nil {
		t.Fatalf("report: %+v", r)
	}
	pct := int(math.Round((*r.Lift.Ratio - 1) * 100))
	b.waitTextContains("#ended-report", fmt.Sprintf("30 visits, +%d%% vs held back, 3 opened.", pct))
	b.screenshots("tablet-report")
	b.checkConsole()

	// The admin page: the report in the event's row.
	b.signInAdmin(ls.URL(), admin)
	b.click(`#tabs a[data-view="events"]`)
	b.waitTextContains("#events-rows", "Glazed are hot")
	b.click(`#events-rows .report-btn`)
	b.waitTextContains(`#events-rows .report`, "Visits within 2 h: 30 notified")
	b.waitTextContains(`#events-rows .report`, "95% interval")
	b.adminScreenshots("admin-report")
	b.checkConsole()
}

// TestAdminMessages: an admin saves a message template and an audience
// from the page, sees a refused tag next to its field, edits one and
// deletes the other; the API holds what the page did.
func TestAdminMessages(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	admin := f.brand.AdminKey
	b.signInAdmin(ls.URL(), admin)
	b.click(`#tabs a[data-view="messages"]`)
	b.waitVisible("#tpl-empty")

	b.typeInto("#t-id", "glazed")
	b.typeInto("#t-name", "Glazed are hot")
	b.typeInto("#t-title", "Glazed are hot")
	b.typeInto("#t-body", "Come in now")
	b.setValue("#t-duration", "3600")
	b.click("#tpl-form button[type=submit]")
	b.waitTextContains("#tpl-list", "Glazed are hot")
	var tpl struct {
		Title     string `json:"title"`
		DurationS *int   `json:"duration_s"`
	}
	e.must(200, "GET", "/v1/templates/glazed", admin, nil).decode(t, &tpl)
	if tpl.Title != "Glazed are hot" || tpl.DurationS == nil || *tpl.DurationS != 3600 {
		t.Errorf("template saved from the page: %+v", tpl)
	}

	b.typeInto("#a-id", "gold")
	b.typeInto("#a-name", "Gold members")
	b.typeInto("#a-all", "Loyalty:Gold")
	b.allow(`status of 400`) // the refused tag, on purpose
	b.click("#aud-form button[type=submit]")
	b.waitVisible("#a-all-error")
	b.typeInto("#a-all", "loyalty:gold")
	b.typeInto("#a-none", "staff")
	b.click("#aud-form button[type=submit]")
	b.waitTextContains("#aud-list", "all of loyalty:gold; none of staff")
	e.must(200, "GET", "/v1/audiences/gold", admin, nil)
	b.adminScreenshots("admin-messages")

	// Edit the template; delete the audience.
	b.click(`#tpl-list li[data-id="glazed"] button`)
	b.waitJS("the template in the form", `document.getElementById('t-body').value === 'Come in now'`, `document.getElementById('t-body').value`)
	b.typeInto("#t-body", "Fresh from the oven")
	b.click("#tpl-form button[type=submit]")
	b.waitTextContains("#tpl-list", "Fresh from the oven")
	b.click(`#aud-list li[data-id="gold"] button:last-child`)
	b.waitVisible("#aud-empty")
	e.must(404, "GET", "/v1/audiences/gold", admin, nil)
	b.checkConsole()
}

// signInAdmin opens the admin page at base and signs in with key, the
// fixture brand's ("Krispy Donuts"). The tests have no network: no tile
// layer, fences on a plain background.
func (b *browser) signInAdmin(base, key string) {
	b.t.Helper()
	b.navigate(base + "/admin")
	b.waitVisible("#view-signin")
	b.eval(`(localStorage.setItem('hotzone.admin.tileURL', ''), true)`)
	b.typeInto("#signin-key", key)
	b.click("#signin-form button[type=submit]")
	b.waitText("#brand-name", "Krispy Donuts")
}
