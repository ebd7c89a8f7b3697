package db

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/preflight"
)

// RecordSentCopy stores what mailbox sync saw on our own sent copy of a
// message (its DKIM signatures) on the sender domain of its From address,
// and recomputes the domain's dkim_alignment check and status from it
// (docs/preflight.md). A domain the tenant does not send from is ignored.
func (s *Store) RecordSentCopy(ctx context.Context, tenant string, seen preflight.SentCopy) (err error) {
	defer wrapErr(&err, "record sent copy")
	d, err := NormalizeDomain("from", seen.FromDomain)
	if err != nil {
		return nil // not a domain we could have a report for
	}
	seen.FromDomain = d
	row, err := s.q.GetSenderDomain(ctx, dbsqlc.GetSenderDomainParams{TenantKey: tenant, Domain: d})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var checks []preflight.Check
	if len(row.Checks) > 2 {
		if err := json.Unmarshal(row.Checks, &checks); err != nil {
			return err
		}
	}
	provider := row.Provider
	if row.ProviderSet != "" {
		provider = row.ProviderSet
	}
	checks = withAlignment(checks, &seen, d, provider)
	status := preflight.Status(row.Status)
	if row.Checked {
		status = foldStatus(checks)
	} else {
		status = preflight.Worst(status, alignmentStatus(checks))
	}
	cj, err := json.Marshal(checks)
	if err != nil {
		return err
	}
	sj, err := json.Marshal(seen)
	if err != nil {
		return err
	}
	_, err = s.q.SaveSentDKIM(ctx, dbsqlc.SaveSentDKIMParams{TenantKey: tenant, Domain: d, DkimSeen: sj, Checks: cj, Status: string(status), Now: s.clock.Now()})
	return err
}

// sentCopyOf decodes a domain's stored sent-copy observation (nil: none).
func sentCopyOf(r dbsqlc.SenderDomain) *preflight.SentCopy {
	if len(r.DkimSeen) == 0 {
		return nil
	}
	var c preflight.SentCopy
	if json.Unmarshal(r.DkimSeen, &c) != nil {
		return nil
	}
	return &c
}

// withAlignment replaces the dkim_alignment check of checks by one made
// from seen, with the Organizational Domain the DMARC check found.
func withAlignment(checks []preflight.Check, seen *preflight.SentCopy, domain, provider string) []preflight.Check {
	out := make([]preflight.Check, 0, len(checks)+1)
	org := ""
	for _, c := range checks {
		if c.Name == "dkim_alignment" {
			continue
		}
		if c.Name == "dmarc" {
			org, _ = c.Facts["organizational_domain"].(string)
		}
		out = append(out, c)
	}
	return append(out, preflight.CheckDKIMAlignment(seen, domain, org, provider))
}

// foldStatus is a domain's status from its checks. An unknown
// dkim_alignment (no sent copy read yet, or one the provider did not sign)
// does not make the domain unknown: only a definite result counts.
func foldStatus(checks []preflight.Check) preflight.Status {
	var ss []preflight.Status
	for _, c := range checks {
		if c.Name == "dkim_alignment" && c.Status == preflight.Unknown {
			continue
		}
		ss = append(ss, c.Status)
	}
	return preflight.Worst(ss...)
}

func alignmentStatus(checks []preflight.Check) preflight.Status {
	for _, c := range checks {
		if c.Name == "dkim_alignment" && c.Status != preflight.Unknown {
			return c.Status
		}
	}
	return preflight.Pass
}
