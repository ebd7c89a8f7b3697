package api_test

import "testing"

// TestCitusAPI runs API tests on a distributed database (a Citus
// coordinator with two workers): the requests whose statements Citus
// plans differently from a single PostgreSQL — recipient checks (their
// cached domain verdicts), provider caps, the event feed with
// redelivery, API keys and their revocation. It skips without a Citus
// build.
func TestCitusAPI(t *testing.T) {
	t.Parallel()
	for name, run := range map[string]func(*testing.T){
		"recipient checks":         recipientChecksMX,
		"provider caps":            providerCapsAPI,
		"event feed and redeliver": eventFeedAndRedeliver,
		"auth and key revocation":  auth,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t)
		})
	}
}
