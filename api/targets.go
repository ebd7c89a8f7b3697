package api

import (
	"context"
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
	return s.store.CreateAdapter(ctx, tenant, in)
}

func (s *Server) updateAdapter(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.AdapterInput) (dripdrop.Adapter, error) {
	if err := checkTarget(s.cfg.Guard, in.Credentials); err != nil {
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
