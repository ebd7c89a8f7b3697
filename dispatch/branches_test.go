package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
)

// addSinkAdapter creates another adapter sending to the world's sink.
func (f *feedWorld) addSinkAdapter(name, from string) string {
	f.t.Helper()
	// The store directly: the API refuses loopback SMTP hosts.
	provider := "sink"
	a, err := f.store.CreateAdapter(context.Background(), f.tenant, dripdrop.AdapterInput{Name: &name, Provider: &provider, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: f.sink.Port(), TLS: "none"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.ID.String()
}

// pool creates a pool with the members (adapter id → weight).
func (f *feedWorld) poolOf(name string, members ...any) string {
	f.t.Helper()
	var ms []any
	for i := 0; i < len(members); i += 2 {
		ms = append(ms, map[string]any{"adapter_id": members[i], "weight": members[i+1]})
	}
	return f.call(201, "POST", "/v1/pools", map[string]any{"name": name, "members": ms})["id"].(string)
}

// sequence creates a sequence on pool with steps (subject, body, delay)
// and extra version fields.
func (f *feedWorld) sequence(key, pool string, extra map[string]any, steps ...[3]any) map[string]any {
	f.t.Helper()
	var st []any
	for i, s := range steps {
		st = append(st, map[string]any{"key": "s" + string(rune('1'+i)), "subject": s[0], "body_text": s[1], "delay_seconds": s[2]})
	}
	body := map[string]any{"key": key, "name": key, "pool_id": pool, "steps": st,
		"send_window": map[string]any{"days": []int{0, 1, 2, 3, 4, 5, 6}, "start": "00:00", "end": "23:59", "timezone": "UTC"}}
	for k, v := range extra {
		body[k] = v
	}
	return f.call(201, "POST", "/v1/sequences", body)
}

func (f *feedWorld) enrollInto(seq, email string) string {
	f.t.Helper()
	return f.call(201, "POST", "/v1/enrollments", map[string]any{"sequence_key": seq, "contact": map[string]any{"email": email, "first_name": "Bob"}})["id"].(string)
}

// liveIn is the contact's live enrollment in a sequence, or nil.
func (f *feedWorld) liveIn(seq, email string) map[string]any {
	f.t.Helper()
	for _, e := range f.call(200, "GET", "/v1/enrollments?email="+email+"&limit=100", nil)["data"].([]any) {
		e := e.(map[string]any)
		if e["sequence_key"] == seq || e["sequence_id"] == f.sequenceID(seq) {
			if e["state"] == "active" || e["state"] == "paused" {
				return f.call(200, "GET", "/v1/enrollments/"+e["id"].(string), nil)
			}
		}
	}
	return nil
}

// messagesTo lists the sink's messages to rcpt, oldest first.
func (f *feedWorld) messagesTo(rcpt string) []map[string]string {
	var out []map[string]string
	for _, m := range f.sink.Messages() {
		if slices.Contains(m.To, rcpt) {
			h := m.Header()
			out = append(out, map[string]string{"from": h.Get("From"), "subject": h.Get("Subject"), "message_id": h.Get("Message-Id"),
				"in_reply_to": h.Get("In-Reply-To"), "references": h.Get("References")})
		}
	}
	return out
}

// A not_now reply moves the contact to the branch's target after the
// delay, pinned to the same adapter (it is a member of the target's pool,
// though WDRR would pick the other), in a new thread; a referral's branch
// without delay enrolls at once, by WDRR when the source's adapter is not
// in the target's pool.
func TestNotNowReplyRoutesAfterTheDelay(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	ada := f.adapter.ID.String()
	bea := f.addSinkAdapter("Bea", "bea@acme.example.com")
	nurturePool := f.poolOf("nurture-pool", bea, 1000, ada, 1)
	beaPool := f.poolOf("bea-only", bea, 1)
	f.sequence("nurture", nurturePool, nil, [3]any{"Checking back", "Is now a better time?", 0})
	f.sequence("referrals", beaPool, nil, [3]any{"Introduced by a colleague", "Your colleague sent me your way.", 0})
	const month = 30 * 86400
	f.sequence("outreach", f.pool.ID.String(), map[string]any{"branches": map[string]any{
		"on_reply": map[string]any{"not_now": map[string]any{"sequence_key": "nurture", "delay_seconds": month},
			"referral": map[string]any{"sequence_key": "referrals"}}}},
		[3]any{"Quick question", "Hello {{first_name}}", 0}, [3]any{"", "Bump", 3 * 86400})
	bob := f.enrollInto("outreach", "bob@example.com")
	cat := f.enrollInto("outreach", "cat@example.com")
	f.run()

	res := f.inbound(201, map[string]any{"message_id": "<bob-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
		"from": "bob@example.com", "subject": "Re: Quick question", "body_text": "Not right now, reach out again next quarter."})
	if res["category"] != "not_now" {
		t.Fatalf("category %v", res["category"])
	}
	src := f.call(200, "GET", "/v1/enrollments/"+bob, nil)
	routes, _ := src["routes"].([]any)
	if src["state"] != "stopped" || src["stop_reason"] != "replied" || len(routes) != 1 {
		t.Fatalf("source after the reply: %v %v routes %v", src["state"], src["stop_reason"], routes)
	}
	rt := routes[0].(map[string]any)
	due, _ := time.Parse(time.RFC3339, rt["due_at"].(string))
	if rt["state"] != "pending" || rt["trigger"] != "on_reply" || rt["category"] != "not_now" || !due.Equal(f.clock.Now().Add(month*time.Second)) {
		t.Fatalf("route %v (due %v, want %v)", rt, due, f.clock.Now().Add(month*time.Second))
	}
	// Not before the delay.
	f.clock.Add(month*time.Second - time.Minute)
	if n, err := f.store.RouteSweep(context.Background(), f.tenant); err != nil || n != 0 {
		t.Fatalf("a minute early the sweep enrolled %d (%v)", n, err)
	}
	if f.liveIn("nurture", "bob@example.com") != nil {
		t.Fatal("enrolled into nurture before the delay")
	}
	f.clock.Add(2 * time.Minute)
	if n, err := f.store.RouteSweep(context.Background(), f.tenant); err != nil || n != 1 {
		t.Fatalf("after the delay the sweep enrolled %d (%v), want 1", n, err)
	}
	moved := f.liveIn("nurture", "bob@example.com")
	if moved == nil || moved["adapter_id"] != ada || moved["routed_from"] != bob {
		t.Fatalf("routed enrollment %v: want pinned to %s (the source's adapter), routed from %s", moved, ada, bob)
	}
	f.run()
	msgs := f.messagesTo("bob@example.com")
	if len(msgs) != 2 {
		t.Fatalf("bob received %d messages, want the outreach intro and the nurture step", len(msgs))
	}
	nm := msgs[1]
	if nm["subject"] != "Checking back" || !strings.Contains(nm["from"], "ada@acme.example.com") || nm["in_reply_to"] != "" || nm["references"] != "" {
		t.Fatalf("the routed message: %v (want Ada's, in a new thread)", nm)
	}
	routes = f.call(200, "GET", "/v1/enrollments/"+bob, nil)["routes"].([]any)
	if rt := routes[0].(map[string]any); rt["state"] != "enrolled" || rt["result_enrollment_id"] != moved["id"] {
		t.Fatalf("route after it ran: %v", rt)
	}

	// A referral routes at once; Ada is not in the target's pool: WDRR picks Bea.
	f.inbound(201, map[string]any{"message_id": "<cat-1@example.com>", "in_reply_to": f.sentMessageID("cat@example.com"),
		"from": "cat@example.com", "subject": "Re: Quick question", "body_text": "I'm not the right person; my colleague Dana handles this."})
	ref := f.liveIn("referrals", "cat@example.com")
	if ref == nil || ref["adapter_id"] != bea || ref["routed_from"] != cat {
		t.Fatalf("referral enrollment %v, want pinned to Bea (%s)", ref, bea)
	}
	got := f.feed([]string{"dripdrop.enrollment.routed"})["dripdrop.enrollment.routed"]
	for len(got) < 2 {
		time.Sleep(20 * time.Millisecond)
		got = f.feed(nil)["dripdrop.enrollment.routed"]
	}
	first := got[0]["metadata"].(map[string]any)
	if first["enrollment_id"] != bob || first["new_enrollment_id"] != moved["id"] || first["trigger"] != "on_reply" || first["category"] != "not_now" {
		t.Fatalf("routed event %v", first)
	}
}

// A target version with continue_thread keeps the routed contact in the
// source's thread (same sender): In-Reply-To the last message, References
// the chain, "Re: " the thread's subject. An auto-reply's branch stops the
// still-live source as routed.
func TestAutoReplyBranchContinuesTheThread(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	f.sequence("second-try", f.pool.ID.String(), map[string]any{"continue_thread": true}, [3]any{"Another angle", "Trying once more.", 0})
	f.sequence("first-try", f.pool.ID.String(), map[string]any{"branches": map[string]any{
		"on_auto_reply": map[string]any{"sequence_key": "second-try", "delay_seconds": 0}}},
		[3]any{"First angle", "Hello", 0}, [3]any{"", "Bump", 0}, [3]any{"", "Last", 5 * 86400})
	src := f.enrollInto("first-try", "dan@example.com")
	f.run()
	before := f.messagesTo("dan@example.com")
	if len(before) != 2 {
		t.Fatalf("dan received %d, want 2 before the auto-reply", len(before))
	}
	f.inbound(201, map[string]any{"message_id": "<auto-1@example.com>", "in_reply_to": before[1]["message_id"],
		"from": "dan@example.com", "subject": "Automatic reply: Re: First angle", "body_text": "Thanks for your message, we will get back to you.",
		"intent": "auto_reply"})
	e := f.call(200, "GET", "/v1/enrollments/"+src, nil)
	if e["state"] != "stopped" || e["stop_reason"] != "routed" {
		t.Fatalf("source after the auto-reply branch: %v %v", e["state"], e["stop_reason"])
	}
	f.run()
	msgs := f.messagesTo("dan@example.com")
	if len(msgs) != 3 {
		t.Fatalf("dan received %d messages, want 3 (the source's last step was cancelled)", len(msgs))
	}
	m := msgs[2]
	if m["subject"] != "Re: First angle" || m["in_reply_to"] != before[1]["message_id"] ||
		m["references"] != before[0]["message_id"]+" "+before[1]["message_id"] {
		t.Fatalf("continued thread: %v (source %v)", m, before)
	}
}

// on_completed_without_reply routes a contact who finished the sequence
// without replying, after the delay; a reply during the delay supersedes
// the pending route.
func TestCompletedWithoutReplyRoutes(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	f.sequence("later", f.pool.ID.String(), nil, [3]any{"Later", "Later", 0})
	f.sequence("short", f.pool.ID.String(), map[string]any{"branches": map[string]any{
		"on_completed_without_reply": map[string]any{"sequence_key": "later", "delay_seconds": 86400}}},
		[3]any{"Short", "One and done", 0})
	quiet := f.enrollInto("short", "quiet@example.com")
	talker := f.enrollInto("short", "talker@example.com")
	f.run()
	if n, err := f.store.RouteSweep(context.Background(), f.tenant); err != nil || n != 0 {
		t.Fatalf("sweep at completion: %d %v", n, err)
	}
	for _, id := range []string{quiet, talker} {
		e := f.call(200, "GET", "/v1/enrollments/"+id, nil)
		if rs, _ := e["routes"].([]any); e["state"] != "completed" || len(rs) != 1 || rs[0].(map[string]any)["state"] != "pending" {
			t.Fatalf("completed enrollment %v routes %v", e["state"], e["routes"])
		}
	}
	// A reply after completion, within the delay, with no branch of its own.
	f.inbound(201, map[string]any{"message_id": "<talk-1@example.com>", "in_reply_to": f.sentMessageID("talker@example.com"),
		"from": "talker@example.com", "subject": "Re: Short", "body_text": "Thanks, noted."})
	f.clock.Add(86400*time.Second + time.Minute)
	if n, err := f.store.RouteSweep(context.Background(), f.tenant); err != nil || n != 1 {
		t.Fatalf("sweep after the delay enrolled %d (%v), want 1", n, err)
	}
	if f.liveIn("later", "quiet@example.com") == nil {
		t.Fatal("the quiet contact was not routed")
	}
	if f.liveIn("later", "talker@example.com") != nil {
		t.Fatal("a contact who replied was routed as completed without reply")
	}
	rs := f.call(200, "GET", "/v1/enrollments/"+talker, nil)["routes"].([]any)
	if r := rs[0].(map[string]any); r["state"] != "skipped" || r["reason"] != "superseded" {
		t.Fatalf("the replier's route: %v", r)
	}
}

// Branches that lead back to their own sequence are refused when the
// version is written, and when a draft is activated after another
// sequence changed; a refused request stores nothing.
func TestBranchCycleRefused(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	pool := f.pool.ID.String()
	one := [3]any{"S", "B", 0}
	f.sequence("a", pool, nil, one)
	f.sequence("b", pool, map[string]any{"branches": map[string]any{"on_reply": map[string]any{"not_now": map[string]any{"sequence_key": "a"}}}}, one)
	problem := func(want int, method, path string, body map[string]any) map[string]any {
		return f.call(want, method, path, body)
	}
	// a → b → a.
	p := problem(422, "POST", "/v1/sequences/"+f.sequenceID("a")+"/versions", map[string]any{"pool_id": pool,
		"steps":    []any{map[string]any{"subject": "S", "body_text": "B"}},
		"branches": map[string]any{"on_completed_without_reply": map[string]any{"sequence_key": "b"}}})
	if p["code"] != "branch_cycle" || p["field"] != "branches.on_completed_without_reply.sequence_key" || fmt.Sprint(p["path"]) != "[a b a]" {
		t.Fatalf("problem %v", p)
	}
	if vs := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("a"), nil)["versions"].([]any); len(vs) != 1 {
		t.Fatalf("the refused version was stored: %d versions", len(vs))
	}
	// A sequence routing to itself.
	p = problem(422, "POST", "/v1/sequences", map[string]any{"key": "loop", "name": "loop", "pool_id": pool,
		"steps": []any{map[string]any{"subject": "S", "body_text": "B"}}, "branches": map[string]any{"on_auto_reply": map[string]any{"sequence_key": "loop"}}})
	if p["code"] != "branch_cycle" {
		t.Fatalf("self-loop: %v", p)
	}
	for _, sq := range f.call(200, "GET", "/v1/sequences?limit=100", nil)["data"].([]any) {
		if sq.(map[string]any)["key"] == "loop" {
			t.Fatal("the refused sequence was stored")
		}
	}
	// A draft of c → d is fine while d has no branches; d → c is fine while
	// c's active version has none; activating the draft closes the cycle.
	f.sequence("c", pool, nil, one)
	f.sequence("d", pool, nil, one)
	problem(201, "POST", "/v1/sequences/"+f.sequenceID("c")+"/versions", map[string]any{"pool_id": pool, "activate": false,
		"steps": []any{map[string]any{"subject": "S", "body_text": "B"}}, "branches": map[string]any{"on_reply": map[string]any{"referral": map[string]any{"sequence_key": "d"}}}})
	problem(201, "POST", "/v1/sequences/"+f.sequenceID("d")+"/versions", map[string]any{"pool_id": pool, "activate": true,
		"steps": []any{map[string]any{"subject": "S", "body_text": "B"}}, "branches": map[string]any{"on_reply": map[string]any{"question": map[string]any{"sequence_key": "c"}}}})
	p = problem(422, "POST", "/v1/sequences/"+f.sequenceID("c")+"/versions/2/activate", nil)
	if p["code"] != "branch_cycle" {
		t.Fatalf("activation: %v", p)
	}
	c := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("c"), nil)["versions"].([]any)
	if c[0].(map[string]any)["state"] != "active" || c[1].(map[string]any)["state"] != "draft" {
		t.Fatalf("the refused activation changed the versions: %v", c)
	}
	// Unknown targets and categories.
	if p := problem(404, "POST", "/v1/sequences/"+f.sequenceID("a")+"/versions", map[string]any{"pool_id": pool,
		"steps": []any{map[string]any{"subject": "S", "body_text": "B"}}, "branches": map[string]any{"on_auto_reply": map[string]any{"sequence_key": "nope"}}}); p["field"] != "branches.on_auto_reply.sequence_key" {
		t.Fatalf("unknown target: %v", p)
	}
	if p := problem(422, "POST", "/v1/sequences/"+f.sequenceID("a")+"/versions", map[string]any{"pool_id": pool,
		"steps": []any{map[string]any{"subject": "S", "body_text": "B"}}, "branches": map[string]any{"on_reply": map[string]any{"angry": map[string]any{"sequence_key": "b"}}}}); p["field"] != "branches.on_reply.angry" {
		t.Fatalf("unknown category: %v", p)
	}
}

