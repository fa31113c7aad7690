package sipua

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/redis/go-redis/v9"
)

// nonces issues and consumes digest nonces (RFC 2617, MD5, no qop — what common phones and diago's client
// speak). Unlike diago's DigestAuthServer, each nonce is single-use (GETDEL) and kept in Redis, so a captured
// Authorization header cannot be replayed, and a challenge issued by one process is accepted by another.
type nonces struct {
	rdb    *redis.Client
	prefix string
	ttl    time.Duration
}

func (n nonces) issue(ctx context.Context, scope string) (string, error) {
	b := make([]byte, 16)
	rand.Read(b)
	nonce := hex.EncodeToString(b)
	if err := n.rdb.Set(ctx, n.prefix+"sip:nonce:"+nonce, scope, n.ttl).Err(); err != nil {
		return "", fmt.Errorf("store nonce: %w", err)
	}
	return nonce, nil
}

// consume reports whether the nonce was issued for scope and not used yet; it can be used once only.
func (n nonces) consume(ctx context.Context, nonce, scope string) (bool, error) {
	if len(nonce) != 32 {
		return false, nil
	}
	v, err := n.rdb.GetDel(ctx, n.prefix+"sip:nonce:"+nonce).Result()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return v == scope, nil
}

// challenge returns a 401 (or 407 for proxies; we are a registrar and a UAS, so 401) with a fresh nonce.
func (n nonces) challenge(ctx context.Context, req *sip.Request, realm, scope string, stale bool) (*sip.Response, error) {
	nonce, err := n.issue(ctx, scope)
	if err != nil {
		return nil, err
	}
	c := digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: "MD5", Stale: stale}
	res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", c.String()))
	return res, nil
}

// credentials parses the Authorization header of req; nil when there is none or it is not digest.
func credentials(req *sip.Request) *digest.Credentials {
	h := req.GetHeader("Authorization")
	if h == nil {
		return nil
	}
	c, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return nil
	}
	return c
}

// verify checks a digest response against HA1 = md5(user:realm:password).
func verify(c *digest.Credentials, method, ha1 string) bool {
	ha2 := md5hex(method + ":" + c.URI)
	var want string
	if c.QOP == "auth" {
		want = md5hex(ha1 + ":" + c.Nonce + ":" + fmt.Sprintf("%08x", c.Nc) + ":" + c.Cnonce + ":auth:" + ha2)
	} else {
		want = md5hex(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) == 1
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
