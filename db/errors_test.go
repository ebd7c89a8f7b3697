package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// TestErrorsCarryTheirOperation: an error leaving the store for a database
// reason names the operation that failed, once, and still is what it wraps
// (errors.Is, db.Unavailable); a domain error leaves unchanged, with its
// code, field and message, because the API shows its message to users.
func TestErrorsCarryTheirOperation(t *testing.T) {
	store := dbtest.Store(t, db.Options{})
	ctx := context.Background()
	if _, _, err := store.CreateTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	email, seq := "ann@example.com", "welcome"
	contact := dripdrop.ContactInput{Email: &email}

	t.Run("cancelled", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		for _, c := range []struct {
			op   string
			call func(context.Context) error
		}{
			{"enroll", func(ctx context.Context) error {
				_, _, err := store.Enroll(ctx, "acme", dripdrop.EnrollInput{SequenceKey: &seq, Contact: contact})
				return err
			}},
			{"enroll batch", func(ctx context.Context) error {
				_, err := store.EnrollBatch(ctx, "acme", seq, []dripdrop.ContactInput{contact})
				return err
			}},
			{"create api key", func(ctx context.Context) error {
				_, err := store.CreateAPIKey(ctx, "acme", "ci")
				return err
			}},
			{"list enrollments", func(ctx context.Context) error {
				_, _, err := store.SearchEnrollments(ctx, "acme", db.EnrollmentFilter{}, db.Page{Limit: 10})
				return err
			}},
			{"health sweep", func(ctx context.Context) error {
				_, err := store.HealthSweep(ctx, "acme")
				return err
			}},
			{"feed", func(ctx context.Context) error {
				_, err := store.Feed(ctx, "acme", 0, "", 10)
				return err
			}},
			{"release claim", func(ctx context.Context) error {
				return store.ReleaseClaim(ctx, "acme", uuid.New())
			}},
			{"ping", store.Ping},
		} {
			err := c.call(cancelled)
			if err == nil {
				t.Errorf("%s on a cancelled context: no error", c.op)
				continue
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.op+": ") {
				t.Errorf("%s: error %q does not start with its operation", c.op, msg)
			} else if strings.HasPrefix(strings.TrimPrefix(msg, c.op+": "), c.op+": ") {
				t.Errorf("%s: error %q names its operation twice", c.op, msg)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: errors.Is(%q, context.Canceled) = false", c.op, msg)
			}
			if code := dripdrop.ErrorCode(err); code != dripdrop.ECodeInternal {
				t.Errorf("%s: code %q, want %q", c.op, code, dripdrop.ECodeInternal)
			}
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		// Nothing listens on port 1: the outage detection of the API and the
		// loops (db.Unavailable) must see through the operation's prefix.
		const url = "postgres://dripdrop@127.0.0.1:1/dripdrop?connect_timeout=5"
		down, err := db.Open(ctx, url, db.Options{})
		if err != nil {
			t.Fatalf("open (connects lazily): %v", err)
		}
		defer down.Close()
		_, err = down.TenantKeys(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), "list tenants: ") || !db.Unavailable(err) {
			t.Errorf("tenant keys on an unreachable database: %v (unavailable %v)", err, db.Unavailable(err))
		}
		_, err = db.Migrate(ctx, url)
		if err == nil || !strings.HasPrefix(err.Error(), "migrate: connect: ") || !db.Unavailable(err) {
			t.Errorf("migrate on an unreachable database: %v (unavailable %v)", err, db.Unavailable(err))
		}
	})

	t.Run("domain", func(t *testing.T) {
		missing := "no-such-sequence"
		for _, c := range []struct {
			what                 string
			err                  error
			code, field, message string
		}{
			{"enroll into an unknown sequence", func() error {
				_, _, err := store.Enroll(ctx, "acme", dripdrop.EnrollInput{SequenceKey: &missing, Contact: contact})
				return err
			}(), dripdrop.ECodeNotFound, "sequence_key", "sequence not found"},
			{"batch into an unknown sequence", func() error {
				_, err := store.EnrollBatch(ctx, "acme", missing, []dripdrop.ContactInput{contact})
				return err
			}(), dripdrop.ECodeNotFound, "sequence_key", "sequence not found"},
			{"an unknown adapter", func() error {
				_, err := store.GetAdapter(ctx, "acme", uuid.New())
				return err
			}(), dripdrop.ECodeNotFound, "", "adapter not found"},
			{"a tenant that exists", func() error {
				_, _, err := store.CreateTenant(ctx, "acme", "Acme again")
				return err
			}(), dripdrop.ECodeAlreadyExists, "tenant_key", `tenant "acme" already exists`},
		} {
			de, ok := c.err.(*dripdrop.Error)
			if !ok {
				t.Errorf("%s: %T %v, want a bare *dripdrop.Error", c.what, c.err, c.err)
				continue
			}
			if de.Code != c.code || de.Field != c.field || de.Message != c.message {
				t.Errorf("%s: %+v, want code %q field %q message %q", c.what, *de, c.code, c.field, c.message)
			}
		}
	})
}
