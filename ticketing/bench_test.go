package ticketing_test

import (
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/org"
)

// BenchmarkCreateDispatched measures the service path of intake (validate, number, route, insert dispatched,
// events and outbox rows, commit) on the test PostgreSQL, without HTTP.
func BenchmarkCreateDispatched(b *testing.B) {
	f := newFixture(b)
	svc := ticketing.NewService(f.db, ticketing.Options{})
	nt := ticketing.NewTicket{Source: ticketing.SourceAPI, CallerPhone: "13900000000", RegionCode: "430903",
		Kind: ticketing.KindConsultation, Category: "policy_question", Content: "雨露计划补助政策咨询", Dispatch: true}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Create(f.ctx, org.System, nt); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
