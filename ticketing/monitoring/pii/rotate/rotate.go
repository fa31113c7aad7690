// Package rotate re-seals and re-hashes the stored personal data under the current key of a pii.Box (`hotline
// pii rotate`). It works in batches, each one short transaction that locks its rows with FOR UPDATE SKIP LOCKED,
// so the service keeps serving (and writing, under the current key) meanwhile; a row already under the current
// key is recognised by its key id and left alone, so the command can be stopped and run again.
package rotate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/ticketing/monitoring/pii"
)

// column is a sealed column and, when it has one, the column of its lookup hash.
type column struct {
	enc, hash string
	field     pii.Field
}

// table is a table holding sealed columns.
type table struct {
	name string
	cols []column
}

// tables lists every column sealed with pii (grep Box.Seal when adding one).
var tables = []table{
	{"households", []column{{"cadre_phone_enc", "", pii.FieldPhone}}},
	{"household_members", []column{{"id_enc", "id_hash", pii.FieldIDNumber}}},
	{"household_phones", []column{{"phone_enc", "phone_hash", pii.FieldPhone}}},
	{"notify_unit_channels", []column{{"head_phone_sealed", "", pii.FieldPhone}, {"liaison_phone_sealed", "", pii.FieldPhone}}},
	{"notify_deliveries", []column{{"address_sealed", "address_hash", pii.FieldPhone}}},
}

// Report counts what a run did.
type Report struct {
	Rows            map[string]int // rows re-sealed per table
	OptOutsRehashed int            // opt-outs whose hash was recomputed from a message to the same number
	OptOutsUnknown  int            // opt-outs with no message to recover their number from: left as they are
}

// Run re-seals every row not yet under box's current key, batch rows per transaction, writing progress to w.
func Run(ctx context.Context, db *pgxpool.Pool, box *pii.Box, batch int, w io.Writer) (Report, error) {
	if batch <= 0 {
		batch = 500
	}
	rep := Report{Rows: map[string]int{}}
	// Opt-outs store only a hash: recover their numbers from the messages before those are re-hashed.
	var err error
	if rep.OptOutsRehashed, rep.OptOutsUnknown, err = optOuts(ctx, db, box); err != nil {
		return rep, err
	}
	fmt.Fprintf(w, "notify_optouts: %d re-hashed, %d without a message to recover the number from (kept as they are)\n",
		rep.OptOutsRehashed, rep.OptOutsUnknown)
	for _, t := range tables {
		n, err := rotateTable(ctx, db, box, t, batch, w)
		rep.Rows[t.name] = n
		if err != nil {
			return rep, err
		}
		fmt.Fprintf(w, "%s: %d rows re-sealed\n", t.name, n)
	}
	return rep, nil
}

// needs is the condition of a row holding a value not sealed under the current key ($1 is the key header, 5
// bytes: version and key id).
func (t table) needs() string {
	var or []string
	for _, c := range t.cols {
		or = append(or, fmt.Sprintf("(%s IS NOT NULL AND substring(%s from 1 for %d) <> $1)", c.enc, c.enc, 5))
	}
	return "(" + strings.Join(or, " OR ") + ")"
}

