package api

import "time"

// SetStreamHeartbeat sets the event stream's heartbeat interval for a test
// and returns a function that restores it.
func SetStreamHeartbeat(d time.Duration) (restore func()) {
	old := streamHeartbeat
	streamHeartbeat = d
	return func() { streamHeartbeat = old }
}
