package ui

import "time"

// SetFeedKeyCheck shortens how often an open live feed rechecks its key,
// returning the function that restores it.
func SetFeedKeyCheck(d time.Duration) (restore func()) {
	old := feedKeyCheck
	feedKeyCheck = d
	return func() { feedKeyCheck = old }
}