// rotateTable walks the table in physical order (a TID range scan, so each batch reads from where the last one
// stopped), then checks that nothing is left: rows another transaction held locked are retried in a new pass.
func rotateTable(ctx context.Context, db *pgxpool.Pool, box *pii.Box, t table, batch int, w io.Writer) (int, error) {
	header := box.Header()
	var cols []string
	for _, c := range t.cols {
		cols = append(cols, c.enc)
	}
	sel := fmt.Sprintf(`SELECT ctid, %s FROM %s WHERE ctid > $2 AND %s LIMIT $3 FOR UPDATE SKIP LOCKED`,
		strings.Join(cols, ", "), t.name, t.needs())
	var set []string
	args := 2
	for _, c := range t.cols {
		set = append(set, fmt.Sprintf("%s = $%d", c.enc, args))
		args++
		if c.hash != "" {
			set = append(set, fmt.Sprintf("%s = COALESCE($%d::bytea, %s)", c.hash, args, c.hash))
			args++
		}
	}
	upd := fmt.Sprintf(`UPDATE %s SET %s WHERE ctid = $1`, t.name, strings.Join(set, ", "))
	total := 0
	for pass := 0; ; pass++ {
		last := pgtype.TID{BlockNumber: 0, OffsetNumber: 0, Valid: true}
		for {
			n, next, err := rotateBatch(ctx, db, box, t, sel, upd, header, last, batch)
			if err != nil {
				return total, fmt.Errorf("pii rotate %s: %w", t.name, err)
			}
			if n == 0 {
				break
			}
			total += n
			last = next
			fmt.Fprintf(w, "%s: %d rows re-sealed so far\n", t.name, total)
		}
		var left bool
		if err := db.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE %s)`, t.name, t.needs()), header).Scan(&left); err != nil {
			return total, fmt.Errorf("pii rotate %s: %w", t.name, err)
		}
		if !left {
			return total, nil
		}
		// Rows locked by a writer (or moved behind the scan by an update): wait for them, then another pass.
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rotateBatch re-seals up to batch rows after last in one transaction; it returns how many and the last ctid.
func rotateBatch(ctx context.Context, db *pgxpool.Pool, box *pii.Box, t table, sel, upd string, header []byte, last pgtype.TID, batch int) (int, pgtype.TID, error) {
	n := 0
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sel, header, last, batch)
		if err != nil {
			return err
		}
		type row struct {
			tid  pgtype.TID
			vals [][]byte
		}
		var todo []row
		for rows.Next() {
			r := row{vals: make([][]byte, len(t.cols))}
			dst := []any{&r.tid}
			for i := range r.vals {
				dst = append(dst, &r.vals[i])
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var b pgx.Batch
		for _, r := range todo {
			args := []any{r.tid}
			for i, c := range t.cols {
				v := r.vals[i]
				var enc, hash []byte
				switch {
				case v == nil:
				case bytes.HasPrefix(v, header):
					// Already current; a hash column beside it was written with it.
					enc = v
				default:
					p, err := box.Open(c.field, v)
					if err != nil {
						return fmt.Errorf("row %s: %s: %w (is HOTLINE_PII_KEY_PREVIOUS the key it was sealed with?)", tidString(r.tid), c.enc, err)
					}
					enc, hash = box.Seal(c.field, p), box.Hash(c.field, p)
				}
				args = append(args, enc)
				if c.hash != "" {
					args = append(args, hash) // nil: unchanged (COALESCE in the update)
				}
			}
			b.Queue(upd, args...)
			last = r.tid
			n++
		}
		if n == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	return n, last, err
}

func tidString(t pgtype.TID) string { return fmt.Sprintf("(%d,%d)", t.BlockNumber, t.OffsetNumber) }

// optOuts recomputes the hash of each opt-out from a message sent to the same number (a caller's phone is sealed
// on its deliveries); an opt-out with none cannot be re-hashed, since only its hash is stored.
func optOuts(ctx context.Context, db *pgxpool.Pool, box *pii.Box) (rehashed, unknown int, err error) {
	rows, _ := db.Query(ctx, `SELECT o.phone_hash,
			(SELECT d.address_sealed FROM notify_deliveries d
			  WHERE d.address_hash = o.phone_hash AND d.address_sealed IS NOT NULL LIMIT 1)
		FROM notify_optouts o`)
	type optOut struct{ hash, sealed []byte }
	var all []optOut
	var o optOut
	if _, err := pgx.ForEachRow(rows, []any{&o.hash, &o.sealed}, func() error { all = append(all, o); return nil }); err != nil {
		return 0, 0, fmt.Errorf("pii rotate opt-outs: %w", err)
	}
	for _, o := range all {
		if o.sealed == nil {
			unknown++
			continue
		}
		p, err := box.Open(pii.FieldPhone, o.sealed)
		if err != nil {
			return rehashed, unknown, fmt.Errorf("pii rotate opt-outs: %w", err)
		}
		h := box.Hash(pii.FieldPhone, p)
		if bytes.Equal(h, o.hash) {
			continue
		}
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO notify_optouts (phone_hash, phone_masked, created_at, created_by)
				SELECT $2, phone_masked, created_at, created_by FROM notify_optouts WHERE phone_hash = $1
				ON CONFLICT DO NOTHING`, o.hash, h); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM notify_optouts WHERE phone_hash = $1`, o.hash)
			return err
		})
		if err != nil {
			return rehashed, unknown, fmt.Errorf("pii rotate opt-outs: %w", err)
		}
		rehashed++
	}
	return rehashed, unknown, nil
}
