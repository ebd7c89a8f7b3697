package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser: $CHROMIUM, then Debian's chromium and the
// usual names. scripts/ensure-chromium (run by `make test`) installs it.
func chromium() string {
	for _, n := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if n == "" {
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// artifacts is where screenshots go: $DRIPDROP_ARTIFACTS, else a temp dir.
func artifacts(t *testing.T) string {
	if d := os.Getenv("DRIPDROP_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is a headless Chromium tab that records console errors and
// uncaught exceptions.
type browser struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T) *browser {
	path := chromium()
	if path == "" {
		t.Skip("chromium is not installed and scripts/ensure-chromium could not install it: skipping the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// open navigates and returns the HTTP status of the document.
func (b *browser) open(url string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Navigate(url))
	if err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	if res == nil {
		return 0
	}
	return res.Status
}

// click clicks an element that loads a page and waits for that page.
func (b *browser) click(sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	return res.Status
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return run(b, chromedp.Text(chromedp.CSS(sel)))
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	return run(b, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// screenshot writes a full-page PNG and checks it is not blank: it must
// decode and hold a fair number of distinct colours.
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	buf := run(b, chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if n := distinctColours(img); n < 16 {
		b.t.Fatalf("screenshot %s looks blank: %d distinct colours", name, n)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func distinctColours(img image.Image) int {
	seen := map[[4]uint32]struct{}{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = struct{}{}
		}
	}
	return len(seen)
}

func (b *browser) noProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("the browser reported errors:\n%s", strings.Join(b.problems, "\n"))
	}
}

func contains(t *testing.T, page, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: the page does not show %q", page, w)
		}
	}
}

// TestDashboardInBrowser signs in with a real headless Chromium, opens
// every page over the seeded engine, checks text and chart elements,
// screenshots each page, rests and resumes an adapter, and checks that
// another tenant's ids answer 404 — with no console errors throughout.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	// The world first: cleanups run last-in first-out, so the browser (and
	// its open event stream) ends before the server waits for its requests.
	w := newWorld(t)
	b := newBrowser(t)
	dir := artifacts(t)
	base := w.srv.URL
	s := w.acme

	// Sign in.
	b.open(base + "/ui/")
	b.do(chromedp.WaitVisible(chromedp.ID("api_key")))
	b.screenshot(dir, "login")
	b.do(chromedp.SendKeys(chromedp.ID("api_key"), s.key), chromedp.Submit(chromedp.ID("api_key")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="sent-today"]`)))

	// Overview: today's sends against capacity, outcomes, deferrals, backlog.
	main := b.text("#main")
	contains(t, "overview", main, "Overview", "Alice mailbox acme", "Bob mailbox acme", "ramp_cap", "quiet_hours", "Due backlog")
	if got := b.text(`[data-testid="replied"]`); got != "1" {
		t.Errorf("overview: replies today %q, want 1", got)
	}
	if got := b.text(`[data-testid="complained"]`); got != "1" {
		t.Errorf("overview: complaints today %q, want 1", got)
	}
	if b.count("svg.meter") < 3 {
		t.Errorf("overview: %d capacity meters, want the total and one per adapter", b.count("svg.meter"))
	}
	b.screenshot(dir, "overview")

	// Keyboard: Tab reaches the skip link, then the navigation; Enter on a
	// focused link follows it.
	b.do(chromedp.KeyEvent("\t"))
	if got := run(b, chromedp.Evaluate[string]("document.activeElement.textContent")); got != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", got)
	}
	b.do(chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	if got := run(b, chromedp.Evaluate[string]("document.activeElement.getAttribute('href')")); got != "/ui/adapters" {
		t.Errorf("fourth Tab focuses %q, want the Adapters link", got)
	}

	// Adapters list and the adapter page with its 30-day chart.
	b.open(base + "/ui/adapters")
	contains(t, "adapters", b.text("#main"), "Alice mailbox acme", "ali@acme.example.com", "ramping", "active")
	b.screenshot(dir, "adapters")
	b.open(base + "/ui/adapters/" + s.adapterA)
	main = b.text("#main")
	contains(t, "adapter", main, "Alice mailbox acme", "Last 30 days", "bounce_threshold", "probe_success", "Hard bounces")
	if n := b.count("svg.adapter-chart rect.bar.sent"); n != 30 {
		t.Errorf("adapter chart: %d send bars, want 30", n)
	}
	if n := b.count("svg.adapter-chart line.threshold"); n != 2 {
		t.Errorf("adapter chart: %d threshold lines, want 2", n)
	}
	for _, band := range []string{"resting", "probing", "ramping"} {
		if b.count("svg.adapter-chart rect.band-"+band) == 0 {
			t.Errorf("adapter chart: no %s band", band)
		}
	}
	if b.count("svg.adapter-chart polyline.rate.bounce") != 1 || b.count("svg.adapter-chart circle.point.bounce") == 0 {
		t.Errorf("adapter chart: no bounce-rate line")
	}
	b.screenshot(dir, "adapter")

	// Rest and resume: health signals that change the adapter in the database.
	b.click("#rest")
	if got := b.text(`[data-testid="state"]`); got != "resting" {
		t.Errorf("after rest the page shows %q", got)
	}
	if got := w.healthState("acme", s.adapterA); got != "resting" {
		t.Fatalf("after rest the adapter is %q in the database, want resting", got)
	}
	contains(t, "adapter after rest", b.text("#main"), "operator_rest", "dashboard")
	b.click("#resume")
	if got := w.healthState("acme", s.adapterA); got != "active" {
		t.Fatalf("after resume the adapter is %q in the database, want active", got)
	}
	contains(t, "adapter after resume", b.text("#main"), "operator_resume")

	// Pools: members, weights, effective weights, pins.
	b.open(base + "/ui/pools/" + s.pool)
	main = b.text("#main")
	contains(t, "pool", main, "main pool acme", "Alice mailbox acme", "Bob mailbox acme", "3.00", "1.00")
	b.screenshot(dir, "pools")

	// Sequences.
	b.open(base + "/ui/sequences")
	contains(t, "sequences", b.text("#main"), "Welcome acme", "welcome")
	b.open(base + "/ui/sequences/" + s.seq)
	contains(t, "sequence", b.text("#main"), "Welcome acme", "Version 1", "intro", "bump", "Funnel by step", "Stop reasons", "replied", "1 sent · 2 scheduled · 0 failed")
	if n := b.count("svg.funnel rect.funnel-bar.sent"); n != 2 {
		t.Errorf("sequence: %d funnel bars, want one per step (2)", n)
	}
	b.screenshot(dir, "sequence")

	// The A/B sequence: a row per variant with its Wilson interval drawn
	// as a bar, the reply categories, and the branch as an arrow.
	b.open(base + "/ui/sequences/" + s.abSeq)
	main = b.text("#main")
	contains(t, "a/b sequence", main, "Variants of step intro", "auto-winner on reply_rate", "Branches", "on_reply · not_now", "after 30 d", "nurture", "Reply categories", "interested")
	if n := b.count(`[data-testid="variants-intro"] tr.variant-row`); n != 2 {
		t.Errorf("a/b sequence: %d variant rows, want 2", n)
	}
	if n := b.count(`[data-testid="variants-intro"] svg.interval rect.interval-bar`); n != 2 {
		t.Errorf("a/b sequence: %d interval bars, want one per variant", n)
	}
	// A has 2 sent, 2 replies; B 2 sent, none: A's bar starts right of B's.
	ax := run(b, chromedp.Evaluate[float64](`+document.querySelectorAll('[data-testid="variants-intro"] rect.interval-bar')[0].getAttribute('x')`))
	bx := run(b, chromedp.Evaluate[float64](`+document.querySelectorAll('[data-testid="variants-intro"] rect.interval-bar')[1].getAttribute('x')`))
	if !(ax > bx) {
		t.Errorf("a/b sequence: A's interval starts at %v, B's at %v; want A's lower bound to the right", ax, bx)
	}
	rows := b.text(`[data-testid="variants-intro"] tbody`)
	contains(t, "a/b variant rows", rows, "100% (34.24%–100%)", "0% (0%–65.76%)")
	if n := b.count(`svg.branches line.branch-arrow`); n != 1 {
		t.Errorf("a/b sequence: %d branch arrows, want 1", n)
	}
	b.screenshot(dir, "sequence-ab")
	b.click(`[data-testid="branches"] a[href="/ui/sequences/` + s.nurtureSeq + `"]`)
	contains(t, "branch target", b.text("#main"), "Nurture acme")
	// The not_now reply on dan's timeline, with the phrase that decided.
	b.open(base + "/ui/enrollments/" + s.abEnrollments[0])
	if got := b.text(`[data-testid="reply-category"]`); got != "not_now" {
		t.Errorf("enrollment: reply category %q, want not_now", got)
	}
	contains(t, "a/b enrollment", b.text("#main"), "Reply: not_now", `"not right now" (en)`, "by engine")
	b.screenshot(dir, "enrollment-category")

	// Enrollments: search by sequence and state, the replied one's timeline, and a live one's explain trace.
	b.open(base + "/ui/enrollments")
	b.do(chromedp.SetValue(chromedp.ID("q-state"), "stopped"))
	b.click("#search")
	main = b.text("#main")
	contains(t, "enrollment search", main, "ann@lead-acme.example.com", "replied")
	if strings.Contains(main, "ben@lead-acme") {
		t.Errorf("enrollment search for stopped lists an active enrollment")
	}
	b.screenshot(dir, "enrollments")
	b.click(`a[href="/ui/enrollments/` + s.enrollments[0] + `"]`)
	contains(t, "enrollment", b.text("#main"), "ann@lead-acme.example.com", "stopped", "replied", "Step intro", "Timeline")
	b.open(base + "/ui/enrollments/" + s.enrollments[1])
	contains(t, "enrollment", b.text("#main"), "ben@lead-acme.example.com", "Why not now, and when", "Next step intro", "Next eligible")
	if b.count(".explain table tbody tr") == 0 {
		t.Errorf("enrollment: no policy verdicts")
	}
	b.screenshot(dir, "enrollment")

	b.noProblems()

	// Another tenant's ids answer 404 (the browser logs each 404 document).
	for _, path := range []string{"/ui/adapters/" + w.other.adapterA, "/ui/pools/" + w.other.pool, "/ui/sequences/" + w.other.seq, "/ui/enrollments/" + w.other.enrollments[0]} {
		if st := b.open(base + path); st != 404 {
			t.Errorf("%s of another tenant: %d, want 404", path, st)
		}
		contains(t, path, b.text("#main"), "Not Found")
	}
	b.mu.Lock()
	for _, p := range b.problems {
		if !strings.Contains(p, "status of 404") {
			t.Errorf("the browser reported an error: %s", p)
		}
	}
	b.mu.Unlock()
}
