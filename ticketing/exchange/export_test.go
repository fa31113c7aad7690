package exchange

import "context"

// SetAfterSend makes s run f after the platform answered and before the row's new state commits.
func SetAfterSend(s *Service, f func() error) { s.afterSend = f }

// RunChores runs the once-a-minute work (daily reconciliation, nonce expiry) now.
func RunChores(s *Service, ctx context.Context) { s.chores(ctx) }
