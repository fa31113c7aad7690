package exchange_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPush measures signed pushes of new orders taken end to end (signature, nonce in Redis and PostgreSQL,
// mapping, ticket routed and dispatched, order row, history event), one after the other.
func BenchmarkPush(b *testing.B) {
	f := newFixture(b, nil)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = orderBody(fmt.Sprintf("YY-B-%d-%d", time.Now().UnixNano(), i), "0301", "430903", nil)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sr := f.p.sign("yiyang", bodies[i], time.Now(), f.nonce())
		if _, err := f.ex.Receive(f.ctx, "yiyang", http.MethodPost, sr.target, sr.header, sr.body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkSend measures the sender: b.N queued 签收 sent to the local platform and recorded, one transaction
// and one HTTP request each, by one process.
func BenchmarkSend(b *testing.B) {
	f := newFixture(b, nil)
	clerk := f.user("staff", "430903")
	for i := 0; i < b.N; i++ {
		r := f.mustPush(orderBody(fmt.Sprintf("YY-S-%d-%d", time.Now().UnixNano(), i), "0301", "430903", nil))
		tk, err := f.tickets.Get(f.ctx, clerk, r.TicketID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.tickets.Sign(f.ctx, clerk, tk.ID, tk.Version); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	f.settle(f.ex)
	b.StopTimer()
	if n := len(f.p.applied); n != b.N {
		b.Fatalf("platform applied %d of %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}
