package hotzone

import "testing"

func TestChooseVariant(t *testing.T) {
	loc := map[string]Message{"de": {"Heiss", "Frisch"}, "nl-BE": {"Warm", "Vers"}, "zh-Hant-TW": {"熱", "新"}}
	for _, c := range []struct{ locale, want string }{
		{"de-CH", "de"},    // language fallback
		{"de", "de"},       // exact
		{"DE-at", "de"},    // case-insensitive
		{"de_CH", "de"},    // underscores as some platforms report them
		{"nl-BE", "nl-BE"}, // exact with a region
		{"nl", ""},         // no plain nl: the default, not nl-BE
		{"nl-NL", ""},      // another region: the default
		{"zh-Hant-TW", "zh-Hant-TW"},
		{"zh-Hant", ""}, // a prefix is not the language
		{"", ""},        // no locale
		{"xx-YY", ""},   // unknown
		{"-", ""},
	} {
		if got := ChooseVariant(loc, c.locale); got != c.want {
			t.Errorf("ChooseVariant(%q) = %q, want %q", c.locale, got, c.want)
		}
	}
	if got := ChooseVariant(nil, "de"); got != "" {
		t.Errorf("no variants: %q", got)
	}
	ev := Event{Title: "Hot", Body: "Now", Localized: loc}
	if ti, b := ev.Text("de"); ti != "Heiss" || b != "Frisch" {
		t.Errorf("Text(de) = %q %q", ti, b)
	}
	if ti, b := ev.Text(""); ti != "Hot" || b != "Now" {
		t.Errorf("Text(\"\") = %q %q", ti, b)
	}
	if ti, _ := ev.Text("fr"); ti != "Hot" {
		t.Errorf("Text(fr), a variant it does not have = %q, want the default", ti)
	}
}

func TestValidLanguageTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"de": true, "de-CH": true, "zh-Hant-TW": true, "es-419": true, "gsw": true,
		"": false, "d": false, "de_CH": false, "de-": false, "-de": false, "de--CH": false,
		"12": false, "de-CHCHCHCHC": false, "dé": false, "de CH": false,
	} {
		if got := ValidLanguageTag(tag); got != want {
			t.Errorf("ValidLanguageTag(%q) = %v, want %v", tag, got, want)
		}
	}
}

// FuzzChooseVariant: whatever the locale, the choice is "" or a key of
// the variants, and a valid tag is always chosen for itself.
func FuzzChooseVariant(f *testing.F) {
	for _, s := range []string{"de-CH", "de", "", "-", "_", "DE_at", "zh-Hant-TW", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, locale string) {
		loc := map[string]Message{"de": {}, "nl-BE": {}}
		got := ChooseVariant(loc, locale)
		if _, ok := loc[got]; got != "" && !ok {
			t.Fatalf("ChooseVariant(%q) = %q, not a variant", locale, got)
		}
		if ValidLanguageTag(locale) {
			if own := ChooseVariant(map[string]Message{locale: {}}, locale); own != locale {
				t.Fatalf("a tag %q was not chosen for itself: %q", locale, own)
			}
		}
	})
}
