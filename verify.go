package dripdrop

// VerifyStage is one step of an adapter check (POST
// /v1/adapters/{id}/verify): what was done, how long it took and what the
// server answered.
type VerifyStage struct {
	Stage      string  `json:"stage"` // tls, token (oauth2 adapters), connect, greeting, ehlo, starttls, ehlo_tls, auth, quit
	OK         bool    `json:"ok"`
	DurationMS float64 `json:"duration_ms"`
	Code       int     `json:"code,omitempty"`  // the server's reply code
	Reply      string  `json:"reply,omitempty"` // the server's reply text (lines joined by "\n")
	Error      string  `json:"error,omitempty"` // a local error (dial, TLS handshake)
}

// VerifyResult is the outcome of an adapter check. Nothing is sent: the
// check stops after AUTH.
type VerifyResult struct {
	AdapterID string        `json:"adapter_id"`
	OK        bool          `json:"ok"`
	Host      string        `json:"host"`
	Port      int           `json:"port"`
	TLS       string        `json:"tls"`
	Stages    []VerifyStage `json:"stages"`
	// FailedStage names the stage that failed, if any.
	FailedStage string `json:"failed_stage,omitempty"`
}
