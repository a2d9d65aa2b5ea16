package api

import (
	"fmt"
	"strings"
	"testing"
)

// TestAdminPageSizes shows the admin page the way people meet it, on a
// laptop (1280×800) and a phone (390×844), with long names, a live and
// an ended event and a delivery log that holds back as well as sends:
// every section fits its container at both sizes (adminScreenshots
// checks, and saves what it saw to screenshots/), every section's tab
// is on screen, the log speaks words and keeps each time on one line,
// and a saved store's id looks as read-only as it is.
func TestAdminPageSizes(t *testing.T) {
	b := newBrowser(t)
	e := newEnv(t, Options{})
	ls := startLiveServer(t, e.srv)
	f := newTabletFixture(e)
	admin, app := f.brand.AdminKey, f.brand.AppKey
	longID := "the-" + strings.Repeat("very-", 8) + "long-store-id-uptown" // 64 characters
	e.must(201, "PUT", "/v1/stores/"+longID, admin, circleStore("Uptown "+strings.Repeat("Bakery and Doughnut Emporium ", 3), mainLat+0.05, mainLon, 300))
	e.arrive(app, "phone-1", true)
	e.arrive(app, "phone-"+strings.Repeat("a1b2c3d4", 15), true) // a 126-character device id
	for _, d := range []struct {
		id   string
		body map[string]any
	}{
		{"opted-out", map[string]any{"platform": "ios", "opt_in": false, "push": map[string]any{"provider": "apns", "token": tokenFor("opted-out")}}},
		{"no-token", map[string]any{"platform": "android", "opt_in": true}},
	} {
		e.must(201, "PUT", "/v1/devices/"+d.id, app, d.body)
		e.must(200, "POST", "/v1/pings", app, ping(d.id, mainLat+0.001, mainLon))
	}
	// An ended event elsewhere, then a live one with a long text.
	e.must(201, "POST", "/v1/stores/"+longID+"/events", admin, map[string]any{"title": "Glazed", "body": "Fresh"})
	e.must(200, "DELETE", "/v1/stores/"+longID+"/events/live", admin, nil)
	e.must(201, "POST", "/v1/stores/main-st/events", admin, map[string]any{
		"title": "Hot Now: " + strings.Repeat("Original Glazed ", 5),
		"body":  "Fresh " + strings.Repeat("Original Glazed and Chocolate Iced with Sprinkles, ", 6) + "https://example.com/" + strings.Repeat("menu", 20),
	})

	b.navigate(ls.URL() + "/admin")
	b.waitVisible("#view-signin")
	b.eval(`(localStorage.setItem('hotzone.admin.tileURL', ''), true)`)
	b.adminScreenshots("admin-sizes-signin")
	b.navigate(ls.URL() + "/admin#key=" + admin)
	b.waitText("#brand-name", "Krispy Donuts")

	// Every tab on screen, at both sizes.
	for _, size := range []viewport{phone, laptop} {
		b.resize(size)
		if off := b.eval(`[...document.querySelectorAll('#tabs a')].filter(a => { const r = a.getBoundingClientRect();
			return r.width === 0 || r.left < 0 || r.right > innerWidth || r.bottom > document.querySelector('.topbar').getBoundingClientRect().bottom }).map(a => a.textContent).join(', ')`); off != "" {
			t.Errorf("at %dx%d these tabs are not on screen: %s", size.w, size.h, off)
		}
	}

	// Stores, and a saved store in the editor: its id is read-only and
	// looks it.
	b.waitJS("the stores", `document.querySelectorAll('#store-list .store-item').length === 2`, textJS("#store-count"))
	b.adminScreenshots("admin-sizes-stores")
	b.click(`.store-item[data-id="main-st"]`)
	b.waitVisible("#editor")
	b.waitJS("main-st in the editor", `document.getElementById('f-id').value === 'main-st'`, `document.getElementById('f-id').value`)
	if got := b.eval(`(() => { const id = document.getElementById('f-id'), name = document.getElementById('f-name');
		const a = getComputedStyle(id), n = getComputedStyle(name);
		return [id.readOnly, a.backgroundColor !== n.backgroundColor, a.borderStyle !== n.borderStyle].join(' ') })()`); got != "true true true" {
		t.Errorf("saved store's id field: read-only, background and border unlike an editable field's = %s, want true true true", got)
	}
	b.waitVisible("#f-id-fixed")
	b.adminScreenshots("admin-sizes-store-editor")
	b.click("#new-store")
	b.waitJS("a new store's id is editable", `!document.getElementById('f-id').readOnly`, `document.getElementById('f-id').readOnly`)
	if got := b.eval(visibleJS("#f-id-fixed")); got != "false" {
		t.Error("a new store's id says it cannot change")
	}

	// Events: the live one and the ended one.
	b.click(`#tabs a[data-view="events"]`)
	b.waitJS("two events", `document.querySelectorAll('#events-rows tr').length === 2`, textJS("#events-rows"))
	b.adminScreenshots("admin-sizes-events")
	checkTimesOnOneLine(b, "#events-rows")

	// The delivery log in words.
	b.click(`#tabs a[data-view="deliveries"]`)
	b.waitJS("four deliveries", `document.querySelectorAll('#deliveries-rows tr').length === 4`, textJS("#deliveries-rows"))
	b.waitTextContains("#deliveries-rows", "Dry run")
	for _, size := range []viewport{laptop, phone} {
		b.resize(size)
		text := b.eval(`document.getElementById('deliveries-rows').innerText`)
		for _, want := range []string{"Dry run", "Suppressed", "Opted out", "No push token", "APNs"} {
			if !strings.Contains(text, want) {
				t.Errorf("at %dx%d the delivery log does not say %q:\n%s", size.w, size.h, want, text)
			}
		}
		for _, code := range []string{"dry_run", "opted_out", "no_token", "suppressed"} {
			if strings.Contains(text, code) {
				t.Errorf("at %dx%d the delivery log shows the code %q instead of words:\n%s", size.w, size.h, code, text)
			}
		}
		checkTimesOnOneLine(b, "#deliveries-rows")
	}
	b.adminScreenshots("admin-sizes-deliveries")
	// The filter sends the code.
	b.setValue("#dl-status", "suppressed")
	b.click("#deliveries-filter button[type=submit]")
	b.waitJS("two held back", `document.querySelectorAll('#deliveries-rows tr').length === 2`, textJS("#deliveries-rows"))

	for _, view := range []string{"policy", "push", "settings"} {
		b.click(fmt.Sprintf(`#tabs a[data-view=%q]`, view))
		b.waitVisible("#view-" + view)
		b.adminScreenshots("admin-sizes-" + view)
	}
	b.checkConsole()
}

// checkTimesOnOneLine fails the test when a time in the rows wrapped.
func checkTimesOnOneLine(b *browser, rows string) {
	b.t.Helper()
	if got := b.eval(fmt.Sprintf(`(() => { const ts = [...document.querySelectorAll('%s time')];
		return ts.length + ' ' + ts.filter(t => t.getClientRects().length !== 1).map(t => t.textContent).join(' | ') })()`, rows)); !strings.HasSuffix(got, " ") || got == "0 " {
		b.t.Errorf("times in %s: %q, want some, each on one line", rows, got)
	}
}
