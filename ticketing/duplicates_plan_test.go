package ticketing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing"
)

// Merge suggestions run inside every create, so they must walk the phone and household indexes rather than
// the whole table (a plan with OR across both walked the primary key over every ticket and slowed creates as
// the table grew). Sequential scans are disabled so that the small test table gives the plan of a large one.
func TestDuplicateCandidatesUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `EXPLAIN `+ticketing.DuplicateCandidates("$1", "$2::bigint", "$3", "$4"),
		"13812345678", int64(7), "policy_question", time.Now().AddDate(0, 0, -30))
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	for _, idx := range []string{"tickets_phone_idx", "tickets_household_idx"} {
		if !strings.Contains(text, idx) {
			t.Errorf("plan does not use %s:\n%s", idx, text)
		}
	}
	if strings.Contains(text, "tickets_pkey") {
		t.Errorf("plan walks the primary key:\n%s", text)
	}
}
