package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"hotline/deploy/testenv"
	"hotline/ticketing/monitoring/pii"
)

// `hotline pii rotate` with HOTLINE_PII_KEY=B and HOTLINE_PII_KEY_PREVIOUS=A re-seals a unit's phone sealed under
// A so that B alone opens it; a wrong command line is a usage error.
func TestPIIRotateCommand(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rawA, rawB := pii.NewKey(), pii.NewKey()
	keyA, _ := pii.ParseKey(rawA)
	keyB, _ := pii.ParseKey(rawB)
	boxA, _ := pii.New(keyA)
	boxB, _ := pii.New(keyB)
	if _, err := c.Exec(ctx, `INSERT INTO notify_unit_channels (unit_id, head_phone_sealed, head_phone_masked)
		SELECT min(id), $1, '139****0000' FROM units`, boxA.Seal(pii.FieldPhone, "13900000000")); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOTLINE_DATABASE_URL=" + url, "HOTLINE_PII_KEY=" + rawB, "HOTLINE_PII_KEY_PREVIOUS=" + rawA}
	var out, errb bytes.Buffer
	if code := run([]string{"pii", "rotate", "--batch", "2"}, env, &out, &errb); code != 0 || !strings.Contains(out.String(), "done: 1 rows re-sealed") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var sealed []byte
	if err := c.QueryRow(ctx, `SELECT head_phone_sealed FROM notify_unit_channels`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if p, err := boxB.Open(pii.FieldPhone, sealed); err != nil || p != "13900000000" || !bytes.HasPrefix(sealed, boxB.Header()) {
		t.Fatalf("after rotate: %q, %v", p, err)
	}
	out.Reset()
	if code := run([]string{"pii", "rotate", "--batch", "2"}, env, &out, &errb); code != 0 || !strings.Contains(out.String(), "done: 0 rows re-sealed") {
		t.Fatalf("second run: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"pii", "spin"}, env, &out, &errb); code != 2 {
		t.Fatalf("bad usage: exit %d", code)
	}
}
