package dispatch

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/mailauth"
)

// Verify checks an adapter's SMTP settings the way a send would start —
// connect, greeting, EHLO, STARTTLS (as the tls setting asks), EHLO again,
// AUTH — and sends nothing (docs/sending.md). The adapter's HELO name is
// said in both EHLOs and its TLS trust settings apply. Each stage is reported with
// its duration and the server's reply; the check stops at the first failed
// stage. dialer (e.g. an outbound-destination guard's) and tlsConf may be
// nil. With an OAuth2 login (WithOAuth2) a token stage comes first and
// AUTH uses XOAUTH2 or OAUTHBEARER, as the server offers.
func Verify(ctx context.Context, cr dripdrop.SMTPCredentials, from string, dialer *net.Dialer, tlsConf *tls.Config, opts ...VerifyOption) dripdrop.VerifyResult {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	mode := cr.TLS
	if mode == "" {
		mode = "starttls"
	}
	res := dripdrop.VerifyResult{Host: cr.Host, Port: cr.Port, TLS: mode, Stages: []dripdrop.VerifyStage{}}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	conf, confErr := TLSConfig(tlsConf, cr) // the adapter's trust settings, as a send uses them
	stage := func(name string, fn func(st *dripdrop.VerifyStage) error) bool {
		st := dripdrop.VerifyStage{Stage: name}
		start := time.Now()
		err := fn(&st)
		st.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			var pe *textproto.Error
			if errors.As(err, &pe) {
				st.Code, st.Reply = pe.Code, pe.Msg
			} else {
				st.Error = err.Error()
			}
			res.FailedStage = name
		}
		st.OK = err == nil
		res.Stages = append(res.Stages, st)
		return st.OK
	}

	if confErr != nil {
		stage("tls", func(*dripdrop.VerifyStage) error { return confErr })
		return res
	}
	var token string
	if o.token != nil {
		// The token before anything else: a dead grant or a token endpoint
		// that is down is found without touching the mail server.
		if !stage("token", func(st *dripdrop.VerifyStage) error {
			tok, err := o.token(ctx)
			if err != nil {
				return errors.New(TokenFailure(err).Message)
			}
			token = tok
			return nil
		}) {
			return res
		}
	}
	addr := net.JoinHostPort(cr.Host, strconv.Itoa(cr.Port))
	var conn net.Conn
	if !stage("connect", func(*dripdrop.VerifyStage) error {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if mode == "tls" {
			tc := tls.Client(c, conf)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return err
			}
			c = tc
		}
		conn = c
		return nil
	}) {
		return res
	}
	tp := textproto.NewConn(conn)
	defer tp.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	cmd := func(st *dripdrop.VerifyStage, expect int, format string, args ...any) error {
		if format != "" {
			if _, err := tp.Cmd(format, args...); err != nil {
				return err
			}
		}
		code, msg, err := tp.ReadResponse(expect)
		st.Code, st.Reply = code, msg
		return err
	}
	helo := cr.HELO
	if helo == "" {
		helo = Domain(from)
	}
	var ext map[string]string
	ehlo := func(st *dripdrop.VerifyStage) error {
		if err := cmd(st, 250, "EHLO %s", helo); err != nil {
			return err
		}
		ext = map[string]string{}
		for i, line := range strings.Split(st.Reply, "\n") {
			if i == 0 {
				continue
			}
			k, v, _ := strings.Cut(line, " ")
			ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if !stage("greeting", func(st *dripdrop.VerifyStage) error { return cmd(st, 220, "") }) || !stage("ehlo", ehlo) {
		return res
	}
	if mode == "starttls" || mode == "require_starttls" {
		_, offered := ext["STARTTLS"]
		if offered || mode == "require_starttls" {
			if !stage("starttls", func(st *dripdrop.VerifyStage) error {
				if err := cmd(st, 220, "STARTTLS"); err != nil {
					return err
				}
				tc := tls.Client(conn, conf)
				if err := tc.HandshakeContext(ctx); err != nil {
					return err
				}
				conn = tc
				tp = textproto.NewConn(tc)
				return nil
			}) || !stage("ehlo_tls", ehlo) {
				return res
			}
		}
	}
	if o.token != nil {
		if !stage("auth", func(st *dripdrop.VerifyStage) error {
			mechs := strings.Fields(strings.ToUpper(ext["AUTH"]))
			cl, err := mailauth.Client(func(m string) bool { return slices.Contains(mechs, m) }, o.user, token, cr.Host, cr.Port)
			if err != nil {
				return err
			}
			mech, ir, err := cl.Start()
			if err != nil {
				return err
			}
			if err := cmd(st, 0, "AUTH %s %s", mech, base64.StdEncoding.EncodeToString(ir)); err != nil {
				return err
			}
			for st.Code == 334 {
				// A challenge: XOAUTH2's JSON error report, or OAUTHBEARER's.
				chal, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Reply))
				resp, err := cl.Next(chal)
				if err != nil {
					return err
				}
				if err := cmd(st, 0, "%s", base64.StdEncoding.EncodeToString(resp)); err != nil {
					return err
				}
			}
			if st.Code != 235 {
				return &textproto.Error{Code: st.Code, Msg: st.Reply}
			}
			return nil
		}) {
			return res
		}
	} else if cr.Username != "" {
		if !stage("auth", func(st *dripdrop.VerifyStage) error {
			mechs := strings.Fields(strings.ToUpper(ext["AUTH"]))
			has := func(m string) bool {
				for _, x := range mechs {
					if x == m {
						return true
					}
				}
				return false
			}
			switch {
			case has("PLAIN"):
				ir := base64.StdEncoding.EncodeToString([]byte("\x00" + cr.Username + "\x00" + cr.Password))
				return cmd(st, 235, "AUTH PLAIN %s", ir)
			case has("LOGIN"):
				if err := cmd(st, 334, "AUTH LOGIN"); err != nil {
					return err
				}
				if err := cmd(st, 334, "%s", base64.StdEncoding.EncodeToString([]byte(cr.Username))); err != nil {
					return err
				}
				return cmd(st, 235, "%s", base64.StdEncoding.EncodeToString([]byte(cr.Password)))
			}
			return errors.New("the server offers neither AUTH PLAIN nor AUTH LOGIN")
		}) {
			return res
		}
	}
	res.OK = true
	if !stage("quit", func(st *dripdrop.VerifyStage) error { return cmd(st, 221, "QUIT") }) {
		res.FailedStage = "" // the check passed; a rude goodbye changes nothing
	}
	return res
}

// VerifyOption changes how Verify logs in.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	user  string
	token func(ctx context.Context) (string, error)
}

// WithOAuth2 logs in as user with the access token token returns (a
// mailauth.TokenSource's, for an oauth2 adapter): Verify reports a token
// stage before AUTH.
func WithOAuth2(user string, token func(ctx context.Context) (string, error)) VerifyOption {
	return func(o *verifyOptions) { o.user, o.token = user, token }
}
