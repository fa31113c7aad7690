package phone

import "testing"

func TestNormalize(t *testing.T) {
	cases := []struct {
		in   string
		want string
		kind Kind
	}{
		{"13812345678", "13812345678", Mobile},
		{"+86 138 1234 5678", "13812345678", Mobile},
		{"+8613812345678", "13812345678", Mobile},
		{"0086-138-1234-5678", "13812345678", Mobile},
		{"8613812345678", "13812345678", Mobile},
		{"１３８１２３４５６７８", "13812345678", Mobile},
		{"0737-4221234", "07374221234", Landline},
		{"(0737) 4221234", "07374221234", Landline},
		{"010-12345678", "01012345678", Landline},
		{"+86 737 4221234", "07374221234", Landline},
		{"0086 737 4221234", "07374221234", Landline},
		{"12345", "12345", Service},
		{"12317", "12317", Service},
	}
	for _, c := range cases {
		got, kind, err := Normalize(c.in)
		if err != nil || got != c.want || kind != c.kind {
			t.Errorf("Normalize(%q) = %q, %q, %v; want %q, %q", c.in, got, kind, err, c.want, c.kind)
		}
	}
	for _, bad := range []string{"", "abc", "1234", "12812345678", "138123456789", "00737123", "138-1234-567x", "+86"} {
		if got, _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("13812345678"); got != "138****5678" {
		t.Errorf("got %q", got)
	}
	if got := Mask("07374221234"); got != "073****1234" {
		t.Errorf("got %q", got)
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("+86 138 1234 5678")
	f.Add("0737-4221234")
	f.Fuzz(func(t *testing.T, s string) {
		n, _, err := Normalize(s)
		if err != nil {
			return
		}
		// A normalised number normalises to itself.
		n2, _, err := Normalize(n)
		if err != nil || n2 != n {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", s, n, n, n2, err)
		}
	})
}
