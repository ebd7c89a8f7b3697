// Package imaptest is an in-memory IMAP server for tests and `dripdrop dev`,
// built on go-imap v1's server with a small concurrency-safe backend of its
// own: users with passwords, folders (INBOX, Junk with the special-use
// \Junk attribute, more with AddFolder), a log of the last FETCHes,
// settable UIDVALIDITY, and faults to inject — NO replies with a response
// code ([THROTTLED], [LIMIT]) for LOGIN, STATUS, SELECT or
// FETCH, and connections cut after a number of bytes of a FETCH response.
// It counts logins and open connections so tests can check connection reuse.
package imaptest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend"
	"github.com/emersion/go-imap/backend/backendutil"
	"github.com/emersion/go-imap/server"
	"github.com/emersion/go-message/textproto"
)

// Fault is a reply the server gives instead of doing the command.
type Fault struct {
	Code string // response code, e.g. "THROTTLED", "LIMIT"
	Info string // text, e.g. "Too many simultaneous connections"
	// Times is how many commands get the fault (0 = every one until
	// cleared).
	Times int
}

// Server is a running in-memory IMAP server on loopback.
type Server struct {
	Addr string

	be   *memBackend
	srv  *server.Server
	ln   net.Listener
	open atomic.Int64
	// Logins counts successful logins.
	logins atomic.Int64
	// cutFetch, when > 0, closes the next connection that sends a FETCH
	// after that many response bytes.
	cutFetch atomic.Int64
	cuts     atomic.Int64
}

// Start starts a server on 127.0.0.1 (a free port). Close stops it.
func Start() (*Server, error) { return StartAt("127.0.0.1:0") }

// StartAt starts a server listening on addr.
func StartAt(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), be: &memBackend{users: map[string]*memUser{}, faults: map[string]*Fault{}}}
	s.be.srv = s
	s.srv = server.New(s.be)
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = nopLogger{}
	s.ln = ln
	go func() { _ = s.srv.Serve(&countingListener{Listener: ln, s: s}) }()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() error { return s.srv.Close() }

// Open is the number of client connections open now.
func (s *Server) Open() int64 { return s.open.Load() }

// Logins is the number of successful logins so far.
func (s *Server) Logins() int64 { return s.logins.Load() }

// Cuts is how many connections were cut mid-FETCH.
func (s *Server) Cuts() int64 { return s.cuts.Load() }

// AddUser creates a user with INBOX and Junk (\Junk).
func (s *Server) AddUser(name, password string) {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	u := &memUser{name: name, password: password, be: s.be, folders: map[string]*memFolder{}}
	u.folders["INBOX"] = &memFolder{name: "INBOX", user: u, validity: 1, next: 1}
	u.folders["Junk"] = &memFolder{name: "Junk", user: u, validity: 1, next: 1, attrs: []string{imap.JunkAttr}}
	s.be.users[name] = u
}

// AddFolder gives a user one more folder, with special-use attributes
// (e.g. imap.SentAttr).
func (s *Server) AddFolder(user, name string, attrs ...string) error {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	u, ok := s.be.users[user]
	if !ok {
		return fmt.Errorf("imaptest: no user %q", user)
	}
	u.folders[name] = &memFolder{name: name, user: u, validity: 1, next: 1, attrs: attrs}
	return nil
}

// Fetch is one FETCH the server answered: the folder and the items asked
// (e.g. "UID", "BODY.PEEK[HEADER.FIELDS (Message-ID)]").
type Fetch struct {
	Folder string
	Items  []string
}

// maxFetchLog bounds the FETCHes kept per user (dev runs for long).
const maxFetchLog = 1000

// Fetches returns the FETCHes a user issued (the last maxFetchLog), in
// order.
func (s *Server) Fetches(user string) []Fetch {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	return append([]Fetch{}, s.be.fetches[user]...)
}

// Append adds a message to a user's folder with the given internal date and
// returns its UID.
func (s *Server) Append(user, folder string, raw []byte, date time.Time, flags ...string) (uint32, error) {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	f, err := s.be.folder(user, folder)
	if err != nil {
		return 0, err
	}
	return f.add(raw, date, flags), nil
}

