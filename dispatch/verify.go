package dispatch

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Verify checks an adapter's SMTP settings the way a send would start —
// connect, greeting, EHLO, STARTTLS (as the tls setting asks), EHLO again,
// AUTH — and sends nothing (docs/sending.md). The adapter's HELO name is
// said in both EHLOs and its TLS trust settings apply. Each stage is reported with
// its duration and the server's reply; the check stops at the first failed
// stage. dialer (e.g. an outbound-destination guard's) and tlsConf may be
// nil.
func Verify(ctx context.Context, cr dripdrop.SMTPCredentials, from string, dialer *net.Dialer, tlsConf *tls.Config) dripdrop.VerifyResult {
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
	if cr.Username != "" {
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
