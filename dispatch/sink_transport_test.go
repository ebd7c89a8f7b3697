package dispatch_test

import "github.com/dripdrop/dripdrop/dispatch"

// sinkTransport is a transport that may reach the test sink on loopback.
func sinkTransport() *dispatch.SMTPTransport {
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	return tr
}
