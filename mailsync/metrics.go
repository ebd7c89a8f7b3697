package mailsync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are mailbox sync's Prometheus metrics (docs/ingest.md#metrics):
//
//	dripdrop_mailbox_syncs_total{outcome}             ok | error | throttled
//	dripdrop_mailbox_sync_duration_seconds            histogram
//	dripdrop_mailbox_messages_total{result}           fetched | candidate | applied | skipped
//	dripdrop_mailbox_oldest_success_age_seconds       this replica's oldest successful sync
//	dripdrop_mailbox_owned                            mailboxes this replica holds
//	dripdrop_mailbox_connections                      IMAP connections it holds open
type Metrics struct {
	syncs    *prometheus.CounterVec
	duration prometheus.Histogram
	messages *prometheus.CounterVec
	s        *Syncer
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_mailbox_syncs_total",
			Help: "Mailbox syncs by outcome (ok, error, throttled)."}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dripdrop_mailbox_sync_duration_seconds",
			Help: "Duration of one mailbox sync.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_mailbox_messages_total",
			Help: "Messages seen by mailbox sync: fetched (envelope read), candidate (read whole), applied (new inbound), skipped (not read whole, never stored)."}, []string{"result"}),
	}
	for _, o := range []string{"ok", "error", "throttled"} {
		m.syncs.WithLabelValues(o)
	}
	for _, r := range []string{"fetched", "candidate", "applied", "skipped"} {
		m.messages.WithLabelValues(r)
	}
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dripdrop_mailbox_oldest_success_age_seconds",
		Help: "Age of the oldest last successful sync among the mailboxes this replica holds (seconds; a never-synced mailbox counts from its claim)."},
		func() float64 { return m.oldestAge() })
	owned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dripdrop_mailbox_owned", Help: "Mailboxes this replica syncs."},
		func() float64 {
			if m.s == nil {
				return 0
			}
			return float64(m.s.Owned())
		})
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dripdrop_mailbox_connections", Help: "IMAP connections this replica holds open."},
		func() float64 {
			if m.s == nil {
				return 0
			}
			return float64(m.s.Sessions())
		})
	for _, c := range []prometheus.Collector{m.syncs, m.duration, m.messages, oldest, owned, conns} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) attach(s *Syncer) { m.s = s }

func (m *Metrics) observe(outcome string, d time.Duration, c counts) {
	m.syncs.WithLabelValues(outcome).Inc()
	m.duration.Observe(d.Seconds())
	m.messages.WithLabelValues("fetched").Add(float64(c.fetched))
	m.messages.WithLabelValues("candidate").Add(float64(c.candidates))
	m.messages.WithLabelValues("applied").Add(float64(c.applied))
	m.messages.WithLabelValues("skipped").Add(float64(c.skipped))
}

func (m *Metrics) oldestAge() float64 {
	if m.s == nil {
		return 0
	}
	now := m.s.store.Now()
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	var oldest float64
	for _, b := range m.s.boxes {
		var age float64
		if b.lastOK != nil {
			age = now.Sub(*b.lastOK).Seconds()
		} else {
			age = now.Sub(b.mb.UpdatedAt).Seconds()
		}
		if age > oldest {
			oldest = age
		}
	}
	return oldest
}
