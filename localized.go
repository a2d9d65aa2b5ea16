package hotzone

import "strings"

// Message is a notification's text in one language.
type Message struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// ValidLanguageTag tells whether s is shaped like a BCP 47 tag
// ("de", "de-CH", "zh-Hant-TW", "es-419"): a 2–8 letter language, then
// subtags of 1–8 letters or digits, at most 35 characters in all.
func ValidLanguageTag(s string) bool {
	if len(s) == 0 || len(s) > 35 {
		return false
	}
	for i, part := range strings.Split(s, "-") {
		if len(part) == 0 || len(part) > 8 || (i == 0 && len(part) < 2) {
			return false
		}
		for _, c := range part {
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// ChooseVariant picks, for a device's locale, which of an event's
// localized texts it gets: the exact tag, else the tag of its language
// alone ("de-CH" falls back to "de"), else "" (the event's own title and
// body). Tags compare case-insensitively; a locale spelled with '_'
// ("de_CH", as some platforms report it) counts as '-'.
func ChooseVariant(localized map[string]Message, locale string) string {
	if len(localized) == 0 || locale == "" {
		return ""
	}
	locale = strings.ReplaceAll(locale, "_", "-")
	find := func(tag string) string {
		for k := range localized {
			if strings.EqualFold(k, tag) {
				return k
			}
		}
		return ""
	}
	if k := find(locale); k != "" {
		return k
	}
	if lang, _, ok := strings.Cut(locale, "-"); ok {
		return find(lang)
	}
	return ""
}

// Text is the title and body of a variant of the event ("" or one it
// does not have: its own).
func (ev *Event) Text(variant string) (title, body string) {
	if m, ok := ev.Localized[variant]; ok && variant != "" {
		return m.Title, m.Body
	}
	return ev.Title, ev.Body
}