// SetUIDValidity changes a folder's UIDVALIDITY and renumbers its messages
// from 1, as a server does when it rebuilds a mailbox.
func (s *Server) SetUIDValidity(user, folder string, v uint32) error {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	f, err := s.be.folder(user, folder)
	if err != nil {
		return err
	}
	f.validity = v
	f.next = 1
	for _, m := range f.msgs {
		m.uid = f.next
		f.next++
	}
	return nil
}

// Flags returns the flags of every message in a folder, by UID.
func (s *Server) Flags(user, folder string) (map[uint32][]string, error) {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	f, err := s.be.folder(user, folder)
	if err != nil {
		return nil, err
	}
	out := map[uint32][]string{}
	for _, m := range f.msgs {
		out[m.uid] = append([]string{}, m.flags...)
	}
	return out, nil
}

// SetFault makes command ("LOGIN", "STATUS", "SELECT", "FETCH") fail for
// user with f; a nil f clears it. User "" applies to every user.
func (s *Server) SetFault(user, command string, f *Fault) {
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	key := strings.ToUpper(command) + " " + user
	if f == nil {
		delete(s.be.faults, key)
		return
	}
	cp := *f
	s.be.faults[key] = &cp
}

// CutNextFetch closes the next connection that issues a FETCH once n bytes
// of responses have been written after it.
func (s *Server) CutNextFetch(n int) { s.cutFetch.Store(int64(n)) }

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.open.Add(1)
	return &faultConn{Conn: c, s: l.s}, nil
}

// faultConn counts a connection and can cut it mid-FETCH.
type faultConn struct {
	net.Conn
	s       *Server
	closed  atomic.Bool
	mu      sync.Mutex
	line    []byte
	cutting int64 // bytes left before the cut; 0 = not armed
}

func (c *faultConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.line = append(c.line, b[:n]...)
		for {
			i := bytes.IndexByte(c.line, '\n')
			if i < 0 {
				break
			}
			fields := strings.Fields(strings.ToUpper(string(c.line[:i])))
			c.line = c.line[i+1:]
			isFetch := len(fields) >= 2 && (fields[1] == "FETCH" || len(fields) >= 3 && fields[1] == "UID" && fields[2] == "FETCH")
			if isFetch && c.cutting == 0 {
				if n := c.s.cutFetch.Swap(0); n > 0 {
					c.cutting = n
				}
			}
		}
		if len(c.line) > 4096 {
			c.line = c.line[len(c.line)-4096:]
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	left := c.cutting
	if left > 0 {
		if int64(len(b)) >= left {
			c.cutting = 0
			c.mu.Unlock()
			n, _ := c.Conn.Write(b[:left])
			c.s.cuts.Add(1)
			_ = c.Close()
			return n, net.ErrClosed
		}
		c.cutting -= int64(len(b))
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *faultConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.open.Add(-1)
	}
	return c.Conn.Close()
}

type memBackend struct {
	mu      sync.Mutex
	srv     *Server
	users   map[string]*memUser
	faults  map[string]*Fault
	fetches map[string][]Fetch
}

func (be *memBackend) folder(user, name string) (*memFolder, error) {
	u, ok := be.users[user]
	if !ok {
		return nil, fmt.Errorf("imaptest: no user %q", user)
	}
	f, ok := u.folders[name]
	if !ok {
		return nil, fmt.Errorf("imaptest: user %q has no folder %q", user, name)
	}
	return f, nil
}

// fault returns the fault to answer command for user with (mu held).
func (be *memBackend) fault(user, command string) error {
	for _, key := range []string{command + " " + user, command + " "} {
		f, ok := be.faults[key]
		if !ok {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				delete(be.faults, key)
			}
		}
		return &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespNo, Code: imap.StatusRespCode(f.Code), Info: f.Info}}
	}
	return nil
}

func (be *memBackend) Login(_ *imap.ConnInfo, username, password string) (backend.User, error) {
	be.mu.Lock()
	defer be.mu.Unlock()
	if err := be.fault(username, "LOGIN"); err != nil {
		return nil, err
	}
	u, ok := be.users[username]
	if !ok || u.password != password {
		return nil, &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespNo, Code: "AUTHENTICATIONFAILED", Info: "Authentication failed."}}
	}
	be.srv.logins.Add(1)
	return u, nil
}

type memUser struct {
	name, password string
	be             *memBackend
	folders        map[string]*memFolder
}

