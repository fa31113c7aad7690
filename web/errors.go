package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/exchange"
	"hotline/ticketing/org"
)

// apiError is the one JSON shape of every error: a stable code, a message, and where it applies the fields at
// fault or the actions that are allowed.
type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	Allowed []string          `json:"allowed_actions,omitempty"`
}

var (
	errNoRoute   = errors.New("no such endpoint")
	errTooLarge  = errors.New("request body too large")
	errMalformed = errors.New("malformed JSON body")
	errRateLimit = org.ErrRateLimited
	errNUL       = org.Invalid("input", "a NUL character (\\u0000) is not allowed in text")
	// errCSRF: a state-changing request authenticated by the session cookie came without the session's
	// X-CSRF-Token header (or with a wrong one).
	errCSRF = errors.New("missing or wrong X-CSRF-Token header")
	// errUnavailable: a dependency the answer needs (Redis for the login limiter) is unreachable; we refuse
	// rather than answer without it.
	errUnavailable = errors.New("temporarily unavailable")
	// errNotJSON: the browser sign-in takes only application/json, a type no cross-site form can send, so
	// another site cannot sign a visitor in under an account of its choosing (login CSRF).
	errNotJSON = errors.New("Content-Type must be application/json")
	errMethod  = errors.New("method not allowed here")
)

// status maps an error to its HTTP status and stable code. This is the only place that does so.
func status(err error) (int, string) {
	var se *org.StateError
	var xe *exchange.AuthError
	switch {
	case errors.As(err, &xe):
		// A platform's request that is not the platform's: the code says why (signature, window, nonce).
		return http.StatusUnauthorized, xe.Code
	case errors.Is(err, errNoRoute):
		return http.StatusNotFound, "no_route"
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "body_too_large"
	case errors.Is(err, attach.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "file_too_large"
	case errors.Is(err, attach.ErrFileType):
		return http.StatusUnsupportedMediaType, "unsupported_file_type"
	case errors.Is(err, errMalformed):
		return http.StatusBadRequest, "malformed_body"
	case errors.Is(err, errOverloaded):
		return http.StatusServiceUnavailable, "overloaded"
	case unavailable(err):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, errRateLimit):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, errNotJSON):
		return http.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, errCSRF):
		return http.StatusForbidden, "csrf"
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, ticketing.ErrIdempotencyKeyReused):
		return http.StatusUnprocessableEntity, "idempotency_key_reused"
	case isBadText(err):
		// The last line of defence against text PostgreSQL refuses (a NUL, an invalid byte sequence): the
		// client's input is at fault, not the server. decode and the NUL filter catch the usual cases first.
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, org.ErrAuth):
		return http.StatusUnauthorized, "unauthenticated"
	case errors.As(err, &se) && errors.Is(err, org.ErrState):
		return http.StatusConflict, "action_not_allowed"
	case errors.As(err, &se) && errors.Is(err, org.ErrForbidden):
		return http.StatusForbidden, "role_not_allowed"
	case errors.Is(err, org.ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, org.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, org.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, org.ErrInvalid):
		return http.StatusBadRequest, "invalid"
	}
	return http.StatusInternalServerError, "internal"
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code, name := status(err)
	body := apiError{Code: name, Message: err.Error()}
	var ve *org.ValidationError
	if errors.As(err, &ve) {
		body.Fields = ve.Fields
	}
	var se *org.StateError
	if errors.As(err, &se) {
		body.Allowed = se.Allowed
		if body.Allowed == nil {
			body.Allowed = []string{}
		}
	}
	if code == http.StatusServiceUnavailable {
		// Retryable: the request changed nothing (one transaction per change), so the client may send it again.
		w.Header().Set("Retry-After", "1")
		if name == "unavailable" {
			log.Warn("request refused: a backing service is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
			body.Message = "a backing service is unavailable or busy; retry shortly"
		}
	}
	if code == http.StatusForbidden {
		noteRefusal(r, err)
	}
	if isBadText(err) {
		body.Message = "invalid input: text with a NUL character or an invalid byte sequence"
	}
	if code == http.StatusInternalServerError {
		// Log once, here, where the error is handled; the client gets no internals.
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body.Message = "internal error"
	}
	writeJSON(w, code, body)
}

// writeJSON writes v as the answer. It returns nil so that a handler ends with `return writeJSON(...)`: once the
// status line is sent, an encoding error (the client went away) can no longer change the answer.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
	return nil
}

// maxBody is the largest JSON body accepted; imports have their own limit.
const maxBody = 1 << 20

// decode reads a JSON body into v, refusing unknown fields, trailing data and bodies over limit.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return org.Invalid(ute.Field, "wrong type: want "+ute.Type.String())
		}
		return errors.Join(errMalformed, err)
	}
	if dec.More() {
		return errMalformed
	}
	if hasNUL(reflect.ValueOf(v)) {
		return errNUL
	}
	return nil
}

// isBadText reports PostgreSQL's refusal of text: 22021 character_not_in_repertoire (a NUL, invalid UTF-8) and
// 22P05 untranslatable_character.
func isBadText(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "22021" || pg.Code == "22P05")
}

// hasNUL reports whether any string reachable from v holds a NUL: PostgreSQL text cannot, so such input is a 400
// here rather than a 500 from the database.
func hasNUL(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return strings.IndexByte(v.String(), 0) >= 0
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasNUL(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && hasNUL(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return false // bytes are not text
		}
		for i := 0; i < v.Len(); i++ {
			if hasNUL(v.Index(i)) {
				return true
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if hasNUL(it.Key()) || hasNUL(it.Value()) {
				return true
			}
		}
	}
	return false
}

// handler is the shape of every API handler: it writes its answer, or returns the error it ends with, so each
// handler ends in one place and status() stays the only mapping from errors to HTTP.
type handler func(w http.ResponseWriter, r *http.Request) error

// api adapts a handler to net/http, writing a returned error through writeError.
func (s *Server) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}
