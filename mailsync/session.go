package mailsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"

	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/mailauth"
)

// Session is the IMAP conversation mailbox sync needs, behind an interface
// of ours (the implementation speaks go-imap v1). Every read is read-only:
// folders are opened with EXAMINE and bodies fetched with BODY.PEEK, so the
// mailbox never changes.
type Session interface {
	// SpecialUse returns the folder carrying a special-use attribute
	// (`\Junk`), or "" when the server has none.
	SpecialUse(attr string) (string, error)
	// Status reads a folder's UIDVALIDITY, UIDNEXT, message count and
	// (with CONDSTORE) HIGHESTMODSEQ without opening it.
	Status(folder string) (Status, error)
	// Examine opens a folder read-only.
	Examine(folder string) (Status, error)
	// SearchSince lists the UIDs of the open folder received since t.
	SearchSince(t time.Time) ([]uint32, error)
	// Envelopes reads the minimal fetch of UIDs from:* (from > 0) or of
	// the given UIDs.
	Envelopes(from uint32, uids []uint32) ([]Envelope, error)
	// Raw reads one whole message of the open folder (BODY.PEEK[]).
	Raw(uid uint32) ([]byte, error)
	// HeaderFields reads only the named header fields
	// (BODY.PEEK[HEADER.FIELDS (…)]) of the newest n messages of the open
	// folder, or (n = 0) of the given UIDs.
	HeaderFields(n uint32, uids []uint32, fields []string) ([]Headers, error)
	// Unselect leaves the open folder (CLOSE of a folder opened read-only
	// removes nothing), so the next poll's STATUS is not of the selected
	// folder, which servers may answer from a stale view.
	Unselect() error
	// Noop checks the connection is alive.
	Noop() error
	Close() error
}

// Login says how to log in to a mailbox.
type Login struct {
	Username string
	Password string // password auth
	// Token, when set, is an OAuth2 access token: XOAUTH2 or OAUTHBEARER,
	// whichever the server offers.
	Token string
}

// Dialer opens sessions; the default is IMAPDialer.
type Dialer interface {
	Dial(ctx context.Context, host string, port int, tlsMode, caPEM string, login Login) (Session, error)
}

// IMAPDialer dials real IMAP servers with go-imap v1.
type IMAPDialer struct {
	// Timeout bounds the dial and every command; default 60 s.
	Timeout time.Duration
	// DialContext, when set, dials the TCP connection (the engine passes
	// its outbound-destination guard here).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Trace, when set, is told each stage of Dial as it ends (connect,
	// tls, greeting, starttls, auth) with its duration and error; Verify
	// reports them.
	Trace func(stage string, took time.Duration, err error)
}

// stage reports one finished stage of a dial to Trace.
func (d IMAPDialer) stage(name string, start time.Time, err error) {
	if d.Trace != nil {
		d.Trace(name, time.Since(start), err)
	}
}

// Dial connects, upgrades to TLS as configured and logs in.
func (d IMAPDialer) Dial(ctx context.Context, host string, port int, tlsMode, caPEM string, login Login) (Session, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	dial := d.DialContext
	if dial == nil {
		nd := &net.Dialer{Timeout: timeout}
		dial = nd.DialContext
	}
	start := time.Now()
	raw, err := dial(ctx, "tcp", addr)
	d.stage("connect", start, err)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			raw.Close()
			return nil, errors.New("tls: imap.tls_ca_pem holds no certificate")
		}
		tc.RootCAs = pool
	}
	conn := raw
	if tlsMode == "tls" {
		tconn := tls.Client(raw, tc)
		_ = tconn.SetDeadline(time.Now().Add(timeout))
		start = time.Now()
		err := tconn.HandshakeContext(ctx)
		d.stage("tls", start, err)
		if err != nil {
			raw.Close()
			return nil, err
		}
		_ = tconn.SetDeadline(time.Time{})
		conn = tconn
	}
	sn := &sniffer{Conn: conn}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	start = time.Now()
	c, err := client.New(sn)
	d.stage("greeting", start, err)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c.Timeout = timeout
	s := &imapSession{c: c, sn: sn}
	if tlsMode == "starttls" {
		start = time.Now()
		err := s.wrap(c.StartTLS(tc))
		d.stage("starttls", start, err)
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	start = time.Now()
	if err := s.login(c, login, host, port); err != nil {
		d.stage("auth", start, err)
		s.Close()
		return nil, err
	}
	d.stage("auth", start, nil)
	if ok, _ := c.Support("CONDSTORE"); ok {
		s.condstore = true
	}
	s.idle()
	return s, nil
}

// login authenticates: OAUTHBEARER or XOAUTH2 (mailauth.Client picks by
// what the server offers) with a token, else LOGIN with the password.
func (s *imapSession) login(c *client.Client, login Login, host string, port int) error {
	if login.Token != "" {
		cl, err := mailauth.Client(mailauth.Offers(c.SupportAuth), login.Username, login.Token, host, port)
		if err != nil {
			return err
		}
		if err := c.Authenticate(cl); err != nil {
			return s.wrap(fmt.Errorf("authenticate failed: %w", err))
		}
		return nil
	}
	if err := c.Login(login.Username, login.Password); err != nil {
		return s.wrap(fmt.Errorf("login failed: %w", err))
	}
	return nil
}