func (u *memUser) Username() string { return u.name }

func (u *memUser) ListMailboxes(bool) ([]backend.Mailbox, error) {
	u.be.mu.Lock()
	defer u.be.mu.Unlock()
	names := make([]string, 0, len(u.folders))
	for n := range u.folders {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]backend.Mailbox, len(names))
	for i, n := range names {
		out[i] = u.folders[n]
	}
	return out, nil
}

func (u *memUser) GetMailbox(name string) (backend.Mailbox, error) {
	u.be.mu.Lock()
	defer u.be.mu.Unlock()
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	f, ok := u.folders[name]
	if !ok {
		return nil, backend.ErrNoSuchMailbox
	}
	return f, nil
}

func (u *memUser) CreateMailbox(name string) error {
	u.be.mu.Lock()
	defer u.be.mu.Unlock()
	if _, ok := u.folders[name]; ok {
		return backend.ErrMailboxAlreadyExists
	}
	u.folders[name] = &memFolder{name: name, user: u, validity: 1, next: 1}
	return nil
}

func (u *memUser) DeleteMailbox(string) error         { return errors.New("imaptest: not supported") }
func (u *memUser) RenameMailbox(string, string) error { return errors.New("imaptest: not supported") }
func (u *memUser) Logout() error                      { return nil }

type memMessage struct {
	uid   uint32
	date  time.Time
	flags []string
	raw   []byte
}

type memFolder struct {
	name      string
	user      *memUser
	attrs     []string
	validity  uint32
	next      uint32
	modseq    uint64
	msgs      []*memMessage
	subscribe bool
}

func (f *memFolder) add(raw []byte, date time.Time, flags []string) uint32 {
	m := &memMessage{uid: f.next, date: date, flags: append([]string{}, flags...), raw: bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))}
	f.next++
	f.modseq++
	f.msgs = append(f.msgs, m)
	return m.uid
}

func (f *memFolder) Name() string { return f.name }

func (f *memFolder) Info() (*imap.MailboxInfo, error) {
	return &imap.MailboxInfo{Attributes: append([]string{}, f.attrs...), Delimiter: "/", Name: f.name}, nil
}

func (f *memFolder) Status(items []imap.StatusItem) (*imap.MailboxStatus, error) {
	f.user.be.mu.Lock()
	defer f.user.be.mu.Unlock()
	if err := f.user.be.fault(f.user.name, "STATUS"); err != nil {
		return nil, err
	}
	st := imap.NewMailboxStatus(f.name, items)
	st.Flags = []string{imap.SeenFlag, imap.AnsweredFlag, imap.FlaggedFlag, imap.DeletedFlag, imap.DraftFlag}
	st.PermanentFlags = st.Flags
	for _, it := range items {
		switch it {
		case imap.StatusMessages:
			st.Messages = uint32(len(f.msgs))
		case imap.StatusUidNext:
			st.UidNext = f.next
		case imap.StatusUidValidity:
			st.UidValidity = f.validity
		case imap.StatusRecent:
			st.Recent = 0
		case imap.StatusUnseen:
			st.Unseen = 0
		}
	}
	return st, nil
}

func (f *memFolder) SetSubscribed(s bool) error { f.subscribe = s; return nil }
func (f *memFolder) Check() error               { return nil }

