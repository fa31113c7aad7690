package org_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/org"
)

func mustUnit(t *testing.T, db *pgxpool.Pool, code string) org.Unit {
	t.Helper()
	u, err := org.UnitByCode(context.Background(), db, code)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func lastAudit(t *testing.T, db *pgxpool.Pool, admin org.Actor, object string) org.AdminAuditEntry {
	t.Helper()
	es, err := org.ListAdminAudit(context.Background(), db, admin, org.AdminAuditFilter{Object: object, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatalf("no admin audit row for %s", object)
	}
	return es[0]
}

func field(t *testing.T, raw json.RawMessage, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m[key]
}

// An admin creates, disables and resets users; each change is one audit row with who, what, before and after;
// the table refuses UPDATE, DELETE and TRUNCATE; non-admins are refused; the last admin stays.
func TestAdminUsersAudited(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	bureau, county := mustUnit(t, db, org.CodeBureau), mustUnit(t, db, "430903")
	root, err := org.CreateUser(ctx, db, org.NewUser{Username: "root", DisplayName: "管理员", Password: "password1", Role: org.RoleAdmin, UnitID: bureau.ID})
	if err != nil {
		t.Fatal(err)
	}
	admin := root.Actor()
	src := org.Source{Addr: "10.0.0.9"}

	staff := org.Actor{UserID: 999, Username: "x", Role: org.RoleHead, UnitID: county.ID}
	if _, err := org.AdminCreateUser(ctx, db, staff, src, org.NewUser{Username: "zhang", DisplayName: "张", Password: "longenough1", Role: org.RoleStaff, UnitID: county.ID}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a unit head created a user: %v", err)
	}
	if _, err := org.AdminCreateUser(ctx, db, admin, src, org.NewUser{Username: "zhang", DisplayName: "张", Password: "zhang-pass", Role: org.RoleStaff, UnitID: county.ID}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a password containing the username was accepted: %v", err)
	}
	if _, err := org.AdminCreateUser(ctx, db, admin, src, org.NewUser{Username: "zhang", DisplayName: "张", Password: "longenough1", Role: org.RoleStaff}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("staff without a unit was accepted: %v", err)
	}
	u, err := org.AdminCreateUser(ctx, db, admin, src, org.NewUser{Username: "zhang", DisplayName: "张", Password: "longenough1",
		Role: org.RoleStaff, UnitID: county.ID, Permissions: []org.Permission{org.PermRevealPII}})
	if err != nil {
		t.Fatal(err)
	}
	obj := "user:" + itoa(int64(u.ID))
	e := lastAudit(t, db, admin, obj)
	if e.Action != org.AdminUserCreate || e.ActorID != root.ID || e.ActorUsername != "root" || e.SourceAddr != "10.0.0.9" ||
		string(e.Before) != "null" || field(t, e.After, "username") != "zhang" {
		t.Fatalf("create audit row: %+v before=%s after=%s", e, e.Before, e.After)
	}
	if field(t, e.After, "password") != nil || field(t, e.After, "password_hash") != nil {
		t.Fatalf("the audit row carries a password: %s", e.After)
	}

	// The user signs in, holds a token; disabling ends both, and the row shows active true → false.
	if _, err := org.CheckPassword(ctx, db, "zhang", "longenough1"); err != nil {
		t.Fatal(err)
	}
	tok, err := org.CreateToken(ctx, db, u.ID, "login", 0)
	if err != nil {
		t.Fatal(err)
	}
	sess := org.NewSessions(db, org.SessionOptions{})
	if _, _, err := sess.Create(ctx, u.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := org.UpdateUser(ctx, db, admin, src, u.ID, org.UserPatch{Active: &off}); err != nil {
		t.Fatal(err)
	}
	e = lastAudit(t, db, admin, obj)
	if e.Action != org.AdminUserUpdate || field(t, e.Before, "active") != true || field(t, e.After, "active") != false {
		t.Fatalf("disable audit row: %s → %s", e.Before, e.After)
	}
	if _, err := org.CheckPassword(ctx, db, "zhang", "longenough1"); !errors.Is(err, org.ErrAuth) {
		t.Fatalf("a disabled user signed in: %v", err)
	}
	org.TokenCacheTTL = 0
	if _, err := org.ActorByToken(ctx, db, tok); !errors.Is(err, org.ErrAuth) {
		t.Fatalf("a disabled user's token still works: %v", err)
	}
	var sessions int
	db.QueryRow(ctx, `SELECT count(*) FROM web_sessions WHERE user_id = $1`, int64(u.ID)).Scan(&sessions)
	if sessions != 0 {
		t.Fatalf("%d sessions left after disabling", sessions)
	}

	// Re-enabled, role and unit changed; then a password reset: the old one stops working, the row has no password.
	on, role := true, org.RoleHead
	if _, err := org.UpdateUser(ctx, db, admin, src, u.ID, org.UserPatch{Active: &on, Role: &role}); err != nil {
		t.Fatal(err)
	}
	if err := org.ResetPassword(ctx, db, admin, src, u.ID, "short"); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if err := org.ResetPassword(ctx, db, admin, src, u.ID, "brand-new-pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := org.CheckPassword(ctx, db, "zhang", "longenough1"); !errors.Is(err, org.ErrAuth) {
		t.Fatal("the old password still works after a reset")
	}
	if _, err := org.CheckPassword(ctx, db, "zhang", "brand-new-pw"); err != nil {
		t.Fatal(err)
	}
	e = lastAudit(t, db, admin, obj)
	if e.Action != org.AdminUserPassword || string(e.Before) != "null" || field(t, e.After, "username") != "zhang" {
		t.Fatalf("reset audit row: %+v %s", e, e.After)
	}
	all, err := org.ListAdminAudit(ctx, db, admin, org.AdminAuditFilter{Action: "user.", Object: obj})
	if err != nil || len(all) != 4 {
		t.Fatalf("user actions on %s: %d rows, %v", obj, len(all), err)
	}
	if _, err := org.ListAdminAudit(ctx, db, staff, org.AdminAuditFilter{}); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a unit head read the admin audit: %v", err)
	}

	// The only admin cannot disable or demote itself.
	if _, err := org.UpdateUser(ctx, db, admin, src, root.ID, org.UserPatch{Active: &off}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("the last admin was disabled: %v", err)
	}

	// The database itself refuses to change or remove audit rows, whoever asks.
	for _, q := range []string{`UPDATE admin_audit SET actor_username = 'someone-else'`, `DELETE FROM admin_audit`, `TRUNCATE admin_audit`} {
		if _, err := db.Exec(ctx, q); org.SQLState(err) != pgerrcode.InsufficientPrivilege {
			t.Errorf("%s: %v, want insufficient_privilege", q, err)
		}
	}
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM admin_audit`).Scan(&n)
	if n != 4 {
		t.Fatalf("%d admin audit rows, want 4", n)
	}
}

// Units: add, rename (kept over a re-seed), deactivate refused while tickets are open there, delete refused for
// a unit with history; each change audited.
func TestAdminUnitsAudited(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	admin := org.Actor{UserID: 0, Username: "root", Role: org.RoleAdmin}
	src := org.Source{}
	pref := mustUnit(t, db, "430900")
	u, err := org.CreateUnit(ctx, db, admin, src, org.NewUnit{Code: "yiyang-hightech", Name: "益阳高新区乡村振兴办", Kind: org.UnitCounty, ParentID: pref.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := org.CreateUnit(ctx, db, admin, src, org.NewUnit{Code: "yiyang-hightech", Name: "重复", Kind: org.UnitCounty, ParentID: pref.ID}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("duplicate code: %v", err)
	}
	if e := lastAudit(t, db, admin, "unit:"+itoa(int64(u.ID))); e.Action != org.AdminUnitCreate || field(t, e.After, "name") != "益阳高新区乡村振兴办" {
		t.Fatalf("create audit: %+v", e)
	}

	// A seeded unit renamed by an admin keeps its name when the tree is seeded again.
	heshan := mustUnit(t, db, "430903")
	name := "益阳市赫山区农业农村局（乡村振兴）"
	if _, err := org.UpdateUnit(ctx, db, admin, src, heshan.ID, org.UnitPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := org.SeedUnits(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := mustUnit(t, db, "430903"); got.Name != name {
		t.Fatalf("re-seed reverted the rename: %q", got.Name)
	}
	e := lastAudit(t, db, admin, "unit:"+itoa(int64(heshan.ID)))
	if field(t, e.Before, "name") != heshan.Name || field(t, e.After, "name") != name {
		t.Fatalf("rename audit: %s → %s", e.Before, e.After)
	}

	// An open ticket led by 赫山区 keeps it active; the empty new unit deactivates and deletes.
	tsvc := ticketing.NewService(db, ticketing.Options{})
	if _, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘", CallerPhone: "13807371234",
		RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "收入下降", Dispatch: true}); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := org.UpdateUnit(ctx, db, admin, src, heshan.ID, org.UnitPatch{Active: &off}); !errors.Is(err, org.ErrUnitInUse) {
		t.Fatalf("deactivated a unit with an open ticket: %v", err)
	}
	if err := org.DeleteUnit(ctx, db, admin, src, heshan.ID); !errors.Is(err, org.ErrUnitInUse) {
		t.Fatalf("deleted a unit with tickets: %v", err)
	}
	if got := mustUnit(t, db, "430903"); !got.Active {
		t.Fatal("the refused deactivation changed the unit")
	}
	if _, err := org.UpdateUnit(ctx, db, admin, src, u.ID, org.UnitPatch{Active: &off}); err != nil {
		t.Fatal(err)
	}
	if err := org.DeleteUnit(ctx, db, admin, src, u.ID); err != nil {
		t.Fatal(err)
	}
	e = lastAudit(t, db, admin, "unit:"+itoa(int64(u.ID)))
	if e.Action != org.AdminUnitDelete || string(e.After) != "null" || field(t, e.Before, "code") != "yiyang-hightech" {
		t.Fatalf("delete audit: %+v", e)
	}
}

// The first-run bootstrap creates one admin on an empty installation and never acts again.
func TestBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	if _, _, err := org.BootstrapAdmin(ctx, db, "root", "", "root1234", org.Source{}); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a password containing the username: %v", err)
	}
	u, created, err := org.BootstrapAdmin(ctx, db, "root", "", "first-secret", org.Source{Addr: "bootstrap"})
	if err != nil || !created || u.Role != org.RoleAdmin {
		t.Fatalf("bootstrap: %+v %v %v", u, created, err)
	}
	_, created, err = org.BootstrapAdmin(ctx, db, "root", "", "second-secret", org.Source{Addr: "bootstrap"})
	if err != nil || created {
		t.Fatalf("second bootstrap: created=%v %v", created, err)
	}
	if _, err := org.CheckPassword(ctx, db, "root", "first-secret"); err != nil {
		t.Fatalf("the bootstrap changed the first admin's password: %v", err)
	}
	e := lastAudit(t, db, u.Actor(), "user:"+itoa(int64(u.ID)))
	if e.Action != org.AdminUserBootstrap || e.ActorUsername != "system" || e.SourceAddr != "bootstrap" {
		t.Fatalf("bootstrap audit: %+v", e)
	}
	if _, err := org.CreateAdmin(ctx, db, "root2", "第二管理员", "another-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := org.CreateAdmin(ctx, db, "root2", "", "another-secret"); !errors.Is(err, org.ErrInvalid) {
		t.Fatalf("a taken username: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
