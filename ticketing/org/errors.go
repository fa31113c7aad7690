package org

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors callers branch on. The web layer maps them to HTTP statuses in one place; telephony maps
// call outcomes on its own.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")          // stale version, duplicate key, concurrent change
	ErrForbidden   = errors.New("forbidden")         // the actor's role or unit scope does not allow it
	ErrState       = errors.New("not allowed now")   // the action is not allowed in the current state
	ErrInvalid     = errors.New("invalid input")     // see *ValidationError for the fields
	ErrAuth        = errors.New("not authenticated") // no or bad credentials
	ErrRateLimited = errors.New("too many requests") // a per-user or per-address limit was reached
)

// ValidationError lists the fields at fault, each with a reason people can read.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Add records a fault; it returns the receiver so checks can chain.
func (e *ValidationError) Add(field, reason string) *ValidationError {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	if _, ok := e.Fields[field]; !ok {
		e.Fields[field] = reason
	}
	return e
}

// Err returns nil when no field is at fault, so a validator can end with `return v.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Invalid is a shorthand for a one-field validation error.
func Invalid(field, reason string) error {
	return (&ValidationError{}).Add(field, reason)
}

// StateError says an action is not allowed in the ticket's state or for the actor's role, and which actions
// are.
type StateError struct {
	Action  string
	State   string
	Allowed []string
	Reason  error // ErrState or ErrForbidden
}

func (e *StateError) Error() string {
	return fmt.Sprintf("%s not allowed in state %s (allowed: %s)", e.Action, e.State, strings.Join(e.Allowed, ", "))
}

func (e *StateError) Unwrap() error { return e.Reason }
