package web

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

// BenchmarkCreateHTTP measures POST /api/v1/tickets (dispatched at intake) through the whole handler on the
// test PostgreSQL, the relay not running.
func BenchmarkCreateHTTP(b *testing.B) {
	db := testenv.DB(b)
	rdb, prefix := testenv.Redis(b)
	svc := ticketing.NewService(db, ticketing.Options{})
	h := New(Deps{DB: db, Redis: rdb, Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(db, rdb, prefix), RedisPrefix: prefix}})
	ctx := b.Context()
	u, _ := org.UnitByCode(ctx, db, "desk")
	user, err := org.CreateUser(ctx, db, org.NewUser{Username: "bench", DisplayName: "bench", Password: "password1", Role: org.RoleAgent, UnitID: u.ID})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := org.CreateToken(ctx, db, user.ID, "bench", 0)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"source":"api","caller_phone":"139%08d","region_code":"430903","kind":"consultation","category":"policy_question","content":"雨露计划补助政策咨询","dispatch":true}`, i)
			req, _ := http.NewRequest("POST", "/api/v1/tickets", bytes.NewBufferString(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Idempotency-Key", fmt.Sprint(i))
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.code != http.StatusCreated {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(c int)           { w.code = c }
