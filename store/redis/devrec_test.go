package redis

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
)

// TestAppendDevice sets every field of a Device, by reflection so that a
// field added later is set too, and wants json.Marshal's bytes; then
// each field left zero in turn. What it writes, the hand path of
// decodeDevice reads back to json.Unmarshal's result.
func TestAppendDevice(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	var d hotzone.Device
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Second)))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"persona:commuter", "loyalty:gold"}))
		default:
			t.Fatalf("field %s of kind %s: teach this test and appendDevice", v.Type().Field(i).Name, f.Kind())
		}
	}
	check := func(d *hotzone.Device, plain bool) {
		t.Helper()
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got := appendDevice(nil, d)
		if string(got) != string(want) {
			t.Fatalf("appendDevice:\n got %s\nwant %s", got, want)
		}
		var fast, slow hotzone.Device
		if ok := fastDevice(string(got), &fast); ok != plain {
			t.Fatalf("hand path on %s: %v, want %v", got, ok, plain)
		}
		if err := json.Unmarshal(got, &slow); err != nil {
			t.Fatal(err)
		}
		if plain && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s:\nhand %+v\njson %+v", got, fast, slow)
		}
	}
	check(&d, true)
	for i := range v.NumField() {
		m := d
		reflect.ValueOf(&m).Elem().Field(i).SetZero()
		check(&m, true)
	}
	check(&hotzone.Device{}, true)
	check(&hotzone.Device{ID: "é", Tags: []string{`<"x">`}, CreatedAt: at.In(time.FixedZone("x", -3600))}, false)
}

// FuzzDecodeDevice: whatever the hand path reads, json.Unmarshal reads
// alike; and decodeDevice, falling back to it, agrees with it on every
// input, errors included.
func FuzzDecodeDevice(f *testing.F) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 123456789, time.UTC)
	f.Add(string(appendDevice(nil, &hotzone.Device{ID: "d-1", Platform: "ios", Provider: "apns", Token: "ab", TokenAt: at, OptIn: true,
		Timezone: "UTC", Locale: "fr-FR", Tags: []string{"a", "b"}, CreatedAt: at, UpdatedAt: at})))
	f.Add(`{"tags":[],"opt_in":false,"id":"x","tags":["y"]}`)
	f.Add(`{"tags":null,"opt_in":1,"ID":"c","locale":"\u00e9"}`)
	f.Add(`{"token_at":"2026-12-07T03:04:05+01:00","tags":["a",]}`)
	f.Fuzz(func(t *testing.T, s string) { readsAsJSON(t, s, fastDevice, decodeDevice) })
}
