package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// World is the common test world: a fresh migrated database, a store on it
// with an encryption key, a fake clock and a strict recording bus, a
// running SMTP sink, and (unless WithoutTenant) a tenant with one sink
// adapter in a pool and the "welcome" sequence.
type World struct {
	T      testing.TB
	URL    string     // the database's connection string
	Key    string     // the encryption key Box was parsed from
	Box    *vault.Box // the store's vault
	Clock  *Clock     // the store's clock; nil with SystemClock
	Events *Recorder  // records every event Bus delivers
	Bus    *telemetry.Bus
	Store  *db.Store
	Sink   *smtpsink.Sink

	Tenant  string // "acme" unless WithTenant
	Adapter dripdrop.Adapter
	Pool    dripdrop.Pool
	APIKey  string // the tenant's first API key (its secret)
}

type config struct {
	url         string
	start       time.Time
	systemClock bool
	tenant      string
	noTenant    bool
	adapter     dripdrop.AdapterInput
	steps       []dripdrop.StepInput
	store       func(*db.Options)
}

// Option adjusts NewWorld.
type Option func(*config)

// WithURL builds the world on the database at url instead of a new
// dbtest.URL one (benchmarks pass dbtest.DurableURL).
func WithURL(url string) Option { return func(c *config) { c.url = url } }

// WithStart starts the clock at t instead of Tuesday.
func WithStart(t time.Time) Option { return func(c *config) { c.start = t } }

// SystemClock gives the store no clock (it reads the system's), for tests
// of real-time behaviour; World.Clock is nil.
func SystemClock() Option { return func(c *config) { c.systemClock = true } }

// WithTenant names the tenant NewWorld creates (default "acme").
func WithTenant(key string) Option { return func(c *config) { c.tenant = key } }

// WithoutTenant leaves the database without tenants.
func WithoutTenant() Option { return func(c *config) { c.noTenant = true } }

// WithAdapter sets the tenant's adapter input (limits, timezone, …);
// the kit fills in what points it at the sink (see AddTenant).
func WithAdapter(in dripdrop.AdapterInput) Option { return func(c *config) { c.adapter = in } }

// WithSteps sets the "welcome" sequence's steps (see Step).
func WithSteps(steps ...dripdrop.StepInput) Option { return func(c *config) { c.steps = steps } }

// WithStoreOptions adjusts the db.Options the store is opened with, after
// the kit set Vault, Clock and Telemetry.
func WithStoreOptions(f func(*db.Options)) Option { return func(c *config) { c.store = f } }

// NewWorld builds a world; everything it started stops when the test ends.
func NewWorld(t testing.TB, opts ...Option) *World {
	t.Helper()
	c := config{start: Tuesday, tenant: "acme"}
	for _, o := range opts {
		o(&c)
	}
	if c.url == "" {
		c.url = dbtest.URL(t)
	}
	w := &World{T: t, URL: c.url, Key: vault.GenerateKey(), Tenant: c.tenant}
	var err error
	if w.Box, err = vault.ParseKey(w.Key); err != nil {
		t.Fatal(err)
	}
	w.Events, w.Bus = NewRecorder(t)
	w.Events.UseDatabase(w.URL)
	dbOpts := db.Options{Vault: w.Box, Telemetry: w.Bus}
	if !c.systemClock {
		w.Clock = NewClock(c.start)
		dbOpts.Clock = w.Clock
	}
	if c.store != nil {
		c.store(&dbOpts)
	}
	if w.Store, err = db.Open(context.Background(), w.URL, dbOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Store.Close)
	if w.Sink, err = smtpsink.Start("127.0.0.1:0", smtpsink.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Sink.Close() })
	if !c.noTenant {
		w.APIKey, w.Adapter, w.Pool = w.AddTenant(w.Tenant, c.adapter, c.steps...)
	}
	return w
}

// AddTenant creates a tenant with one adapter sending to the world's sink
// in a pool "main", and the "welcome" sequence on that pool (every day,
// 00:00–23:59 UTC). It returns the tenant's API key secret, the adapter
// and the pool. In adapterIn, a nil Name, Provider, FromAddress or FromName
// becomes "Ada", "sink", "ada@acme.example.com", "Ada Lovelace"; the
// credentials always point at the sink. Without steps the sequence has
// DefaultSteps.
func (w *World) AddTenant(tenant string, adapterIn dripdrop.AdapterInput, steps ...dripdrop.StepInput) (string, dripdrop.Adapter, dripdrop.Pool) {
	t := w.T
	t.Helper()
	ctx := context.Background()
	_, key, err := w.Store.CreateTenant(ctx, tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	setDefault(&adapterIn.Name, "Ada")
	setDefault(&adapterIn.Provider, "sink")
	setDefault(&adapterIn.FromAddress, "ada@acme.example.com")
	setDefault(&adapterIn.FromName, "Ada Lovelace")
	adapterIn.Credentials = &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.Sink.Port(), TLS: "none"}
	adapter, err := w.Store.CreateAdapter(ctx, tenant, adapterIn)
	if err != nil {
		t.Fatal(err)
	}
	pn := "main"
	pool, err := w.Store.CreatePool(ctx, tenant, dripdrop.PoolInput{Name: &pn, Members: []dripdrop.MemberInput{{AdapterID: &adapter.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		steps = DefaultSteps()
	}
	seq, sname := "welcome", "Welcome"
	if _, err := w.Store.CreateSequence(ctx, tenant, dripdrop.SequenceInput{Key: &seq, Name: &sname, VersionInput: dripdrop.VersionInput{
		PoolID: &pool.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"}, Steps: steps,
	}}); err != nil {
		t.Fatal(err)
	}
	return key.Secret, adapter, pool
}

func setDefault(p **string, v string) {
	if *p == nil {
		*p = &v
	}
}

// DefaultSteps is the "welcome" sequence of NewWorld: three steps whose
// follow-ups are due at once.
func DefaultSteps() []dripdrop.StepInput {
	return []dripdrop.StepInput{
		Step("intro", "Hello {{first_name|there}}", "Hi {{first_name}}, first note.", 0),
		Step("bump", "", "Second note.", 0),
		Step("last", "", "Third note.", 0),
	}
}

// Step is a text step; an empty subject replies in the thread.
func Step(key, subject, body string, delaySeconds int64) dripdrop.StepInput {
	return dripdrop.StepInput{Key: &key, Subject: &subject, BodyText: &body, DelaySeconds: &delaySeconds}
}

// Some is a set, non-null optional int (adapter limits).
func Some(v int) dripdrop.Nullable[int] {
	return dripdrop.Nullable[int]{Set: true, Valid: true, Value: v}
}

// Enroll enrolls email, first name "Bob", with vars, into the world
// tenant's "welcome" sequence.
func (w *World) Enroll(email string, vars map[string]any) dripdrop.Enrollment {
	w.T.Helper()
	key, first := "welcome", "Bob"
	e, _, err := w.Store.Enroll(context.Background(), w.Tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email, FirstName: &first, Vars: vars}})
	if err != nil {
		w.T.Fatal(err)
	}
	return e
}

// Enrollment reads one of the world tenant's enrollments.
func (w *World) Enrollment(id uuid.UUID) dripdrop.Enrollment {
	w.T.Helper()
	e, err := w.Store.GetEnrollment(context.Background(), w.Tenant, id)
	if err != nil {
		w.T.Fatal(err)
	}
	return e
}