// With the leader running, its route_sweep carries a delayed route out
// once the delay has passed on the clock.
func TestLeaderRunsTheRouteSweep(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	f.sequence("nurture", f.pool.ID.String(), nil, [3]any{"Later", "Later", 0})
	f.sequence("outreach", f.pool.ID.String(), map[string]any{"branches": map[string]any{
		"on_reply": map[string]any{"not_now": map[string]any{"sequence_key": "nurture", "delay_seconds": 3600}}}}, [3]any{"Hi", "Hello", 0})
	f.enrollInto("outreach", "bob@example.com")
	f.run()
	f.inbound(201, map[string]any{"message_id": "<ld-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
		"from": "bob@example.com", "subject": "Re: Hi", "body_text": "Not at the moment."})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	l := &dispatch.Leader{Store: f.store, Holder: "solo", TTL: time.Minute, Resolution: 5 * time.Millisecond,
		Schedules: map[string]string{"rescue_stale_sending": "@every 1h", "health_sweep": "@every 1h", "idempotency_janitor": "@every 1h",
			"variant_sweep": "@every 1h", "route_sweep": "@every 1m"}}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(3 * time.Second); !l.IsLeader(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
	}
	f.clock.Add(30 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if f.liveIn("nurture", "bob@example.com") != nil {
		t.Fatal("routed before the delay")
	}
	f.clock.Add(31 * time.Minute)
	for deadline := time.Now().Add(3 * time.Second); f.liveIn("nurture", "bob@example.com") == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leader's route_sweep did not route the contact after the delay")
		}
	}
}

