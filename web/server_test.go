package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"hotline/deploy/testenv"
)

func TestReadyz(t *testing.T) {
	db := testenv.DB(t)
	rdb, _ := testenv.Redis(t)
	check := func(h http.Handler, want int, wantCheck string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != want {
			t.Fatalf("readyz %d, want %d: %s", rec.Code, want, rec.Body)
		}
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		if wantCheck != "" && body.Checks[wantCheck] == "ok" {
			t.Fatalf("check %s reported ok: %s", wantCheck, rec.Body)
		}
	}
	check(New(Deps{DB: db, Redis: rdb}), 200, "")

	// Redis unreachable.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	check(New(Deps{DB: db, Redis: dead}), 503, "redis")

	// Schema out of date: an empty database.
	empty, err := pgxpool.New(context.Background(), testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	check(New(Deps{DB: empty, Redis: rdb}), 503, "schema")
}

func TestUnknownAPIPathIsJSON404(t *testing.T) {
	h := New(Deps{DB: testenv.DB(t)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/nothing-here", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"code":"no_route"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestBadTokenIs401(t *testing.T) {
	h := New(Deps{DB: testenv.DB(t)})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer hl_forged")
	h.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), `"code":"unauthenticated"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestConsoleIsServedInChinese(t *testing.T) {
	h := New(Deps{DB: testenv.DB(t)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `lang="zh-CN"`) || !strings.Contains(rec.Body.String(), "工单") {
		t.Fatalf("%d %.200s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(rec.Body.String(), `"code":"method_not_allowed"`) {
		t.Fatalf("POST to the console: %d %s", rec.Code, rec.Body)
	}
}
