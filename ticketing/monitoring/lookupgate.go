package monitoring

import (
	"context"
	"fmt"
	"strings"

	"hotline/ticketing/org"
	"hotline/ticketing/phone"
)

// Limiter counts an actor's exact-match look-ups of personal data; Allow returns org.ErrRateLimited past the
// limit. The Redis implementation (org.RateLimiter) shares the count across processes.
type Limiter interface {
	Allow(ctx context.Context, key string) error
}

// lookupAllowed is the gate in front of every exact-match search by a full ID or phone number (household
// search, export filter, caller lookup): the lookup_pii permission, then the per-user rate limit.
func (s *Service) lookupAllowed(ctx context.Context, a org.Actor) error {
	if !a.Can(org.PermLookupPII) {
		return fmt.Errorf("look up by a full ID or phone number: %w: needs the %s permission", org.ErrForbidden, org.PermLookupPII)
	}
	if s.limiter != nil {
		if err := s.limiter.Allow(ctx, fmt.Sprintf("pii_lookup:%d", a.UserID)); err != nil {
			return err
		}
	}
	return nil
}

// auditLookup records who looked up which number (masked) and which households it found.
func (s *Service) auditLookup(ctx context.Context, db org.DB, a org.Actor, q Query, found []org.HouseholdID) error {
	detail := map[string]any{"households": found}
	if p := strings.TrimSpace(q.Phone); p != "" {
		detail["phone"] = maskRaw(p)
	}
	if id := strings.TrimSpace(q.IDNumber); id != "" {
		detail["id_number"] = maskID(id)
	}
	return org.Audit(ctx, db, a, org.AuditEntry{Kind: org.AuditLookup, Object: "households", Detail: detail})
}

func maskRaw(p string) string {
	if n, _, err := phone.Normalize(p); err == nil {
		return phone.Mask(n)
	}
	return "(invalid)"
}

func maskID(id string) string {
	if len(id) == 18 {
		return id[:6] + "********" + id[14:]
	}
	return "(invalid)"
}
