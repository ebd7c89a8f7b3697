package main

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dripdrop/dripdrop/db"
)

// gaugeCollector exports the database-backed gauges. Scrapes read a
// snapshot cached for ttl, so any number of scrapers cost at most one round
// of queries per ttl; a failed read keeps the last snapshot.
type gaugeCollector struct {
	read func(context.Context) (db.Gauges, error)
	ttl  time.Duration
	log  *slog.Logger

	mu     sync.Mutex
	at     time.Time
	cached db.Gauges
	ok     bool

	backlog, oldest, enrollments, adapters, up *prometheus.Desc
}

func newGaugeCollector(read func(context.Context) (db.Gauges, error), ttl time.Duration, log *slog.Logger) *gaugeCollector {
	return &gaugeCollector{
		read: read, ttl: ttl, log: log,
		backlog:     prometheus.NewDesc("dripdrop_due_backlog", "Scheduled executions whose time has come (due now, not yet sent).", nil, nil),
		oldest:      prometheus.NewDesc("dripdrop_due_backlog_oldest_seconds", "Age of the oldest due execution in seconds (0 when none).", nil, nil),
		enrollments: prometheus.NewDesc("dripdrop_enrollments", "Enrollments by state.", []string{"state"}, nil),
		adapters:    prometheus.NewDesc("dripdrop_adapters", "Adapters (not deleted) by health state.", []string{"health_state"}, nil),
		up:          prometheus.NewDesc("dripdrop_gauges_up", "1 when the last read of the database gauges succeeded.", nil, nil),
	}
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.backlog, c.oldest, c.enrollments, c.adapters, c.up} {
		ch <- d
	}
}

func (c *gaugeCollector) snapshot() (db.Gauges, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g, err := c.read(ctx)
		cancel()
		c.at = time.Now()
		if err != nil {
			c.log.Warn("reading metrics gauges failed", "err", err)
			c.ok = false
		} else {
			c.cached, c.ok = g, true
		}
	}
	return c.cached, c.ok
}

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g, ok := c.snapshot()
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if g.EnrollmentsByState == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(g.DueBacklog))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, g.OldestDueSeconds)
	for state, n := range g.EnrollmentsByState {
		ch <- prometheus.MustNewConstMetric(c.enrollments, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range g.AdaptersByHealth {
		ch <- prometheus.MustNewConstMetric(c.adapters, prometheus.GaugeValue, float64(n), state)
	}
}

// registerEngineMetrics registers dripdrop_build_info and the database
// gauges on reg.
func registerEngineMetrics(reg prometheus.Registerer, store *db.Store, log *slog.Logger) error {
	v, c := buildVersion()
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dripdrop_build_info",
		Help: "Always 1; the labels say which build runs."}, []string{"version", "commit", "goversion"})
	info.WithLabelValues(v, c, runtime.Version()).Set(1)
	if err := reg.Register(info); err != nil {
		return err
	}
	return reg.Register(newGaugeCollector(store.ReadGauges, 15*time.Second, log))
}
