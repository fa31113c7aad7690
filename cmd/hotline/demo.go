package main

import (
	"context"
	"fmt"
	"hotline/ticketing/org"
)

// demoPassword is the password of every demo user; `hotline up` prints it. Demo users exist only where
// HOTLINE_DEMO_DATA is on (the default of `hotline up`, never of `hotline serve`).
const demoPassword = "hotline-demo"

// loadDemo creates the demo users once (when there are no users yet) and runs the demo seeders (wire.go).
func (a *App) loadDemo(ctx context.Context) error {
	var n int
	if err := a.db.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	if n > 0 {
		return nil
	}
	unit := func(code string) org.UnitID {
		u, err := org.UnitByCode(ctx, a.db, code)
		if err != nil {
			return 0
		}
		return u.ID
	}
	users := []org.NewUser{
		{Username: "admin", DisplayName: "系统管理员", Role: org.RoleAdmin, UnitID: unit(org.CodeBureau),
			Permissions: []org.Permission{org.PermRevealPII, org.PermConfidential}},
		{Username: "agent1", DisplayName: "话务员 李娟", Role: org.RoleAgent, UnitID: unit(org.CodeDesk)},
		{Username: "agent2", DisplayName: "话务员 王芳", Role: org.RoleAgent, UnitID: unit(org.CodeDesk)},
		{Username: "dispatch1", DisplayName: "派单员 张伟", Role: org.RoleDispatcher, UnitID: unit(org.CodeDesk)},
		{Username: "heshan1", DisplayName: "赫山区承办人 刘洋", Role: org.RoleStaff, UnitID: unit("430903")},
		{Username: "heshanhead", DisplayName: "赫山区负责人 陈静", Role: org.RoleHead, UnitID: unit("430903")},
		{Username: "monitor1", DisplayName: "防贫监测处 周敏", Role: org.RoleStaff, UnitID: unit("div-monitoring")},
		{Username: "super1", DisplayName: "督查考核处 赵强", Role: org.RoleSupervisor, UnitID: unit("div-inspection")},
		{Username: "campaign1", DisplayName: "外呼管理 孙丽", Role: org.RoleCampaignManager, UnitID: unit("div-monitoring")},
	}
	for _, u := range users {
		u.Password = demoPassword
		if _, err := org.CreateUser(ctx, a.db, u); err != nil {
			return fmt.Errorf("demo user %s: %w", u.Username, err)
		}
	}
	for _, seed := range demoSeeders {
		if err := seed(ctx, a); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "demo users: admin, agent1, agent2, dispatch1, heshan1, heshanhead, monitor1, super1, campaign1 (password %q)\n", demoPassword)
	return nil
}
