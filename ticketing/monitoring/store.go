package monitoring

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgerrcode"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
	"hotline/ticketing/region"
)

// householdCols are the columns of a household row every read path selects: masks only, never *_enc.
const householdCols = `h.id, h.number, h.county_code, h.township_code, h.village, h.grp, h.address, h.head_name,
	h.monitoring_type, h.risk_types, h.cadre_name, h.cadre_phone_mask, h.status, h.status_at, h.lead_at,
	h.publicity_kind, h.publicity_until, h.last_contact_at, h.version, h.created_at, h.updated_at`

func scanHousehold(row pgx.CollectableRow) (Household, error) {
	var h Household
	var pk *string
	err := row.Scan(&h.ID, &h.Number, &h.CountyCode, &h.TownshipCode, &h.Village, &h.Group, &h.Address, &h.HeadName,
		&h.MonitoringType, &h.RiskTypes, &h.CadreName, &h.CadrePhone, &h.Status, &h.StatusAt, &h.LeadAt,
		&pk, &h.PublicityUntil, &h.LastContactAt, &h.Version, &h.CreatedAt, &h.UpdatedAt)
	if pk != nil {
		h.PublicityKind = *pk
	}
	h.RegionName = region.FullName(h.TownshipCode)
	if h.RiskTypes == nil {
		h.RiskTypes = []RiskType{}
	}
	return h, err
}

// Read returns a household as Get does, to an actor whose scope covers it.
func (s *Service) Read(ctx context.Context, actor org.Actor, id org.HouseholdID) (Household, error) {
	if err := s.AuthorizeID(ctx, s.db, actor, AccessRead, id); err != nil {
		return Household{}, err
	}
	return s.get(ctx, s.db, id, false)
}

// Get returns a household with its members, phones and measures, personal data masked. It checks no scope: it is
// for the platform's own work; people's requests go through Read.
func (s *Service) Get(ctx context.Context, id org.HouseholdID) (Household, error) {
	return s.get(ctx, s.db, id, false)
}

func (s *Service) get(ctx context.Context, db org.DB, id org.HouseholdID, forUpdate bool) (Household, error) {
	q := `SELECT ` + householdCols + ` FROM households h WHERE h.id = $1`
	if forUpdate {
		q += ` FOR NO KEY UPDATE`
	}
	rows, _ := db.Query(ctx, q, id)
	h, err := pgx.CollectExactlyOneRow(rows, scanHousehold)
	if isNoRows(err) {
		return Household{}, notFound(id)
	}
	if err != nil {
		return Household{}, fmt.Errorf("get household %d: %w", id, err)
	}
	if err := s.loadChildren(ctx, db, &h); err != nil {
		return Household{}, err
	}
	h.Clock = s.clock(h)
	return h, nil
}

func (s *Service) loadChildren(ctx context.Context, db org.DB, h *Household) error {
	rows, _ := db.Query(ctx, `SELECT seq, name, relation, id_mask, health, labour, in_school
		FROM household_members WHERE household_id = $1 ORDER BY seq`, h.ID)
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) {
		var m Member
		err := r.Scan(&m.Seq, &m.Name, &m.Relation, &m.IDNumber, &m.Health, &m.Labour, &m.InSchool)
		return m, err
	})
	if err != nil {
		return fmt.Errorf("members of household %d: %w", h.ID, err)
	}
	rows, _ = db.Query(ctx, `SELECT phone_mask, kind, member_seq FROM household_phones
		WHERE household_id = $1 ORDER BY member_seq NULLS FIRST, phone_mask`, h.ID)
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Phone, error) {
		var p Phone
		err := r.Scan(&p.Number, &p.Kind, &p.MemberSeq)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("phones of household %d: %w", h.ID, err)
	}
	rows, _ = db.Query(ctx, `SELECT type, coalesce(to_char(start_date, 'YYYY-MM-DD'), ''),
		coalesce(to_char(end_date, 'YYYY-MM-DD'), ''), note FROM household_measures WHERE household_id = $1 ORDER BY seq`, h.ID)
	mss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Measure, error) {
		var m Measure
		err := r.Scan(&m.Type, &m.Start, &m.End, &m.Note)
		return m, err
	})
	if err != nil {
		return fmt.Errorf("measures of household %d: %w", h.ID, err)
	}
	h.Members, h.Phones, h.Measures = ms, ps, mss
	if h.Phones == nil {
		h.Phones = []Phone{}
	}
	if h.Measures == nil {
		h.Measures = []Measure{}
	}
	return nil
}

