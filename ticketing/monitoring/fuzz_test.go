package monitoring

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseImport: whatever the file, parsing does not panic, and every data row is accounted for exactly once,
// accepted or rejected with at least one reason.
func FuzzParseImport(f *testing.F) {
	f.Add([]byte(DemoCSV(0, 3)))
	f.Add([]byte("household_number,township_code,monitoring_type,member_name,relation,id_number\nA,430903001,边缘易致贫户,张三,户主,11010519491231002X\n"))
	f.Add([]byte("household_number,township_code,monitoring_type,member_name,relation,id_number\n\"A,1\n,,,,,\n"))
	f.Add([]byte("\xef\xbb\xbf\xd0\xd5\xc3\xfb\n"))
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, rep, err := parseImport(bytes.NewReader(data), now)
		if err != nil {
			return
		}
		if rep.Rows != rep.RowsAccepted+len(rep.Rejected) {
			t.Fatalf("rows %d != accepted %d + rejected %d", rep.Rows, rep.RowsAccepted, len(rep.Rejected))
		}
		lines := 0
		for _, h := range hs {
			lines += h.lines
			if _, err := validate(h.in, now, false); err != nil {
				t.Fatalf("accepted household %s does not validate: %v", h.in.Number, err)
			}
		}
		if lines != rep.RowsAccepted {
			t.Fatalf("accepted households hold %d rows, report says %d", lines, rep.RowsAccepted)
		}
		for _, r := range rep.Rejected {
			if len(r.Reasons) == 0 || r.Line < 2 {
				t.Fatalf("rejected row without reason or line: %+v", r)
			}
		}
	})
}
