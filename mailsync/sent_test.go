package mailsync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/preflight"
)

// sentCopy is our own sent copy of a message as a provider files it in
// \Sent: the engine's Message-ID, with the given DKIM-Signature fields.
func sentCopy(msgID, rcpt string, sigs ...string) []byte {
	var b strings.Builder
	for _, s := range sigs {
		fmt.Fprintf(&b, "DKIM-Signature: %s\r\n", s)
	}
	fmt.Fprintf(&b, "From: Ada Lovelace <%s>\r\nTo: %s\r\nSubject: Hello\r\nMessage-ID: %s\r\nDate: %s\r\nContent-Type: text/plain\r\n\r\n%s\r\n",
		mailboxUser, rcpt, msgID, time.Now().UTC().Format(time.RFC1123Z), strings.Repeat("The body is never read. ", 200))
	return []byte(b.String())
}

// A message the user sent by hand (not the engine's).
func handSent(sig string) []byte {
	return []byte(fmt.Sprintf("DKIM-Signature: %s\r\nFrom: %s\r\nTo: friend@else.example\r\nSubject: lunch?\r\nMessage-ID: <%s@acme.example.com>\r\nDate: %s\r\n\r\nhi\r\n",
		sig, mailboxUser, uuid.NewString(), time.Now().UTC().Format(time.RFC1123Z)))
}

const (
	alignedSig = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.example.com; s=s2026;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dGVzdA=="
	gmailSig   = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601; h=from:to; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA=="
)

func (w *syncWorld) alignment() (db.SenderDomain, preflight.Check, bool) {
	w.t.Helper()
	d, err := w.Store.GetDomain(context.Background(), w.Tenant, "acme.example.com")
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range d.Checks {
		if c.Name == "dkim_alignment" {
			return d, c, true
		}
	}
	return d, preflight.Check{}, false
}

func TestMemSentCopyDKIMAlignment(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port)
	srv.AddUser(w.user, w.pass)
	if err := srv.AddFolder(w.user, "Sent", imap.SentAttr); err != nil {
		t.Fatal(err)
	}
	_, msgID := w.send("bob@prospect.example")
	// Our sent copy, then a newer message the user sent by hand (signed by
	// the provider, never ours to judge). The copies are \Seen, as
	// providers file them.
	if _, err := srv.Append(w.user, "Sent", sentCopy(msgID, "bob@prospect.example", alignedSig), time.Now(), imap.SeenFlag); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Append(w.user, "Sent", handSent(gmailSig), time.Now(), imap.SeenFlag); err != nil {
		t.Fatal(err)
	}
	s := w.syncer(context.Background(), 200*time.Millisecond)
	var c preflight.Check
	waitFor(t, 5*time.Second, "the dkim_alignment check", func() bool {
		_, got, ok := w.alignment()
		c = got
		return ok
	})
	bare := strings.Trim(msgID, "<>")
	if c.Status != preflight.Pass || c.Code != "dkim_aligned" || c.Facts["d"] != "acme.example.com" || c.Facts["s"] != "s2026" || c.Facts["message_id"] != bare {
		t.Fatalf("dkim_alignment = %s %s facts %v: want pass on d=acme.example.com s=s2026 of %s", c.Status, c.Code, c.Facts, bare)
	}
	if len(c.Evidence) != 1 || c.Evidence[0].Type != "DKIM-Signature" || c.Evidence[0].Name != msgID ||
		!slices.Equal(c.Evidence[0].Values, []string{"d=acme.example.com; s=s2026"}) {
		t.Fatalf("evidence %+v: want the d=/s= of our sent copy only", c.Evidence)
	}
	if _, ok := c.Facts["seen_at"]; !ok {
		t.Fatalf("no seen_at in %v", c.Facts)
	}

	// A newer send whose copy the provider signed with its own domain.
	_, msgID2 := w.send("carol@prospect.example")
	if _, err := srv.Append(w.user, "Sent", sentCopy(msgID2, "carol@prospect.example", gmailSig), time.Now(), imap.SeenFlag); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "not aligned", func() bool { _, got, _ := w.alignment(); c = got; return c.Code == "dkim_not_aligned" })
	d, _, _ := w.alignment()
	if c.Status != preflight.Fail || !strings.Contains(c.Detail, "not aligned") || c.Facts["d"] != "gmail.com" || c.Facts["message_id"] != strings.Trim(msgID2, "<>") || d.Status != preflight.Fail {
		t.Fatalf("after a gmail.com signature: check %s %q facts %v, domain %s; want fail not aligned", c.Status, c.Detail, c.Facts, d.Status)
	}

	// A copy with no signature at all, from a generic relay: a fail.
	_, msgID3 := w.send("dan@prospect.example")
	if _, err := srv.Append(w.user, "Sent", sentCopy(msgID3, "dan@prospect.example"), time.Now(), imap.SeenFlag); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "unsigned", func() bool { _, got, _ := w.alignment(); c = got; return c.Code == "dkim_unsigned" })
	if c.Status != preflight.Fail || len(c.Evidence) != 1 || c.Evidence[0].Status != preflight.NoData || len(c.Evidence[0].Values) != 0 {
		t.Fatalf("unsigned copy: %s %+v", c.Status, c.Evidence)
	}

	// Nothing in Sent changed, and nothing there was read whole: only UIDs
	// and BODY.PEEK of the Message-ID, From and DKIM-Signature fields.
	flags, _ := srv.Flags(w.user, "Sent")
	if len(flags) != 4 {
		t.Fatalf("Sent holds %d messages, want 4", len(flags))
	}
	for u, f := range flags {
		if !slices.Equal(f, []string{imap.SeenFlag}) {
			t.Fatalf("Sent message %d has flags %v, want only the \\Seen it was filed with", u, f)
		}
	}
	var idReads, signReads int
	for _, f := range srv.Fetches(w.user) {
		if f.Folder != "Sent" {
			continue
		}
		for _, it := range f.Items {
			switch {
			case it == "UID":
			case strings.EqualFold(it, "BODY.PEEK[HEADER.FIELDS (Message-ID)]"):
				idReads++
			case strings.EqualFold(it, "BODY.PEEK[HEADER.FIELDS (From DKIM-Signature)]"):
				signReads++
			default:
				t.Fatalf("FETCH %v in Sent: only UIDs and header fields may be read", f.Items)
			}
		}
	}
	if signReads != 3 || idReads < 3 {
		t.Fatalf("%d signature reads and %d Message-ID reads in Sent: want one signature read per sent copy (3), after a Message-ID read", signReads, idReads)
	}
	// Idle polls do not look into Sent again.
	n := len(srv.Fetches(w.user))
	syncs := s.Syncs()
	waitFor(t, 5*time.Second, "three idle polls", func() bool { return s.Syncs() >= syncs+3 })
	if m := len(srv.Fetches(w.user)); m != n {
		t.Fatalf("idle polls issued %d FETCHes", m-n)
	}
}

// Without a \Sent folder nothing is read and the check stays absent from
// a domain never checked (it appears, unknown, with the DNS checks).
func TestMemNoSentFolder(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port)
	srv.AddUser(w.user, w.pass)
	w.send("bob@prospect.example")
	s := w.syncer(context.Background(), 200*time.Millisecond)
	waitFor(t, 5*time.Second, "three polls", func() bool { return s.Syncs() >= 3 })
	if _, c, ok := w.alignment(); ok {
		t.Fatalf("dkim_alignment %+v without a Sent folder", c)
	}
	for _, f := range srv.Fetches(w.user) {
		if f.Folder == "Sent" {
			t.Fatalf("FETCH in Sent: %v", f)
		}
	}
}
