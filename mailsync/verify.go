package mailsync

import (
	"context"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Verify logs in to a mailbox once, the way the sync loop does (same
// dialer, TLS and SASL choice), and logs out: the IMAP proof of an OAuth2
// grant after a connect (docs/mailboxes.md#proving-a-new-grant). It reports
// the stages connect, tls (implicit TLS), greeting, starttls, auth and
// logout; nothing is read from the mailbox. st must be normalized, with
// its username resolved.
func Verify(ctx context.Context, d IMAPDialer, st dripdrop.IMAPSettings, login Login) dripdrop.VerifyResult {
	res := dripdrop.VerifyResult{Host: st.Host, Port: st.Port, TLS: st.TLS}
	d.Trace = func(stage string, took time.Duration, err error) {
		vs := dripdrop.VerifyStage{Stage: stage, OK: err == nil, DurationMS: float64(took.Microseconds()) / 1000}
		if err != nil {
			vs.Error = err.Error()
			if res.FailedStage == "" {
				res.FailedStage = stage
			}
		}
		res.Stages = append(res.Stages, vs)
	}
	sess, err := d.Dial(ctx, st.Host, st.Port, st.TLS, st.TLSCAPEM, login)
	if err != nil {
		if res.FailedStage == "" { // a failure outside the traced stages (a bad CA bundle)
			res.FailedStage = "connect"
			res.Stages = append(res.Stages, dripdrop.VerifyStage{Stage: "connect", Error: err.Error()})
		}
		return res
	}
	start := time.Now()
	_ = sess.Close() // LOGOUT; a server that hangs up instead is no failure of the login
	res.Stages = append(res.Stages, dripdrop.VerifyStage{Stage: "logout", OK: true, DurationMS: float64(time.Since(start).Microseconds()) / 1000})
	res.OK = true
	return res
}