// sniffer remembers the last tagged NO/BAD line the server sent, because
// go-imap v1's errors carry only the text, not the response code
// ([THROTTLED], [LIMIT]) that says the server throttles us.
type sniffer struct {
	net.Conn
	mu      sync.Mutex
	atStart bool
	started bool
	cur     []byte
	last    string
}

func (s *sniffer) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	s.mu.Lock()
	if !s.started {
		s.started, s.atStart = true, true
	}
	p := b[:n]
	for len(p) > 0 {
		if s.atStart {
			s.atStart = false
			if p[0] != '*' && p[0] != '+' {
				s.cur = s.cur[:0]
				s.cur = append(s.cur, 0) // marks a tagged line being captured
			}
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if len(s.cur) > 0 && len(s.cur) < 512 {
			room := 512 - len(s.cur)
			if len(chunk) < room {
				room = len(chunk)
			}
			s.cur = append(s.cur, chunk[:room]...)
		}
		if i < 0 {
			break
		}
		if len(s.cur) > 0 {
			line := strings.TrimSpace(string(s.cur[1:]))
			if f := strings.Fields(line); len(f) >= 2 && (strings.EqualFold(f[1], "NO") || strings.EqualFold(f[1], "BAD")) {
				s.last = line
			}
			s.cur = s.cur[:0]
		}
		s.atStart = true
		p = p[i+1:]
	}
	s.mu.Unlock()
	return n, err
}

func (s *sniffer) lastFailure() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.last
	s.last = ""
	return l
}

type imapSession struct {
	c         *client.Client
	sn        *sniffer
	condstore bool
}

// idle clears the connection's deadline after a command: go-imap v1 sets
// one per command and never clears it, so left in place it would cut the
// connection while it waits for the next poll. Every method defers it.
func (s *imapSession) idle() { _ = s.sn.Conn.SetDeadline(time.Time{}) }

// wrap adds the server's tagged reply (with its response code) to err.
func (s *imapSession) wrap(err error) error {
	if err == nil {
		return nil
	}
	if l := s.sn.lastFailure(); l != "" {
		if _, rest, ok := strings.Cut(l, " "); ok {
			return fmt.Errorf("%w (server: %s)", err, ingest.Truncate(rest, 300))
		}
	}
	return err
}

func (s *imapSession) SpecialUse(attr string) (string, error) {
	defer s.idle()
	ch := make(chan *imap.MailboxInfo, 16)
	done := make(chan error, 1)
	go func() { done <- s.c.List("", "*", ch) }()
	found := ""
	for mi := range ch {
		for _, a := range mi.Attributes {
			if strings.EqualFold(a, attr) && found == "" {
				found = mi.Name
			}
		}
	}
	return found, s.wrap(<-done)
}

var statusItems = []imap.StatusItem{imap.StatusMessages, imap.StatusUidNext, imap.StatusUidValidity}

func (s *imapSession) Status(folder string) (Status, error) {
	defer s.idle()
	items := statusItems
	if s.condstore {
		items = append(append([]imap.StatusItem{}, statusItems...), "HIGHESTMODSEQ")
	}
	st, err := s.c.Status(folder, items)
	if err != nil {
		return Status{}, s.wrap(err)
	}
	return toStatus(st), nil
}

func toStatus(st *imap.MailboxStatus) Status {
	out := Status{UIDValidity: st.UidValidity, UIDNext: st.UidNext, Messages: st.Messages}
	if v, ok := st.Items["HIGHESTMODSEQ"]; ok && v != nil {
		switch x := v.(type) {
		case string:
			out.HighestModSeq, _ = strconv.ParseUint(x, 10, 64)
		case uint32:
			out.HighestModSeq = uint64(x)
		}
	}
	return out
}

func (s *imapSession) Examine(folder string) (Status, error) {
	defer s.idle()
	st, err := s.c.Select(folder, true)
	if err != nil {
		return Status{}, s.wrap(err)
	}
	return toStatus(st), nil
}

func (s *imapSession) SearchSince(t time.Time) ([]uint32, error) {
	defer s.idle()
	crit := imap.NewSearchCriteria()
	crit.Since = t
	uids, err := s.c.UidSearch(crit)
	return uids, s.wrap(err)
}

var headerSection = &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier, Fields: HeaderFields}, Peek: true}

func (s *imapSession) Envelopes(from uint32, uids []uint32) ([]Envelope, error) {
	defer s.idle()
	set := new(imap.SeqSet)
	if from > 0 {
		set.AddRange(from, 0)
	} else {
		if len(uids) == 0 {
			return nil, nil
		}
		set.AddNum(uids...)
	}
	items := []imap.FetchItem{imap.FetchUid, imap.FetchEnvelope, imap.FetchBodyStructure, imap.FetchRFC822Size, headerSection.FetchItem()}
	ch := make(chan *imap.Message, 64)
	done := make(chan error, 1)
	go func() { done <- s.c.UidFetch(set, items, ch) }()
	var out []Envelope
	for m := range ch {
		if from > 0 && m.Uid < from {
			continue // "n:*" includes the highest UID even when below n
		}
		out = append(out, envelopeOf(m))
	}
	return out, s.wrap(<-done)
}

