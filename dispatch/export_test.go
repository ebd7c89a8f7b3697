package dispatch

import (
	"strings"

	"github.com/google/uuid"
)

// The claim batching of Run, for the hot-path benchmark's baseline loop
// (which must claim the same way).
const BatchWait = batchWait

// MinClaim is how many sends must end before Run claims again while
// others are in flight, for a dispatcher with the given workers.
func MinClaim(workers int) int { return (&Dispatcher{cfg: Config{Workers: workers}}).minClaim() }

// NewMessageID returns "<uuidv7@domain>" (the engine makes its
// Message-IDs in db at reservation; tests build messages with this).
func NewMessageID(domain string) string {
	id, err := uuid.NewV7()
	if err != nil {
		panic(err)
	}
	if domain == "" {
		domain = "dripdrop.local"
	}
	return "<" + id.String() + "@" + strings.ToLower(domain) + ">"
}
