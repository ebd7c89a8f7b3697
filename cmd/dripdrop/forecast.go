package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/forecast"
)

// enrollFlags collects repeated -enroll SEQUENCE_KEY:COUNT[@RFC3339].
type enrollFlags []forecast.Enroll

func (e *enrollFlags) String() string { return "" }
func (e *enrollFlags) Set(v string) error {
	key, rest, ok := strings.Cut(v, ":")
	if !ok || key == "" {
		return errors.New("want SEQUENCE_KEY:COUNT[@TIME]")
	}
	count, at, hasAt := strings.Cut(rest, "@")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return errors.New("COUNT must be a positive integer")
	}
	en := forecast.Enroll{SequenceKey: key, Count: n}
	if hasAt {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return errors.New("TIME must be RFC 3339, e.g. 2026-12-01T09:00:00Z")
		}
		en.At = &t
	}
	*e = append(*e, en)
	return nil
}

// runForecast prints a forecast (docs/forecast.md): through the API with a key, or
// straight from the database with -database-url and -tenant.
func runForecast(ctx context.Context, args []string, out io.Writer, _ *slog.Logger) error {
	fs := newFlagSet("forecast")
	apiURL := fs.String("api-url", envDefault("DRIPDROP_API_URL", "http://127.0.0.1:8080"), "base URL of a running engine (env DRIPDROP_API_URL)")
	apiKey := fs.String("api-key", envDefault("DRIPDROP_API_KEY", ""), "tenant API key (env DRIPDROP_API_KEY)")
	dbURL := fs.String("database-url", "", "read the snapshot from this database instead of the API (with -tenant)")
	tenant := fs.String("tenant", "", "tenant key (with -database-url)")
	reqFile := fs.String("request", "", "JSON forecast request (changes, horizon) from this file, - for stdin")
	days := fs.Int("days", 0, "horizon in days (default 30)")
	noJitter := fs.Bool("no-jitter", false, "simulate gaps without their jitter")
	asJSON := fs.Bool("json", false, "print the forecast as JSON")
	perAdapter := fs.Bool("per-adapter", false, "include per-adapter rows")
	var enroll enrollFlags
	fs.Var(&enroll, "enroll", "hypothetical enrollment SEQUENCE_KEY:COUNT[@RFC3339] (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var req forecast.Request
	if *reqFile != "" {
		var b []byte
		var err error
		if *reqFile == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*reqFile)
		}
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return fmt.Errorf("%s: %w", *reqFile, err)
		}
	}
	if *days > 0 {
		req.HorizonDays = *days
	}
	req.NoJitter = req.NoJitter || *noJitter
	req.PerAdapter = req.PerAdapter || *perAdapter
	req.Changes.Enroll = append(req.Changes.Enroll, enroll...)

	var res *forecast.Result
	var err error
	if *dbURL != "" {
		if *tenant == "" {
			return errors.New("-tenant is required with -database-url")
		}
		res, err = forecastFromDB(ctx, *dbURL, *tenant, req)
	} else {
		if *apiKey == "" {
			return errors.New("an API key is required (-api-key or DRIPDROP_API_KEY), or use -database-url and -tenant")
		}
		res, err = forecastFromAPI(ctx, *apiURL, *apiKey, req)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printForecast(out, res)
	return nil
}

func forecastFromDB(ctx context.Context, url, tenant string, req forecast.Request) (*forecast.Result, error) {
	store, err := db.Open(ctx, url, db.Options{MaxConns: 2})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	snap, err := store.ForecastSnapshot(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return forecast.Run(snap, req)
}

func forecastFromAPI(ctx context.Context, base, key string, req forecast.Request) (*forecast.Result, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(base, "/")+"/v1/forecast", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+key)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var p struct{ Code, Detail, Field string }
		_ = json.Unmarshal(b, &p)
		if p.Code != "" {
			if p.Field != "" {
				return nil, fmt.Errorf("forecast refused: %s (%s): %s", p.Code, p.Field, p.Detail)
			}
			return nil, fmt.Errorf("forecast refused: %s: %s", p.Code, p.Detail)
		}
		return nil, fmt.Errorf("forecast: HTTP %d", resp.StatusCode)
	}
	var res forecast.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// printForecast writes the compact table: one line per day, then one per
// sequence.
func printForecast(out io.Writer, res *forecast.Result) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "DAY\tSENDS\tFIRST\tFOLLOW-UP\tBINDING\n")
	for _, d := range res.Days {
		b := "-"
		if d.Binding != nil {
			b = d.Binding.Policy + " of " + d.Binding.AdapterName
			if d.Binding.Adapters > 1 {
				b += fmt.Sprintf(" (+%d more)", d.Binding.Adapters-1)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", d.Date, d.Sends, d.FirstTouches, d.FollowUps, b)
		for _, a := range d.Adapters {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\n", a.Name, a.Sends, a.FirstTouches, a.FollowUps, a.Binding)
		}
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SEQUENCE\tCONTACTS\tCOMPLETED\tP50\tP90\n")
	row := func(name string, c forecast.Completion) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", name, c.Contacts, c.Completed, when(c.P50), when(c.P90))
	}
	for _, s := range res.Sequences {
		if s.Enrolled.Contacts > 0 {
			row(s.SequenceKey, s.Enrolled)
		}
		if s.Hypothetical != nil {
			row(s.SequenceKey+" (hypothetical)", *s.Hypothetical)
		}
	}
	tw.Flush()
	if res.NotEnrolled > 0 {
		fmt.Fprintf(out, "\n%d hypothetical contacts could not be enrolled: the pool was exhausted\n", res.NotEnrolled)
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "after horizon"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
