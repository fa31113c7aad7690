package org

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/region"
)

// UnitKind places a unit in the organisation tree.
type UnitKind string

const (
	UnitBureau     UnitKind = "bureau"     // 湖南省乡村振兴局, the root
	UnitDesk       UnitKind = "desk"       // 12345 派单台, where unrouted tickets go
	UnitDivision   UnitKind = "division"   // 处室 of the provincial bureau
	UnitPrefecture UnitKind = "prefecture" // 市州乡村振兴局
	UnitCounty     UnitKind = "county"     // 县市区乡村振兴局
)

// Unit is a 承办单位.
type Unit struct {
	ID         UnitID   `json:"id"`
	Code       string   `json:"code"`
	Name       string   `json:"name"`
	ShortName  string   `json:"short_name"`
	Kind       UnitKind `json:"kind"`
	ParentID   *UnitID  `json:"parent_id,omitempty"`
	RegionCode string   `json:"region_code,omitempty"`
	Active     bool     `json:"active"`
	// ReplyApproval: the unit's replies need its head's approval (需审核答复) before they go out.
	ReplyApproval bool `json:"reply_approval"`
}

// Well-known unit codes.
const (
	CodeBureau = "430000"
	CodeDesk   = "desk"
)

// Division codes of the provincial bureau, as named in the work plan (DOMAIN.md).
var Divisions = []struct{ Code, Name string }{
	{"div-general", "综合处"},
	{"div-policy", "政策法规处"},
	{"div-finance", "规划财务处"},
	{"div-monitoring", "防贫监测处"},
	{"div-development", "开发指导处"},
	{"div-social", "社会帮扶处"},
	{"div-coordination", "政策协调处"},
	{"div-inspection", "督查考核处"},
	{"div-party", "机关党委"},
	{"div-discipline", "驻局纪检监察组"},
	{"div-training", "培训中心"},
	{"div-foundation", "乡村发展基金会"},
}

// SeedUnits loads the organisation tree: the provincial bureau, its dispatch desk and divisions, the 14
// prefecture bureaus and one bureau for each of the 122 county-level divisions of GB/T 2260 (the statistical-only
// zones have none: their matters go to the prefecture's bureau). It upserts by code, so running it again
// changes nothing, and renames follow the embedded data — except for units an admin has renamed or deactivated
// (admin_managed), which keep what the admin set. It returns the number of units in the tree.
func SeedUnits(ctx context.Context, db TxBeginner) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("seed units: %w", err)
	}
	defer tx.Rollback(ctx)
	upsert := func(code, name, short string, kind UnitKind, parentCode, regionCode string) error {
		var parent, reg any
		if parentCode != "" {
			parent = parentCode
		}
		if regionCode != "" {
			reg = regionCode
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO units (code, name, short_name, kind, parent_id, region_code)
			VALUES ($1, $2, $3, $4, (SELECT id FROM units WHERE code = $5), $6)
			ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, short_name = EXCLUDED.short_name,
				kind = EXCLUDED.kind, parent_id = EXCLUDED.parent_id, region_code = EXCLUDED.region_code
			WHERE NOT units.admin_managed`,
			code, name, short, string(kind), parent, reg)
		if err != nil {
			return fmt.Errorf("seed unit %s %s: %w", code, name, err)
		}
		return nil
	}
	if err := upsert(CodeBureau, "湖南省乡村振兴局", "省乡村振兴局", UnitBureau, "", CodeBureau); err != nil {
		return 0, err
	}
	if err := upsert(CodeDesk, "12345热线派单台", "派单台", UnitDesk, CodeBureau, ""); err != nil {
		return 0, err
	}
	for _, d := range Divisions {
		if err := upsert(d.Code, d.Name, d.Name, UnitDivision, CodeBureau, ""); err != nil {
			return 0, err
		}
	}
	for _, p := range region.Children(CodeBureau) {
		if err := upsert(p.Code, p.Name+"乡村振兴局", p.Name+"乡村振兴局", UnitPrefecture, CodeBureau, p.Code); err != nil {
			return 0, err
		}
		for _, c := range region.Children(p.Code) {
			if c.Level != region.LevelCounty || c.StatisticalOnly {
				continue
			}
			if err := upsert(c.Code, p.Name+c.Name+"乡村振兴局", c.Name+"乡村振兴局", UnitCounty, p.Code, c.Code); err != nil {
				return 0, err
			}
		}
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM units`).Scan(&n); err != nil {
		return 0, fmt.Errorf("seed units: count: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seed units: commit: %w", err)
	}
	return n, nil
}

const unitColumns = `id, code, name, short_name, kind, parent_id, coalesce(region_code, ''), active, reply_approval`

func scanUnit(row pgx.CollectableRow) (Unit, error) {
	var u Unit
	err := row.Scan(&u.ID, &u.Code, &u.Name, &u.ShortName, &u.Kind, &u.ParentID, &u.RegionCode, &u.Active, &u.ReplyApproval)
	return u, err
}

// ListUnits returns the whole tree ordered by kind and code.
func ListUnits(ctx context.Context, db DB) ([]Unit, error) {
	rows, err := db.Query(ctx, `SELECT `+unitColumns+` FROM units
		ORDER BY array_position(ARRAY['bureau','desk','division','prefecture','county'], kind), code`)
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	us, err := pgx.CollectRows(rows, scanUnit)
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	return us, nil
}

// GetUnit returns one unit by id.
func GetUnit(ctx context.Context, db DB, id UnitID) (Unit, error) {
	return oneUnit(ctx, db, `SELECT `+unitColumns+` FROM units WHERE id = $1`, int64(id))
}

// UnitByCode returns one unit by code (a region code or a division code).
func UnitByCode(ctx context.Context, db DB, code string) (Unit, error) {
	return oneUnit(ctx, db, `SELECT `+unitColumns+` FROM units WHERE code = $1`, code)
}

// UnitForRegion returns the bureau responsible for a region code (county or township code): the county's
// bureau, or for a statistical-only zone the prefecture's bureau.
func UnitForRegion(ctx context.Context, db DB, code string) (Unit, error) {
	if c := region.County(code); c != "" {
		u, err := UnitByCode(ctx, db, c)
		if err == nil {
			return u, nil
		}
		if err != ErrNotFound {
			return Unit{}, err
		}
	}
	if p := region.Prefecture(code); p != "" {
		return UnitByCode(ctx, db, p)
	}
	return Unit{}, fmt.Errorf("unit for region %q: %w", code, ErrNotFound)
}

func oneUnit(ctx context.Context, db DB, sql string, arg any) (Unit, error) {
	rows, err := db.Query(ctx, sql, arg)
	if err != nil {
		return Unit{}, fmt.Errorf("get unit %v: %w", arg, err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, scanUnit)
	if err == pgx.ErrNoRows {
		return Unit{}, ErrNotFound
	}
	if err != nil {
		return Unit{}, fmt.Errorf("get unit %v: %w", arg, err)
	}
	return u, nil
}
