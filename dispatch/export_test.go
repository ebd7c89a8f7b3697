package dispatch

// The claim batching of Run, for the hot-path benchmark's baseline loop
// (which must claim the same way).
const BatchWait = batchWait

// MinClaim is how many sends must end before Run claims again while
// others are in flight, for a dispatcher with the given workers.
func MinClaim(workers int) int { return (&Dispatcher{cfg: Config{Workers: workers}}).minClaim() }
