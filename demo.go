package hotzone

import _ "embed"

// DemoStores is the demo brand's stores: a GeoJSON FeatureCollection of
// donut shops around New York City, in the import format.
//
//go:embed testdata/demo-stores.geojson
var DemoStores []byte
