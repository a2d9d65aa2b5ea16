package hotzone

import "slices"

// MaxDeviceTags is how many tags a device may carry.
const MaxDeviceTags = 20

// ValidTag tells whether s is a device tag: 1–64 characters of
// a-z 0-9 : _ - ("persona:commuter", "loyalty:gold").
func ValidTag(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == ':', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Audience picks devices by their tags: at least one of Any (when it
// names any), every one of All, none of None.
type Audience struct {
	Any  []string `json:"any"`
	All  []string `json:"all"`
	None []string `json:"none"`
}

// Admits tells whether a device with these tags is in the audience; a
// nil audience is everyone.
func (a *Audience) Admits(tags []string) bool {
	if a == nil {
		return true
	}
	if len(a.Any) > 0 && !slices.ContainsFunc(a.Any, func(t string) bool { return slices.Contains(tags, t) }) {
		return false
	}
	for _, t := range a.All {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	for _, t := range a.None {
		if slices.Contains(tags, t) {
			return false
		}
	}
	return true
}
