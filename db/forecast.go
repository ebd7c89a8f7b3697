package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/forecast"
	"github.com/dripdrop/dripdrop/policy"
)

// ForecastSnapshot reads what a forecast needs about one tenant (docs/forecast.md)
// in one read-only, repeatable-read transaction, so every part is of the
// same instant. It writes nothing.
func (s *Store) ForecastSnapshot(ctx context.Context, tenant string) (_ *forecast.Snapshot, err error) {
	defer wrapErr(&err, "forecast snapshot")
	snap := &forecast.Snapshot{Now: s.clock.Now()}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		ads, err := q.ForecastAdapters(ctx, tenant)
		if err != nil {
			return err
		}
		now := snap.Now
		usage, err := q.ForecastUsage(ctx, dbsqlc.ForecastUsageParams{TenantKey: tenant, FromDay: dayOf(now, time.UTC).AddDate(0, 0, -1), ToDay: dayOf(now, time.UTC).AddDate(0, 0, 1)})
		if err != nil {
			return err
		}
		budgets, err := q.ForecastBudgets(ctx, tenant)
		if err != nil {
			return err
		}
		idx := map[uuid.UUID]int{}
		snap.Adapters = make([]forecast.Adapter, len(ads))
		for i, a := range ads {
			fa := forecast.Adapter{ID: a.ID, Name: a.Name, Active: a.Active, Timezone: a.Timezone, HealthState: a.HealthState,
				HealthScore: a.HealthScore, RestingUntil: a.RestingUntil, ReconnectRequired: a.ReconnectRequired, DailyCap: a.DailyCap, RampFloor: a.RampFloor,
				RampStartedAt: a.RampStartedAt, MinGapSeconds: a.MinGapSeconds, GapJitterSeconds: a.GapJitterSeconds,
				LastSendAt: a.LastSendAt, NextSendAt: a.NextSendAt, SentToday: map[uuid.UUID]int{}, Budgets: map[uuid.UUID]int{},
				ProviderCaps: providerCaps(a.ProviderCaps)}
			if a.RampIncrement != nil {
				fa.RampIncrement = *a.RampIncrement
			}
			snap.Adapters[i] = fa
			idx[a.ID] = i
		}
		for _, u := range usage {
			i, ok := idx[u.AdapterID]
			if !ok {
				continue
			}
			loc, err := policy.LoadLocation(snap.Adapters[i].Timezone)
			if err != nil {
				loc = time.UTC
			}
			if u.Day.UTC().Equal(dayOf(now, loc)) {
				snap.Adapters[i].SentToday[u.SequenceVersionID] += u.Sent
			}
		}
		pusage, err := q.ForecastProviderUsage(ctx, dbsqlc.ForecastProviderUsageParams{TenantKey: tenant, Since: dayOf(now, time.UTC).AddDate(0, 0, -1)})
		if err != nil {
			return err
		}
		for _, u := range pusage {
			i, ok := idx[u.AdapterID]
			if !ok || snap.Adapters[i].ProviderCaps == nil {
				continue
			}
			loc, err := policy.LoadLocation(snap.Adapters[i].Timezone)
			if err != nil {
				loc = time.UTC
			}
			if u.Day.UTC().Equal(dayOf(now, loc)) {
				if snap.Adapters[i].SentTodayByProvider == nil {
					snap.Adapters[i].SentTodayByProvider = map[string]int{}
				}
				snap.Adapters[i].SentTodayByProvider[u.Provider] += u.Sent
			}
		}
		for _, b := range budgets {
			if i, ok := idx[b.AdapterID]; ok {
				snap.Adapters[i].Budgets[b.SequenceVersionID] = b.MaxSharePct
			}
		}

		pools, err := q.ForecastPools(ctx, tenant)
		if err != nil {
			return err
		}
		members, err := q.ForecastMembers(ctx, tenant)
		if err != nil {
			return err
		}
		counters, err := q.ForecastCounters(ctx, tenant)
		if err != nil {
			return err
		}
		pidx := map[uuid.UUID]int{}
		for _, p := range pools {
			pidx[p.ID] = len(snap.Pools)
			snap.Pools = append(snap.Pools, forecast.Pool{ID: p.ID, Name: p.Name, OnPinUnavailable: p.OnPinUnavailable})
		}
		type pm struct{ pool, adapter uuid.UUID }
		midx := map[pm]*forecast.Member{}
		for _, m := range members {
			p := &snap.Pools[pidx[m.PoolID]]
			p.Members = append(p.Members, forecast.Member{AdapterID: m.AdapterID, Weight: m.Weight, Active: m.Active, Counters: map[uuid.UUID]int64{}})
		}
		for i := range snap.Pools {
			for j := range snap.Pools[i].Members {
				midx[pm{snap.Pools[i].ID, snap.Pools[i].Members[j].AdapterID}] = &snap.Pools[i].Members[j]
			}
		}
		for _, c := range counters {
			if m := midx[pm{c.PoolID, c.AdapterID}]; m != nil {
				m.Counters[c.SequenceVersionID] = c.Counter
			}
		}

		versions, err := q.ForecastVersions(ctx, tenant)
		if err != nil {
			return err
		}
		steps, err := q.ForecastSteps(ctx, tenant)
		if err != nil {
			return err
		}
		vidx := map[uuid.UUID]int{}
		for _, v := range versions {
			fv := forecast.Version{ID: v.ID, SequenceKey: v.SequenceKey, Version: v.Version, Active: v.State == "active", PoolID: v.PoolID,
				WindowStart: int(v.WindowStart), WindowEnd: int(v.WindowEnd), WindowTZ: v.WindowTimezone, WindowHolidays: v.WindowHolidays}
			for _, d := range v.WindowDays {
				fv.WindowDays = append(fv.WindowDays, int(d))
			}
			vidx[v.ID] = len(snap.Versions)
			snap.Versions = append(snap.Versions, fv)
		}
		for _, st := range steps {
			if i, ok := vidx[st.SequenceVersionID]; ok {
				fs := forecast.Step{Position: st.Position, DelaySeconds: st.DelaySeconds, AdapterOverrideID: st.AdapterOverrideID}
				if vs := decodeVariants(st.Variants); len(vs) > 0 {
					fs.ID, fs.Winner = st.ID, deref(st.WinnerVariant)
					for _, v := range vs {
						fs.Variants = append(fs.Variants, forecast.StepVariant{Key: v.Key, Weight: v.Weight})
					}
				}
				snap.Versions[i].Steps = append(snap.Versions[i].Steps, fs)
			}
		}

		pending, err := q.ForecastPending(ctx, tenant)
		if err != nil {
			return err
		}
		snap.Enrollments = make([]forecast.Enrollment, len(pending))
		for i, p := range pending {
			snap.Enrollments[i] = forecast.Enrollment{ID: p.ID, VersionID: p.SequenceVersionID, AdapterID: p.AdapterID, Timezone: deref(p.Timezone),
				Suppressed: p.Suppressed, Position: p.Position, ExecAdapter: p.ExecAdapterID, ScheduledFor: p.ScheduledFor,
				Followup: p.Followup, Sending: p.State == "sending", NotBefore: p.NotBefore, Variant: deref(p.Variant), RecipientProvider: deref(p.RecipientProvider)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}