// Create adds a household in status 排查 (screened).
func (s *Service) Create(ctx context.Context, actor org.Actor, in HouseholdInput) (Household, error) {
	if err := editRole(actor); err != nil {
		return Household{}, err
	}
	r, err := validate(in, s.now(), false)
	if err != nil {
		return Household{}, err
	}
	if err := s.Authorize(ctx, s.db, actor, AccessEdit, r.CountyCode); err != nil {
		return Household{}, err
	}
	sl := seal(s.box, r)
	var id org.HouseholdID
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO households (number, county_code, township_code, village, grp, address,
			head_name, monitoring_type, risk_types, cadre_name, cadre_phone_enc, cadre_phone_mask, digest, status_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING id`,
			r.Number, r.CountyCode, r.TownshipCode, r.Village, r.Group, r.Address, r.HeadName, r.MonitoringType,
			riskStrings(r.RiskTypes), r.CadreName, sl.cadreEnc, sl.cadreMask, sl.digest, s.now()).Scan(&id)
		if isUniqueViolation(err) {
			return fmt.Errorf("create household: %w", errors.Join(org.ErrConflict,
				org.Invalid("number", fmt.Sprintf("household %s already exists", r.Number))))
		}
		if err != nil {
			return fmt.Errorf("create household: %w", err)
		}
		if err := writeChildren(ctx, tx, []int64{int64(id)}, []*sealed{sl}); err != nil {
			return err
		}
		return addEvent(ctx, tx, Event{HouseholdID: id, At: s.now(), Action: "create", ToStatus: StatusScreened,
			Reason: "新建监测户"}, actor)
	})
	if err != nil {
		return Household{}, err
	}
	return s.Get(ctx, id)
}

// Update replaces a household's record (not its status: that moves only by status actions). version must be the
// version the client read; a stale one is ErrConflict.
func (s *Service) Update(ctx context.Context, actor org.Actor, id org.HouseholdID, version int, in HouseholdInput) (Household, error) {
	if err := editRole(actor); err != nil {
		return Household{}, err
	}
	if version <= 0 {
		return Household{}, org.Invalid("version", "required: the version you read")
	}
	r, err := validate(in, s.now(), true)
	if err != nil {
		return Household{}, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var cur int
		var number string
		err := tx.QueryRow(ctx, `SELECT version, number FROM households WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&cur, &number)
		if isNoRows(err) {
			return notFound(id)
		}
		if err != nil {
			return fmt.Errorf("update household %d: %w", id, err)
		}
		if cur != version {
			return fmt.Errorf("update household %d: version %d is stale (now %d): %w", id, version, cur, org.ErrConflict)
		}
		if r.Number != number {
			return org.Invalid("number", "the household number cannot change")
		}
		if err := s.AuthorizeID(ctx, tx, actor, AccessEdit, id); err != nil {
			return err
		}
		if err := s.Authorize(ctx, tx, actor, AccessEdit, r.CountyCode); err != nil {
			return err
		}
		if err := s.resolveKept(ctx, tx, id, r); err != nil {
			return err
		}
		sl := seal(s.box, r)
		cadreEnc, cadreMask := sl.cadreEnc, sl.cadreMask
		if _, err := tx.Exec(ctx, `UPDATE households SET county_code=$2, township_code=$3, village=$4, grp=$5,
			address=$6, head_name=$7, monitoring_type=$8, risk_types=$9, cadre_name=$10, cadre_phone_enc=$11,
			cadre_phone_mask=$12, digest=$13, version=version+1, updated_at=$14 WHERE id=$1`,
			id, r.CountyCode, r.TownshipCode, r.Village, r.Group, r.Address, r.HeadName, r.MonitoringType,
			riskStrings(r.RiskTypes), r.CadreName, cadreEnc, cadreMask, sl.digest, s.now()); err != nil {
			return fmt.Errorf("update household %d: %w", id, err)
		}
		if err := deleteChildren(ctx, tx, []int64{int64(id)}, true); err != nil {
			return err
		}
		if err := writeChildren(ctx, tx, []int64{int64(id)}, []*sealed{sl}); err != nil {
			return err
		}
		return addEvent(ctx, tx, Event{HouseholdID: id, At: s.now(), Action: "update", Reason: "修改监测户信息"}, actor)
	})
	if err != nil {
		return Household{}, err
	}
	return s.Get(ctx, id)
}

// resolveKept replaces masked or empty values of an update with the stored ones.
func (s *Service) resolveKept(ctx context.Context, tx pgx.Tx, id org.HouseholdID, r *record) error {
	if masked(r.CadrePhone) {
		var enc []byte
		var mask string
		if err := tx.QueryRow(ctx, `SELECT cadre_phone_enc, cadre_phone_mask FROM households WHERE id = $1`, id).Scan(&enc, &mask); err != nil {
			return fmt.Errorf("read cadre phone: %w", err)
		}
		if enc == nil || mask != r.CadrePhone {
			return org.Invalid("cadre_phone", "masked value does not match the stored number; send the full number")
		}
		p, err := s.box.Open(pii.FieldPhone, enc)
		if err != nil {
			return err
		}
		r.CadrePhone = p
	}
	for i := range r.Members {
		m := &r.Members[i]
		if !m.keep {
			continue
		}
		var enc []byte
		err := tx.QueryRow(ctx, `SELECT id_enc FROM household_members WHERE household_id = $1 AND seq = $2`, id, m.Seq).Scan(&enc)
		if isNoRows(err) {
			return org.Invalid(fmt.Sprintf("members[%d].id_number", i), fmt.Sprintf("required (member %d is new)", m.Seq))
		}
		if err != nil {
			return err
		}
		if m.IDNumber, err = s.box.Open(pii.FieldIDNumber, enc); err != nil {
			return err
		}
		m.keep = false
	}
	for i := range r.Phones {
		p := &r.Phones[i]
		if !p.keep {
			continue
		}
		rows, _ := tx.Query(ctx, `SELECT phone_enc, kind FROM household_phones WHERE household_id = $1 AND phone_mask = $2`, id, p.Number)
		type encKind struct {
			Enc  []byte
			Kind string
		}
		found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[encKind])
		if err != nil {
			return err
		}
		if len(found) != 1 {
			return org.Invalid(fmt.Sprintf("phones[%d]", i), "masked number does not match one stored number; send the full number")
		}
		if p.Number, err = s.box.Open(pii.FieldPhone, found[0].Enc); err != nil {
			return err
		}
		p.Kind, p.keep = found[0].Kind, false
	}
	return nil
}

