package monitoring

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkImport imports a 20,000-row file of new households per iteration; rows/s is reported.
// (cmd/loadlookup measures the 100,000-row file over a million households.)
func BenchmarkImport(b *testing.B) {
	f := newFixture(b)
	from := 0
	rows := 0
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		data, n := DemoCSVRows(from, 20_000)
		from += n
		rows += strings.Count(data, "\n") - 1
		b.StartTimer()
		t0 := time.Now()
		if _, err := f.svc.Import(ctx(), staff, strings.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(rows)/total.Seconds(), "rows/s")
}

// BenchmarkParseImport measures decoding and validating a 20,000-row file, without the database.
func BenchmarkParseImport(b *testing.B) {
	data, _ := DemoCSVRows(0, 20_000)
	now := time.Now()
	for b.Loop() {
		if _, _, err := parseImport(strings.NewReader(data), now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
