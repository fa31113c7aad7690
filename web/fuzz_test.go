package web

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"hotline/ticketing"
	"hotline/ticketing/monitoring"
)

// FuzzDecodeBodies: whatever a client sends as a JSON body, decode answers with an error or a value that holds
// no NUL (which PostgreSQL text cannot store), and never panics. Seeds: testdata/fuzz/FuzzDecodeBodies.
func FuzzDecodeBodies(f *testing.F) {
	f.Add([]byte(`{"source":"phone","kind":"help","category":"monitoring_help","content":"求助","household_id":5}`))
	f.Add([]byte(`{"version":1,"co_unit_ids":[1,2],"reply":"已办结"}`))
	f.Add([]byte(`{"number":"A1","members":[{"name":"\u0000","id_number":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&newTicketBody{}, &actionBody{}, &monitoring.HouseholdInput{}, &monitoring.Contact{},
			&ticketing.RuleInput{}, &struct{ Username, Password string }{}} {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(string(body)))
			w := httptest.NewRecorder()
			if err := decode(w, r, v); err == nil && hasNUL(reflect.ValueOf(v)) {
				t.Fatalf("decoded a NUL into %T from %q", v, body)
			}
		}
	})
}

// FuzzQueryParams: any query string gives a household query or a validation error, never a panic, and a
// parsed query keeps its numbers non-negative. Seeds: testdata/fuzz/FuzzQueryParams.
var zeroTime time.Time

func FuzzQueryParams(f *testing.F) {
	f.Add("region=4309&status=screened&limit=20&after=3")
	f.Add("no_contact_days=-1&limit=99999999999999999999")
	f.Add("name=%E5%88%98&id_last4=123X&clock=red")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := url.ParseQuery(raw); err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/api/v1/households?"+url.PathEscape(raw), nil)
		r.URL.RawQuery = raw
		q, err := householdQuery(r)
		if err == nil && (q.Limit < 0 || q.After < 0 || q.NoContactDays < 0) {
			t.Fatalf("%q parsed to negative numbers: %+v", raw, q)
		}
		p := query(r)
		p.int("limit")
		p.bool("overdue")
		p.time("from", p.time("to", zeroTime))
		_ = p.err()
	})
}
