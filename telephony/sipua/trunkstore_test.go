package sipua

import (
	"net/netip"
	"testing"
)

// The environment's trunk wins over a stored trunk of the same name; other stored trunks are added.
func TestMergeTrunks(t *testing.T) {
	env := []Trunk{{Name: "12345", Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}}}
	stored := []Trunk{{Name: "12345", Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "unicom", Networks: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")}}}
	got := MergeTrunks(env, stored)
	if len(got) != 2 || got[0].Networks[0].String() != "10.1.0.0/24" || got[1].Name != "unicom" {
		t.Fatalf("merged %+v", got)
	}
	if tr := matchTrunk(got, netip.MustParseAddr("192.0.2.7")); tr != nil {
		t.Fatalf("the overridden stored network still matches: %+v", tr)
	}
	if tr := matchTrunk(got, netip.MustParseAddr("10.8.0.9")); tr == nil || tr.Name != "unicom" {
		t.Fatalf("the stored trunk does not match: %+v", tr)
	}
}
