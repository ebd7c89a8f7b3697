package mailsync

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/preflight"
)

// Reading our own sent copy for the DKIM alignment check
// (docs/preflight.md#dkim-alignment, docs/ingest.md#mailbox-sync): when the
// server has a special-use \Sent folder and something new arrived in it,
// the Message-ID header of its newest SentNewest messages is read; of those
// this adapter sent, the newest has its From and DKIM-Signature header
// fields read (BODY.PEEK[HEADER.FIELDS …], never a whole message, never a
// flag changed) and stored on its sender domain.

// SentNewest is how many of the newest \Sent messages one sync looks at.
const SentNewest = 5

// SentFolder is the special-use attribute of the folder read.
const SentFolder = `\Sent`

// Header fields of the two reads.
var (
	sentIDFields   = []string{"Message-ID"}
	sentSignFields = []string{"From", "DKIM-Signature"}
)

// HeaderValues splits a header block (folded lines, LF or CRLF; at most
// 64 KiB read) into the values of each field, by lower-case name, in
// order. Unfolding joins continuation lines with a space.
func HeaderValues(block []byte) map[string][]string {
	if len(block) > maxHeaderBlock {
		block = block[:maxHeaderBlock]
	}
	out := map[string][]string{}
	var name, value string
	flush := func() {
		if name != "" {
			out[strings.ToLower(name)] = append(out[strings.ToLower(name)], strings.TrimSpace(value))
		}
		name, value = "", ""
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n") {
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				value += " " + strings.TrimSpace(line)
			}
			continue
		}
		flush()
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(k, " \t") {
			continue
		}
		name, value = k, v
	}
	flush()
	return out
}

// SentMessageID is the bare Message-ID of a header block ("" if none).
func SentMessageID(block []byte) string {
	if v := HeaderValues(block)["message-id"]; len(v) > 0 {
		return ingest.NormalizeID(v[0])
	}
	return ""
}

// SentCopyOf reads what the DKIM alignment check needs from the From and
// DKIM-Signature fields of our own sent copy; fallbackFrom (the adapter's
// From address) stands in for a From field without a readable address.
func SentCopyOf(block []byte, messageID, fallbackFrom string, now time.Time) preflight.SentCopy {
	h := HeaderValues(block)
	c := preflight.SentCopy{MessageID: messageID, Signatures: []preflight.DKIMSignature{}, SeenAt: now}
	from := ""
	if v := h["from"]; len(v) > 0 {
		if a, err := mail.ParseAddress(v[0]); err == nil {
			from = a.Address
		} else {
			from = ingest.AddrSpec(v[0])
		}
	}
	if !strings.Contains(from, "@") {
		from = fallbackFrom
	}
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		c.FromDomain = strings.ToLower(strings.TrimSuffix(from[i+1:], "."))
	}
	for _, v := range h["dkim-signature"] {
		sig, err := preflight.ParseDKIMSignature(v)
		if err != nil {
			c.Unreadable++
			continue
		}
		c.Signatures = append(c.Signatures, sig)
	}
	return c
}

// syncSent reads the newest of our own sent copies in \Sent (see above).
// It returns without a command beyond STATUS when nothing new arrived
// there since the last look of this session.
func (s *Syncer) syncSent(ctx context.Context, b *box, sess Session) error {
	name, ok := b.special[SentFolder]
	if !ok {
		var err error
		if name, err = sess.SpecialUse(SentFolder); err != nil {
			return err
		}
		b.special[SentFolder] = name
	}
	if name == "" {
		return nil // no \Sent folder: the check stays unknown
	}
	st, err := sess.Status(name)
	if err != nil {
		return err
	}
	if b.sentSeen == (Status{UIDValidity: st.UIDValidity, UIDNext: st.UIDNext}) {
		return nil
	}
	if st.Messages > 0 {
		if err := s.readSent(ctx, b, sess, name); err != nil {
			return err
		}
	}
	b.sentSeen = Status{UIDValidity: st.UIDValidity, UIDNext: st.UIDNext}
	return nil
}

func (s *Syncer) readSent(ctx context.Context, b *box, sess Session, name string) (err error) {
	if _, err := sess.Examine(name); err != nil {
		return err
	}
	defer func() {
		if uerr := sess.Unselect(); err == nil {
			err = uerr
		}
	}()
	hs, err := sess.HeaderFields(SentNewest, nil, sentIDFields)
	if err != nil {
		return err
	}
	byID := map[string]uint32{}
	var ids []string
	for _, h := range hs {
		if id := SentMessageID(h.Block); id != "" {
			if _, dup := byID[id]; !dup {
				ids = append(ids, id)
			}
			byID[id] = max(byID[id], h.UID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ours, _, err := s.store.MailboxLookups(ctx, b.mb.TenantKey, b.mb.AdapterID, ids, nil)
	if err != nil {
		return err
	}
	var uid uint32
	id := ""
	for _, i := range ids {
		if ours[i] && byID[i] > uid {
			uid, id = byID[i], i
		}
	}
	if uid == 0 {
		return nil // none of the newest is ours
	}
	got, err := sess.HeaderFields(0, []uint32{uid}, sentSignFields)
	if err != nil {
		return err
	}
	for _, h := range got {
		if h.UID != uid {
			continue
		}
		c := SentCopyOf(h.Block, id, b.mb.FromAddress, s.store.Now())
		if err := s.store.RecordSentCopy(ctx, b.mb.TenantKey, c); err != nil {
			return err
		}
		s.log.Debug("mailbox sync read our sent copy", "adapter_id", b.mb.AdapterID, "message_id", id, "signatures", len(c.Signatures))
		return nil
	}
	return fmt.Errorf("imap: sent message %d vanished", uid)
}
