// Package testkit is the test scaffolding the module's tests share: one
// fake clock, one recorder of telemetry events (in-process bus and the
// tenant's outbox feed) and one builder of the common test world (a fresh
// migrated database, a store, an SMTP sink and a tenant with a sending
// pool and a sequence).
//
// It is imported by _test.go files only; production code never imports it
// (it is internal to the module, and it starts servers and databases).
package testkit
