package hotzone

import "testing"

func TestAudienceAdmits(t *testing.T) {
	commuterGold := []string{"persona:commuter", "loyalty:gold"}
	for _, c := range []struct {
		name string
		a    *Audience
		tags []string
		want bool
	}{
		{"no audience: everyone", nil, nil, true},
		{"any, one matches", &Audience{Any: []string{"persona:student", "persona:commuter"}}, commuterGold, true},
		{"any, none matches", &Audience{Any: []string{"persona:student"}}, commuterGold, false},
		{"any, no tags", &Audience{Any: []string{"persona:student"}}, nil, false},
		{"all present", &Audience{All: []string{"loyalty:gold", "persona:commuter"}}, commuterGold, true},
		{"all, one missing", &Audience{All: []string{"loyalty:gold", "city:zurich"}}, commuterGold, false},
		{"none, clear", &Audience{None: []string{"optout:promos"}}, commuterGold, true},
		{"none, hit", &Audience{None: []string{"loyalty:gold"}}, commuterGold, false},
		{"none, no tags", &Audience{None: []string{"loyalty:gold"}}, nil, true},
		{"all three", &Audience{Any: []string{"persona:commuter"}, All: []string{"loyalty:gold"}, None: []string{"staff"}}, commuterGold, true},
		{"all three, excluded", &Audience{Any: []string{"persona:commuter"}, All: []string{"loyalty:gold"}, None: []string{"staff"}}, append([]string{"staff"}, commuterGold...), false},
	} {
		if got := c.a.Admits(c.tags); got != c.want {
			t.Errorf("%s: Admits(%v) = %v, want %v", c.name, c.tags, got, c.want)
		}
	}
}

func FuzzValidTag(f *testing.F) {
	for _, s := range []string{"persona:commuter", "", "A", "a b", "é", "x-_:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTag(s) {
			return
		}
		if len(s) < 1 || len(s) > 64 {
			t.Fatalf("ValidTag(%q) with %d bytes", s, len(s))
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '-') {
				t.Fatalf("ValidTag(%q) with %q", s, c)
			}
		}
		if !(&Audience{Any: []string{s}}).Admits([]string{s}) || (&Audience{None: []string{s}}).Admits([]string{s}) {
			t.Fatalf("an audience of %q does not treat it as itself", s)
		}
	})
}
