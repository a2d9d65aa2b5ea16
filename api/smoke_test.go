package api

import "testing"

func TestWalkthrough(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Krispy")
	r := e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.0060, 800))
	t.Logf("%s", r.Body)
	e.device(b.AppKey, "dev-1")
	r = e.must(200, "POST", "/v1/pings", b.AppKey, ping("dev-1", 40.713, -74.006))
	t.Logf("%s", r.Body)
	r = e.do("POST", "/v1/pings", b.AppKey, `{"device_id":"dev-1","LAT":1,"lon":2,"accuracy_m":1}`)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("POST", "/v1/pings", b.AppKey, `{"device_id":"dev-1","lat":1,"lat":1,"lon":2,"accuracy_m":1}`)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("POST", "/v1/pings", b.AppKey, `{"device_id":"dev-1","lat":null,"lon":2,"accuracy_m":1}`)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("POST", "/v1/pings", b.AppKey, `{"device_id":"dev-1","lat":"x","lon":2,"accuracy_m":1}`)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("POST", "/v1/pings/batch", b.AppKey, `{"pings":[{"device_id":"dev-1","lat":1,"lon":2,"accuracy_m":1},{"device_id":"dev-1","lat":1,"lon":2e9,"accuracy_m":1}, {"x":1}]}`)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("GET", "/v1/stores.geojson", b.AdminKey, nil)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("GET", "/v1/me", b.AdminKey, nil)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("POST", "/v1/me", b.AdminKey, nil)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("GET", "/v1/nothing", b.AdminKey, nil)
	t.Logf("%d %s", r.Code, r.Body)
	r = e.do("GET", "/v1/stores?limit=0", b.AdminKey, nil)
	t.Logf("%d %s", r.Code, r.Body)
}
