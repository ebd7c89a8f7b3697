package dripdrop

import (
	"math"
	"time"
)

// HealthSignalInput is an external health signal (POST
// /v1/adapters/{id}/health, docs/health.md#api). Omitted fields keep their stored values.
type HealthSignalInput struct {
	HealthState  *HealthState        `json:"health_state"`
	HealthScore  Nullable[float64]   `json:"health_score"`
	RestingUntil Nullable[time.Time] `json:"resting_until"`
	Source       *string             `json:"source"`
	Reason       *string             `json:"reason"`
}

// Validate checks the signal: a known state, a score in 0..1, a source.
func (in HealthSignalInput) Validate() error {
	if in.Source == nil {
		return Errorf(ECodeRequired, "source", "source is required")
	}
	if err := checkHeaderText("source", *in.Source, 64, true); err != nil {
		return err
	}
	if in.Reason != nil {
		if err := checkHeaderText("reason", *in.Reason, 200, false); err != nil {
			return err
		}
	}
	if in.HealthState != nil {
		switch *in.HealthState {
		case HealthActive, HealthRamping, HealthProbing, HealthResting:
		default:
			return Errorf(ECodeInvalidValue, "health_state", "health_state must be active, ramping, probing or resting")
		}
	}
	if in.HealthScore.Valid {
		if s := in.HealthScore.Value; math.IsNaN(s) || s < 0 || s > 1 {
			return Errorf(ECodeOutOfRange, "health_score", "health_score must be between 0 and 1")
		}
	}
	return nil
}
