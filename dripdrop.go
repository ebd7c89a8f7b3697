// Package dripdrop holds the domain types, errors and small shared contracts
// of the dripdrop sending engine. It has no I/O: storage lives in package db,
// HTTP in package api, and the engine loops in dispatch, health and ingest.
package dripdrop

import (
	"time"

	"github.com/google/uuid"
)

// Clock is the only source of "now" in policy and scheduler paths, so tests
// and simulations can move time.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now returns the current time truncated to microseconds (PostgreSQL precision).
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// NewID returns a time-ordered UUIDv7, the id of every row the engine creates.
func NewID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		// uuid.NewV7 only fails when the system random source fails.
		panic("dripdrop: cannot generate id: " + err.Error())
	}
	return id
}

// NewMessageID returns a new RFC 5322 Message-ID for a message from the
// address from: "<uuidv7@domain of from>" with the angle brackets (a
// from without a domain uses "dripdrop.local").
func NewMessageID(from string) string {
	domain := EmailDomain(from)
	if domain == "" {
		domain = "dripdrop.local"
	}
	return "<" + NewID().String() + "@" + domain + ">"
}
