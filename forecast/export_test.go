package forecast

import (
	"time"

	"github.com/google/uuid"
)

// SetTrace installs a hook that sees every simulated send.
func SetTrace(f func(adapter uuid.UUID, enrollment, stepIndex int, at time.Time)) { traceHook = f }
