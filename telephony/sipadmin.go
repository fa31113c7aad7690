package telephony

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// SetSIPAccountAudited is SetSIPAccount on an admin's word: the account and its admin_audit row (SIP user, realm
// and skills before and after — never the password or HA1) are one transaction.
func SetSIPAccountAudited(ctx context.Context, db org.TxBeginner, a org.Actor, src org.Source, user org.UserID, sipUser, realm, password string, skills []string) error {
	if err := org.MayAdminister(a); err != nil {
		return err
	}
	type view struct {
		SIPUser string   `json:"sip_user"`
		Realm   string   `json:"realm"`
		Skills  []string `json:"skills"`
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var before *view
		var v view
		err := tx.QueryRow(ctx, `SELECT sip_user, realm, skills FROM sip_accounts WHERE user_id = $1`, int64(user)).Scan(&v.SIPUser, &v.Realm, &v.Skills)
		switch {
		case err == nil:
			before = &v
		case err != pgx.ErrNoRows:
			return err
		}
		if err := SetSIPAccount(ctx, tx, user, sipUser, realm, password, skills); err != nil {
			return err
		}
		if skills == nil {
			skills = []string{}
		}
		var bv any
		if before != nil {
			bv = before
		}
		return org.WriteAdminAudit(ctx, tx, a, src, org.AdminSIPAccount, "user:"+strconv.FormatInt(int64(user), 10), bv,
			view{SIPUser: sipUser, Realm: realm, Skills: skills})
	})
}