func envelopeOf(m *imap.Message) Envelope {
	e := Envelope{UID: m.Uid, Size: m.Size}
	if env := m.Envelope; env != nil {
		e.MessageID = ingest.NormalizeID(env.MessageId)
		for _, id := range ingest.SplitIDs(env.InReplyTo) {
			if id = ingest.NormalizeID(id); id != "" {
				e.InReplyTo = append(e.InReplyTo, id)
			}
		}
		e.Subject = env.Subject
		if len(env.From) > 0 && env.From[0] != nil {
			e.From = strings.ToLower(env.From[0].Address())
		}
		if len(env.Sender) > 0 && env.Sender[0] != nil {
			if a := strings.ToLower(env.Sender[0].Address()); a != e.From {
				e.Sender = a
			}
		}
	}
	if bs := m.BodyStructure; bs != nil {
		e.MIMEType = strings.ToLower(bs.MIMEType + "/" + bs.MIMESubType)
		for k, v := range bs.Params {
			if strings.EqualFold(k, "report-type") {
				e.ReportType = strings.ToLower(v)
			}
		}
	}
	for sec, lit := range m.Body {
		if sec.Specifier == imap.HeaderSpecifier && lit != nil {
			b, _ := io.ReadAll(io.LimitReader(lit, maxHeaderBlock))
			sender := e.Sender
			ReadHeaderFields(&e, b)
			if sender != "" && e.Sender == "" {
				e.Sender = sender
			}
		}
	}
	return e
}

// Headers is the header block of one message as HeaderFields read it.
type Headers struct {
	UID   uint32
	Block []byte
}

func (s *imapSession) HeaderFields(n uint32, uids []uint32, fields []string) ([]Headers, error) {
	defer s.idle()
	set := new(imap.SeqSet)
	if n > 0 {
		mb := s.c.Mailbox()
		if mb == nil || mb.Messages == 0 {
			return nil, nil
		}
		set.AddRange(max(1, mb.Messages-min(n, mb.Messages)+1), mb.Messages)
	} else {
		if len(uids) == 0 {
			return nil, nil
		}
		set.AddNum(uids...)
	}
	sec := &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier, Fields: fields}, Peek: true}
	items := []imap.FetchItem{imap.FetchUid, sec.FetchItem()}
	ch := make(chan *imap.Message, 16)
	done := make(chan error, 1)
	go func() {
		if n > 0 {
			done <- s.c.Fetch(set, items, ch)
		} else {
			done <- s.c.UidFetch(set, items, ch)
		}
	}()
	var out []Headers
	for m := range ch {
		h := Headers{UID: m.Uid}
		for sn, lit := range m.Body {
			if sn.Specifier == imap.HeaderSpecifier && lit != nil {
				h.Block, _ = io.ReadAll(io.LimitReader(lit, maxHeaderBlock))
			}
		}
		out = append(out, h)
	}
	return out, s.wrap(<-done)
}

var wholeSection = &imap.BodySectionName{Peek: true}

func (s *imapSession) Raw(uid uint32) ([]byte, error) {
	defer s.idle()
	set := new(imap.SeqSet)
	set.AddNum(uid)
	ch := make(chan *imap.Message, 1)
	done := make(chan error, 1)
	go func() { done <- s.c.UidFetch(set, []imap.FetchItem{imap.FetchUid, wholeSection.FetchItem()}, ch) }()
	var raw []byte
	var rerr error
	for m := range ch {
		if m.Uid != uid {
			continue
		}
		for _, lit := range m.Body {
			if lit == nil {
				continue
			}
			if lit.Len() > MaxMessageSize {
				rerr = ingest.ErrTooLarge
				_, _ = io.Copy(io.Discard, lit)
				continue
			}
			raw, rerr = io.ReadAll(lit)
		}
	}
	if err := <-done; err != nil {
		return nil, s.wrap(err)
	}
	if rerr != nil {
		return nil, rerr
	}
	if raw == nil {
		return nil, fmt.Errorf("imap: message %d vanished", uid)
	}
	return raw, nil
}

func (s *imapSession) Unselect() error {
	defer s.idle()
	if s.c.Mailbox() == nil {
		return nil
	}
	if !s.c.Mailbox().ReadOnly {
		// Never CLOSE a folder opened read-write: CLOSE expunges.
		return errors.New("imap: refusing to CLOSE a folder not opened read-only")
	}
	return s.wrap(s.c.Close())
}

func (s *imapSession) Noop() error {
	defer s.idle()
	return s.wrap(s.c.Noop())
}

func (s *imapSession) Close() error {
	done := make(chan struct{})
	go func() {
		_ = s.c.Logout()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = s.c.Terminate()
	}
	return nil
}
