package preflight

import (
	"fmt"
	"strings"
	"time"
)

// DKIMSignature is the signing domain (d=) and selector (s=) of one
// DKIM-Signature header field.
type DKIMSignature struct {
	D string `json:"d"`
	S string `json:"s"`
}

// ParseDKIMSignature reads d= and s= from the value of a DKIM-Signature
// header field (RFC 6376 §3.5; folding whitespace is allowed anywhere
// between tags). The signature itself is not verified: the check only asks
// which domain signs our own mail.
func ParseDKIMSignature(value string) (DKIMSignature, error) {
	v := strings.NewReplacer("\r", "", "\n", "").Replace(value)
	tags, _, err := ParseTags(v)
	if err != nil {
		return DKIMSignature{}, err
	}
	sig := DKIMSignature{D: normName(tags["d"]), S: strings.ToLower(strings.TrimSpace(tags["s"]))}
	if sig.D == "" {
		return sig, fmt.Errorf("the signature has no d= tag")
	}
	for _, l := range strings.Split(sig.D, ".") {
		if l == "" || strings.ContainsFunc(l, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ';' || r == '=' }) {
			return DKIMSignature{}, fmt.Errorf("d=%q is not a domain name", sig.D)
		}
	}
	return sig, nil
}

// SentCopy is what mailbox sync saw on our own sent copy of a message in
// the mailbox's \Sent folder.
type SentCopy struct {
	MessageID  string          `json:"message_id"`
	FromDomain string          `json:"from_domain"`
	Signatures []DKIMSignature `json:"signatures"`
	// Unreadable counts DKIM-Signature fields without a usable d=.
	Unreadable int       `json:"unreadable,omitempty"`
	SeenAt     time.Time `json:"seen_at"`
}

// DKIMAligned reports whether a signing domain d is aligned with the From
// domain under relaxed alignment (DMARC): d equals from, or both have the
// same Organizational Domain. org is from's Organizational Domain as the
// DMARC tree walk found it ("" when unknown); without it, d aligns only when
// it is from itself or a parent of from with at least two labels (so a
// public suffix such as "com" never aligns).
func DKIMAligned(from, d, org string) bool {
	from, d, org = normName(from), normName(d), normName(org)
	if from == "" || d == "" {
		return false
	}
	if d == from {
		return true
	}
	under := func(name, parent string) bool { return name == parent || strings.HasSuffix(name, "."+parent) }
	if org != "" && under(from, org) {
		return under(d, org)
	}
	return under(from, d) && strings.Contains(d, ".")
}

// Providers known to file the Sent copy before signing it: their copy in
// \Sent may carry no DKIM-Signature even when the outgoing message does.
var signsAfterFiling = map[string]bool{ProviderGoogle: true, ProviderMicrosoft: true}

// CheckDKIMAlignment is the dkim_alignment check of a sender domain: does
// the DKIM signature on our own sent copy align with the From domain?
// seen is the latest sent copy mailbox sync read (nil: none yet), org the
// domain's Organizational Domain ("" when unknown), provider the sending
// provider ("" for a generic relay).
//
//   - no sent copy seen: unknown (dkim_alignment_unseen);
//   - an aligned signature: pass (dkim_aligned);
//   - only signatures by other domains (e.g. the provider's gmail.com or
//     *.onmicrosoft.com): fail (dkim_not_aligned);
//   - no signature at all: unknown (dkim_alignment_unsigned_copy) for
//     Google and Microsoft, which file the Sent copy before signing in
//     some setups, else fail (dkim_unsigned); only unreadable signature
//     fields: fail (dkim_signature_invalid).
func CheckDKIMAlignment(seen *SentCopy, domain, org, provider string) Check {
	domain = normName(domain)
	c := Check{Name: "dkim_alignment", Facts: map[string]any{}}
	if seen == nil {
		return c.set(Unknown, "dkim_alignment_unseen", "No copy of a message sent by %s has been read from a mailbox's Sent folder yet (it needs mailbox sync on an adapter of this domain).", domain)
	}
	c.Facts["message_id"] = seen.MessageID
	c.Facts["seen_at"] = seen.SeenAt
	if org != "" {
		c.Facts["organizational_domain"] = org
	}
	ev := Evidence{Name: "<" + seen.MessageID + ">", Type: "DKIM-Signature", Status: NoData}
	var ds []string
	for _, s := range seen.Signatures {
		ev.Values = append(ev.Values, "d="+s.D+"; s="+s.S)
		ds = append(ds, s.D)
	}
	if len(seen.Signatures) > 0 {
		ev.Status = Found
	}
	c.Evidence = []Evidence{ev}
	if len(seen.Signatures) == 0 && seen.Unreadable > 0 {
		return c.set(Fail, "dkim_signature_invalid", "Our own sent copy of <%s> carries %d DKIM-Signature field(s) without a usable d= tag: receivers ignore them.", seen.MessageID, seen.Unreadable)
	}
	if len(seen.Signatures) == 0 {
		if signsAfterFiling[provider] {
			return c.set(Unknown, "dkim_alignment_unsigned_copy", "The sent copy of <%s> in the Sent folder carries no DKIM-Signature; %s signs the outgoing copy only, so alignment cannot be read from it.", seen.MessageID, provider)
		}
		return c.set(Fail, "dkim_unsigned", "Our own sent copy of <%s> carries no DKIM-Signature: mail from %s goes out unsigned. Turn on DKIM signing for %s at your provider or relay.", seen.MessageID, domain, domain)
	}
	for _, s := range seen.Signatures {
		if DKIMAligned(domain, s.D, org) {
			c.Facts["d"], c.Facts["s"] = s.D, s.S
			return c.set(Pass, "dkim_aligned", "Our own sent copy of <%s> is signed by d=%s (selector %s), aligned with %s.", seen.MessageID, s.D, s.S, domain)
		}
	}
	c.Facts["d"], c.Facts["s"] = seen.Signatures[0].D, seen.Signatures[0].S
	return c.set(Fail, "dkim_not_aligned", "Our own sent copy of <%s> is signed by d=%s, not aligned with the From domain %s: DMARC cannot pass on DKIM. Set up DKIM signing for %s itself at your provider (custom domain signing), then publish its selector's key.", seen.MessageID, strings.Join(ds, ", d="), domain, domain)
}
