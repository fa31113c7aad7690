package org

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// DefaultTokenChannel is the Redis pub/sub channel that carries revoked token hashes (hex) to every process.
const DefaultTokenChannel = "hotline:tokens:revoked"

// RevokeToken marks a bearer token revoked in PostgreSQL (the truth), drops it from this process's cache, and
// announces its hash on the channel so every other process drops it too. A process that misses the message
// (Redis was down) still stops honouring the token when its cache entry ends, TokenCacheTTL later.
func RevokeToken(ctx context.Context, db DB, rdb *redis.Client, channel, token string) error {
	sum := sha256.Sum256([]byte(token))
	tag, err := db.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL`, sum[:])
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke token: %w", ErrAuth)
	}
	forgetToken(sum)
	if rdb != nil {
		if channel == "" {
			channel = DefaultTokenChannel
		}
		if err := rdb.Publish(ctx, channel, hex.EncodeToString(sum[:])).Err(); err != nil {
			return fmt.Errorf("revoke token: announce: %w", err)
		}
	}
	return nil
}

func forgetToken(sum [32]byte) {
	tokenCacheMu.Lock()
	delete(tokenCache, sum)
	tokenCacheMu.Unlock()
}

// WatchRevocations drops revoked tokens from this process's cache as other processes announce them. It runs until
// ctx ends; run one per process (cmd/hotline does, in its errgroup).
func WatchRevocations(ctx context.Context, rdb *redis.Client, channel string, log *slog.Logger) error {
	if channel == "" {
		channel = DefaultTokenChannel
	}
	sub := rdb.Subscribe(ctx, channel)
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			b, err := hex.DecodeString(m.Payload)
			if err != nil || len(b) != sha256.Size {
				log.Warn("token revocation: bad message", "payload_len", len(m.Payload))
				continue
			}
			var sum [32]byte
			copy(sum[:], b)
			forgetToken(sum)
		}
	}
}
