package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/internal/netguard"
)

// createAdapter and updateAdapter refuse SMTP destinations on the operator's
// network before the store sees them (docs/security.md#the-operators-network);
// the transport checks the
// resolved address again at dial time.
func (s *Server) createAdapter(ctx context.Context, tenant string, in dripdrop.AdapterInput) (dripdrop.Adapter, error) {
	if err := checkTarget(s.cfg.Guard, in.Credentials); err != nil {
		return dripdrop.Adapter{}, err
	}
	if err := checkIMAPTarget(s.cfg.Guard, in.IMAP); err != nil {
		return dripdrop.Adapter{}, err
	}
	return s.store.CreateAdapter(ctx, tenant, in)
}

func (s *Server) updateAdapter(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.AdapterInput) (dripdrop.Adapter, error) {
	if err := checkTarget(s.cfg.Guard, in.Credentials); err != nil {
		return dripdrop.Adapter{}, err
	}
	if err := checkIMAPTarget(s.cfg.Guard, in.IMAP); err != nil {
		return dripdrop.Adapter{}, err
	}
	return s.store.UpdateAdapter(ctx, tenant, id, in)
}

// checkTarget validates the shape of the credentials first (so a malformed
// host is invalid_value, not forbidden_target), then the destination.
func checkTarget(g netguard.Guard, c *dripdrop.SMTPCredentials) error {
	if c == nil {
		return nil
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := g.CheckHost(c.Host); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, "credentials.host", "%s", forbiddenDetail(err))
	}
	if err := g.CheckSMTPPort(c.Port); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, "credentials.port", "%s", forbiddenDetail(err))
	}
	return nil
}

func forbiddenDetail(err error) string {
	msg := strings.TrimPrefix(err.Error(), netguard.ErrForbiddenTarget.Error()+": ")
	return "the engine does not connect there: " + msg + " (operators can allow private targets with DRIPDROP_ALLOW_PRIVATE_TARGETS=true and other ports with DRIPDROP_SMTP_PORTS)"
}

// checkIMAPTarget applies the outbound-destination rule to a mailbox's
// IMAP host (the port is any: IMAP servers listen on 993, 143 or their
// own); the shape is validated first.
func checkIMAPTarget(g netguard.Guard, in dripdrop.Nullable[dripdrop.IMAPSettings]) error {
	if !in.Valid {
		return nil
	}
	st, err := in.Value.Normalize()
	if err != nil {
		return err
	}
	if err := g.CheckHost(st.Host); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, "imap.host", "%s", forbiddenDetail(err))
	}
	return nil
}

// mailboxSync: GET /v1/adapters/{id}/sync.
func (s *Server) mailboxSync(ctx context.Context, tenant string, id uuid.UUID) (dripdrop.MailboxSync, error) {
	return s.store.MailboxSync(ctx, tenant, id)
}

// requestSync: POST /v1/adapters/{id}/sync — sync now; 202 with the state
// (the replica that owns the mailbox starts within a couple of seconds).
func (s *Server) requestSync(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	st, err := s.store.RequestMailboxSync(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, st)
}
