package region

import "testing"

func TestCounts(t *testing.T) {
	var prov, pref, county, admin, town int
	for _, r := range All() {
		switch r.Level {
		case LevelProvince:
			prov++
		case LevelPrefecture:
			pref++
		case LevelCounty:
			county++
			if !r.StatisticalOnly {
				admin++
			}
		case LevelTownship:
			town++
		}
	}
	if prov != 1 || pref != 14 || county != 134 || admin != 122 || town != 2008 {
		t.Fatalf("got %d province, %d prefectures, %d counties (%d administrative), %d townships", prov, pref, county, admin, town)
	}
}

func TestLookups(t *testing.T) {
	r, ok := Lookup("430903")
	if !ok || r.Name != "赫山区" || r.ParentCode != "430900" {
		t.Fatalf("430903: %+v %v", r, ok)
	}
	if got := FullName("430903"); got != "益阳市赫山区" {
		t.Errorf("FullName = %q", got)
	}
	// A township of 赫山区 belongs to that county and to 益阳市.
	kids := Children("430903")
	if len(kids) == 0 || kids[0].Level != LevelTownship {
		t.Fatalf("no townships under 430903: %v", kids)
	}
	if c := County(kids[0].Code); c != "430903" {
		t.Errorf("County(%s) = %q", kids[0].Code, c)
	}
	if p := Prefecture(kids[0].Code); p != "430900" {
		t.Errorf("Prefecture(%s) = %q", kids[0].Code, p)
	}
	if c := County("430900"); c != "" {
		t.Errorf("County of a prefecture = %q, want empty", c)
	}
	if _, ok := Lookup("999999"); ok {
		t.Error("unknown code found")
	}
	if r, _ := Lookup("430102001"); r.Name != "文艺路街道" || r.Kind != "街道" {
		t.Errorf("township: %+v", r)
	}
}