// A routed contact keeps its recipient provider: the target enrollment
// carries it (so provider caps still count it), and a target pool with
// provider_matching prefer pins it to a member of that provider, however
// the weights lean.
func TestRoutedContactKeepsItsProvider(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
	gina := f.addSinkAdapter("Gina", "gina@acme.example.com")
	otto := f.addSinkAdapter("Otto", "otto@acme.example.com")
	f.call(200, "PATCH", "/v1/adapters/"+gina, map[string]any{"mailbox_provider": "google"})
	f.call(200, "PATCH", "/v1/adapters/"+otto, map[string]any{"mailbox_provider": "microsoft"})
	target := f.poolOf("matching", otto, 1000, gina, 1)
	f.call(200, "PATCH", "/v1/pools/"+target, map[string]any{"provider_matching": "prefer"})
	f.sequence("referrals", target, nil, [3]any{"Introduced by a colleague", "Your colleague sent me your way.", 0})
	f.sequence("outreach", f.pool.ID.String(), map[string]any{"branches": map[string]any{
		"on_reply": map[string]any{"referral": map[string]any{"sequence_key": "referrals"}}}},
		[3]any{"Quick question", "Hello {{first_name}}", 0})
	src := f.enrollInto("outreach", "dana@gmail.com")
	if got := f.call(200, "GET", "/v1/enrollments/"+src, nil)["recipient_provider"]; got != "google" {
		t.Fatalf("source recipient_provider %v, want google", got)
	}
	f.run()
	res := f.inbound(201, map[string]any{"message_id": "<dana-1@gmail.com>", "in_reply_to": f.sentMessageID("dana@gmail.com"),
		"from": "dana@gmail.com", "subject": "Re: Quick question", "body_text": "Please contact my colleague Sam, he handles this."})
	if res["category"] != "referral" {
		t.Fatalf("category %v, want referral", res["category"])
	}
	moved := f.liveIn("referrals", "dana@gmail.com")
	if moved == nil {
		t.Fatal("the referral did not enroll the contact into the target")
	}
	if moved["recipient_provider"] != "google" || moved["adapter_id"] != gina || moved["routed_from"] != src {
		t.Fatalf("routed enrollment: provider %v adapter %v (want google on Gina %s; Otto is %s), routed from %v",
			moved["recipient_provider"], moved["adapter_id"], gina, otto, moved["routed_from"])
	}
}
