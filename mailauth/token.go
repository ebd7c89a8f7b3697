package mailauth

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// TokenSource hands out a current OAuth2 access token for an adapter whose
// auth is oauth2. It is the one seam between the loops that log in to a
// mailbox (SMTP sending, IMAP sync) and the token lifecycle: the
// implementation caches tokens in memory and sealed in PostgreSQL, refreshes
// them ahead of expiry with one replica at a time, and persists rotated
// refresh tokens. Callers never see a refresh token.
//
// Errors: ErrReconnectRequired when the grant is gone (revoked, password
// changed, consent withdrawn: the adapter needs a reconnect, retrying is
// pointless), ErrNotConnected when no refresh token was ever stored, and a
// *TokenError (Temporary) when the token endpoint is down, slow or answers
// something unexpected: the sender's failure, retried with backoff, never a
// recipient's.
type TokenSource interface {
	AccessToken(ctx context.Context, tenantKey string, adapterID uuid.UUID) (string, error)
}

// Invalidator is implemented by a TokenSource that can drop a cached access
// token a server refused although it had not expired (revoked early, wrong
// scope): the next AccessToken refreshes. Callers test for it with a type
// assertion after an authentication failure with a fresh token.
type Invalidator interface {
	Invalidate(ctx context.Context, tenantKey string, adapterID uuid.UUID, token string)
}

// ErrReconnectRequired: the authorization server refused the refresh token
// (invalid_grant). The adapter is moved to resting with reason
// reconnect_required by the token source; nothing retries until an
// operator reconnects it.
var ErrReconnectRequired = errors.New("mailauth: the mailbox must be reconnected (invalid_grant)")

// ErrNotConnected: the adapter authenticates by OAuth2 but has no refresh
// token yet (never connected).
var ErrNotConnected = errors.New("mailauth: the mailbox is not connected")

// TokenError is a failure to obtain a token that is not the grant's fault:
// the token endpoint refused the connection, timed out, answered 5xx or
// something unreadable. Reason is a short label safe to log and put in
// events (it never carries a token).
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string { return "mailauth: token endpoint: " + e.Reason }

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Temporary reports that a later attempt may succeed.
func (e *TokenError) Temporary() bool { return true }
