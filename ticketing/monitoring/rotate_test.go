package monitoring

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/monitoring/pii/rotate"
	"hotline/ticketing/org"
)

func rotInput(i int) HouseholdInput {
	in := sampleInput(fmt.Sprintf("R%05d", i), fmt.Sprintf("138%08d", i))
	in.Members[0].IDNumber = mkID(fmt.Sprintf("43090319650505%03d", i))
	in.Members[1].IDNumber = mkID(fmt.Sprintf("43090319680303%03d", i))
	in.Phones = []PhoneInput{{Number: fmt.Sprintf("0737-42%05d", i)}}
	return in
}

func mustBox(t *testing.T, cur, prev []byte) *pii.Box {
	t.Helper()
	b, err := pii.NewRotating(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// findsByPII checks that household i is found exactly once by its mobile phone and by the head's ID number.
func findsByPII(t *testing.T, svc *Service, i int, id org.HouseholdID) {
	t.Helper()
	ms, err := svc.LookupPhone(ctx(), fmt.Sprintf("138%08d", i))
	if err != nil || len(ms) != 1 || ms[0].HouseholdID != id {
		t.Fatalf("household %d: phone lookup = %+v, %v", i, ms, err)
	}
	p, err := svc.Search(ctx(), looker, Query{IDNumber: mkID(fmt.Sprintf("43090319650505%03d", i))})
	if err != nil || len(p.Households) != 1 || p.Households[0].ID != id {
		t.Fatalf("household %d: ID number search = %+v, %v", i, p.Households, err)
	}
}

// TestPIIRotate seals data under key A (half of the ID numbers without a key id, as sealed before ids existed),
// then runs with current=B previous=A: reads and lookups work before rotation; rotate runs in small batches while
// a writer creates and updates households; afterwards B alone opens every row and finds every household, and a
// second run changes nothing.
func TestPIIRotate(t *testing.T) {
	f := newFixture(t)
	keyA, _ := pii.ParseKey(pii.NewKey())
	keyB, _ := pii.ParseKey(pii.NewKey())
	svcA := New(Config{DB: f.db, Box: mustBox(t, keyA, nil), Now: f.clock.Now})
	const n = 30
	ids := map[int]org.HouseholdID{}
	for i := range n {
		h, err := svcA.Create(ctx(), staff, rotInput(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = h.ID
	}
	if _, err := f.db.Exec(ctx(), `UPDATE household_members SET id_enc = substring(id_enc from 6) WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}

	boxAB := mustBox(t, keyB, keyA)
	svcAB := New(Config{DB: f.db, Box: boxAB, Now: f.clock.Now})
	for i := range n {
		findsByPII(t, svcAB, i, ids[i])
	}
	r, err := svcAB.Reveal(ctx(), revealer, ids[3], RevealRequest{Field: RevealIDNumber, MemberSeq: 1, Reason: "核对"})
	if err != nil || r.Value != mkID("43090319650505003") {
		t.Fatalf("reveal before rotation = %+v, %v", r, err)
	}

	// A writer under current=B previous=A while rotate runs: new households, and updates of old ones.
	var wg sync.WaitGroup
	werr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := n; i < n+15; i++ {
			h, err := svcAB.Create(ctx(), staff, rotInput(i))
			if err != nil {
				werr <- err
				return
			}
			ids[i] = h.ID
			old := i - n
			cur, err := svcAB.Get(ctx(), ids[old])
			if err != nil {
				werr <- err
				return
			}
			in := rotInput(old)
			in.Village = "更新村"
			if _, err := svcAB.Update(ctx(), staff, ids[old], cur.Version, in); err != nil {
				werr <- err
				return
			}
		}
	}()
	rep, err := rotate.Run(ctx(), f.db, boxAB, 4, io.Discard)
	wg.Wait()
	close(werr)
	if err := <-werr; err != nil {
		t.Fatal("writer:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows["household_members"] == 0 || rep.Rows["household_phones"] == 0 || rep.Rows["households"] == 0 {
		t.Fatalf("rotate did nothing: %+v", rep.Rows)
	}

	// B alone: every sealed value carries B's key id and opens; every household is found once.
	boxB := mustBox(t, keyB, nil)
	total := n + 15
	for _, q := range []struct {
		sql   string
		field pii.Field
		want  int
	}{
		{`SELECT id_enc FROM household_members`, pii.FieldIDNumber, 2 * total},
		{`SELECT phone_enc FROM household_phones`, pii.FieldPhone, 2 * total},
		{`SELECT cadre_phone_enc FROM households`, pii.FieldPhone, total},
	} {
		rows, err := f.db.Query(ctx(), q.sql)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for rows.Next() {
			var enc []byte
			if err := rows.Scan(&enc); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(enc, boxB.Header()) {
				t.Fatalf("%s: a value not under key B", q.sql)
			}
			if _, err := boxB.Open(q.field, enc); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
			got++
		}
		if rows.Err() != nil || got != q.want {
			t.Fatalf("%s: %d rows (%v), want %d", q.sql, got, rows.Err(), q.want)
		}
	}
	svcB := New(Config{DB: f.db, Box: boxB, Now: f.clock.Now})
	for i := range total {
		findsByPII(t, svcB, i, ids[i])
	}
	r, err = svcB.Reveal(ctx(), revealer, ids[20], RevealRequest{Field: RevealIDNumber, MemberSeq: 1, Reason: "核对"})
	if err != nil || r.Value != mkID("43090319650505020") {
		t.Fatalf("reveal after rotation = %+v, %v", r, err)
	}

	// Resumable: a second run finds nothing to do.
	rep, err = rotate.Run(ctx(), f.db, boxAB, 4, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for tbl, c := range rep.Rows {
		if c != 0 {
			t.Fatalf("second run re-sealed %d rows of %s", c, tbl)
		}
	}
}

var looker = org.Actor{UserID: 0, Username: "looker", Name: "查询员", Role: org.RoleStaff,
	Permissions: []org.Permission{org.PermLookupPII}}