func (f *memFolder) ListMessages(uid bool, set *imap.SeqSet, items []imap.FetchItem, ch chan<- *imap.Message) error {
	defer close(ch)
	f.user.be.mu.Lock()
	if err := f.user.be.fault(f.user.name, "FETCH"); err != nil {
		f.user.be.mu.Unlock()
		return err
	}
	type pick struct {
		seq uint32
		m   memMessage
	}
	var picks []pick
	for i, m := range f.msgs {
		id := uint32(i + 1)
		if uid {
			id = m.uid
		}
		if set.Contains(id) {
			picks = append(picks, pick{uint32(i + 1), memMessage{uid: m.uid, date: m.date, flags: append([]string{}, m.flags...), raw: m.raw}})
		}
	}
	rec := Fetch{Folder: f.name}
	for _, it := range items {
		rec.Items = append(rec.Items, string(it))
	}
	if f.user.be.fetches == nil {
		f.user.be.fetches = map[string][]Fetch{}
	}
	if l := f.user.be.fetches[f.user.name]; len(l) >= maxFetchLog {
		f.user.be.fetches[f.user.name] = l[1:]
	}
	f.user.be.fetches[f.user.name] = append(f.user.be.fetches[f.user.name], rec)
	// A fetch of a body section without PEEK sets \Seen, as on a real server.
	for _, it := range items {
		if sec, err := imap.ParseBodySectionName(it); err == nil && !sec.Peek {
			for _, p := range picks {
				for _, m := range f.msgs {
					if m.uid == p.m.uid && !hasFlag(m.flags, imap.SeenFlag) {
						m.flags = append(m.flags, imap.SeenFlag)
					}
				}
			}
		}
	}
	f.user.be.mu.Unlock()
	for _, p := range picks {
		msg, err := fetch(p.seq, &p.m, items)
		if err != nil {
			return err
		}
		ch <- msg
	}
	return nil
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

func fetch(seq uint32, m *memMessage, items []imap.FetchItem) (*imap.Message, error) {
	out := imap.NewMessage(seq, items)
	header := func() (textproto.Header, *bufio.Reader, error) {
		r := bufio.NewReader(bytes.NewReader(m.raw))
		h, err := textproto.ReadHeader(r)
		return h, r, err
	}
	for _, it := range items {
		switch it {
		case imap.FetchUid:
			out.Uid = m.uid
		case imap.FetchFlags:
			out.Flags = m.flags
		case imap.FetchInternalDate:
			out.InternalDate = m.date
		case imap.FetchRFC822Size:
			out.Size = uint32(len(m.raw))
		case imap.FetchEnvelope:
			h, _, err := header()
			if err != nil {
				return nil, err
			}
			if out.Envelope, err = backendutil.FetchEnvelope(h); err != nil {
				return nil, err
			}
		case imap.FetchBody, imap.FetchBodyStructure:
			h, r, err := header()
			if err != nil {
				return nil, err
			}
			if out.BodyStructure, err = backendutil.FetchBodyStructure(h, r, it == imap.FetchBodyStructure); err != nil {
				return nil, err
			}
		default:
			sec, err := imap.ParseBodySectionName(it)
			if err != nil {
				continue
			}
			h, r, err := header()
			if err != nil {
				return nil, err
			}
			lit, err := backendutil.FetchBodySection(h, r, sec)
			if err != nil {
				continue
			}
			out.Body[sec] = lit
		}
	}
	return out, nil
}

func (f *memFolder) SearchMessages(uid bool, c *imap.SearchCriteria) ([]uint32, error) {
	f.user.be.mu.Lock()
	defer f.user.be.mu.Unlock()
	var out []uint32
	for i, m := range f.msgs {
		if !c.Since.IsZero() && m.date.Before(c.Since) {
			continue
		}
		if !c.Before.IsZero() && !m.date.Before(c.Before) {
			continue
		}
		if c.Uid != nil && !c.Uid.Contains(m.uid) {
			continue
		}
		if uid {
			out = append(out, m.uid)
		} else {
			out = append(out, uint32(i+1))
		}
	}
	return out, nil
}

func (f *memFolder) CreateMessage(flags []string, date time.Time, body imap.Literal) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		return err
	}
	f.user.be.mu.Lock()
	defer f.user.be.mu.Unlock()
	f.add(buf.Bytes(), date, flags)
	return nil
}

func (f *memFolder) UpdateMessagesFlags(uid bool, set *imap.SeqSet, op imap.FlagsOp, flags []string) error {
	f.user.be.mu.Lock()
	defer f.user.be.mu.Unlock()
	for i, m := range f.msgs {
		id := uint32(i + 1)
		if uid {
			id = m.uid
		}
		if set.Contains(id) {
			m.flags = backendutil.UpdateFlags(m.flags, op, flags)
			f.modseq++
		}
	}
	return nil
}

func (f *memFolder) CopyMessages(bool, *imap.SeqSet, string) error {
	return errors.New("imaptest: COPY not supported")
}

func (f *memFolder) Expunge() error {
	f.user.be.mu.Lock()
	defer f.user.be.mu.Unlock()
	kept := f.msgs[:0]
	for _, m := range f.msgs {
		if !hasFlag(m.flags, imap.DeletedFlag) {
			kept = append(kept, m)
		}
	}
	f.msgs = kept
	return nil
}