func riskStrings(rs []RiskType) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// deleteChildren removes members and phones, and with measures also the assistance measures (an import does not
// carry measures, so it keeps them).
func deleteChildren(ctx context.Context, tx pgx.Tx, ids []int64, measures bool) error {
	tables := []string{"household_members", "household_phones"}
	if measures {
		tables = append(tables, "household_measures")
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE household_id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("clear %s: %w", t, err)
		}
	}
	return nil
}

// writeChildren inserts the members, phones and measures of many households with one statement each (unnest),
// which is what makes an import of 100,000 rows take seconds rather than minutes.
func writeChildren(ctx context.Context, tx pgx.Tx, ids []int64, recs []*sealed) error {
	var (
		mHID                         []int64
		mSeq                         []int16
		mName, mRel, mMask, mL4, mHe []string
		mLab                         []string
		mSchool                      []bool
		mEnc, mHash                  [][]byte
		pHID                         []int64
		pHash, pEnc                  [][]byte
		pMask, pKind                 []string
		pSeq                         []*int16
		xHID                         []int64
		xSeq                         []int16
		xType, xNote                 []string
		xStart, xEnd                 []*time.Time
	)
	for i, sl := range recs {
		hid := ids[i]
		for j, m := range sl.rec.Members {
			mHID = append(mHID, hid)
			mSeq = append(mSeq, int16(m.Seq))
			mName, mRel = append(mName, m.Name), append(mRel, m.Relation)
			mEnc, mHash = append(mEnc, sl.memEnc[j]), append(mHash, sl.memHash[j])
			mMask, mL4 = append(mMask, sl.memMask[j]), append(mL4, sl.memLast4[j])
			mHe, mLab, mSchool = append(mHe, m.Health), append(mLab, m.Labour), append(mSchool, m.InSchool)
		}
		for j, p := range sl.rec.Phones {
			pHID = append(pHID, hid)
			pHash, pEnc, pMask = append(pHash, sl.phoneHsh[j]), append(pEnc, sl.phoneEnc[j]), append(pMask, sl.phoneMask[j])
			pKind = append(pKind, p.Kind)
			var seq *int16
			if p.MemberSeq != nil {
				v := int16(*p.MemberSeq)
				seq = &v
			}
			pSeq = append(pSeq, seq)
		}
		for j, m := range sl.rec.Measures {
			xHID, xSeq = append(xHID, hid), append(xSeq, int16(j+1))
			xType, xNote = append(xType, m.Type), append(xNote, m.Note)
			xStart, xEnd = append(xStart, m.Start), append(xEnd, m.End)
		}
	}
	if len(mHID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO household_members (household_id, seq, name, relation, id_enc, id_hash,
			id_mask, id_last4, health, labour, in_school)
			SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::bytea[], $6::bytea[],
				$7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[])`,
			mHID, mSeq, mName, mRel, mEnc, mHash, mMask, mL4, mHe, mLab, mSchool); err != nil {
			if isUniqueViolation(err) {
				// household_members_id_hash_uniq: one person, one household.
				return fmt.Errorf("write members: %w", errors.Join(org.ErrConflict,
					org.Invalid("id_number", "this ID number is already on another household")))
			}
			return fmt.Errorf("write members: %w", err)
		}
	}
	if len(pHID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO household_phones (household_id, phone_hash, phone_enc, phone_mask, kind, member_seq)
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::smallint[])`,
			pHID, pHash, pEnc, pMask, pKind, pSeq); err != nil {
			return fmt.Errorf("write phones: %w", err)
		}
	}
	if len(xHID) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO household_measures (household_id, seq, type, start_date, end_date, note)
			SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::date[], $5::date[], $6::text[])`,
			xHID, xSeq, xType, xStart, xEnd, xNote); err != nil {
			return fmt.Errorf("write measures: %w", err)
		}
	}
	return nil
}

func isUniqueViolation(err error) bool { return org.SQLState(err) == pgerrcode.UniqueViolation }
