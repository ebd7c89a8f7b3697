package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/variant"
)

// abSequence creates the one-step sequence "ab" over the API: variants A
// and B with the given weights, subjects "Variant A"/"Variant B" and their
// own bodies, and an optional auto-winner rule. It returns the step's id.
func (f *feedWorld) abSequence(weights [2]int, autoWinner map[string]any) uuid.UUID {
	f.t.Helper()
	st := map[string]any{"key": "intro", "subject": "Hello {{first_name}}", "body_text": "Base body",
		"variants": []map[string]any{
			{"key": "A", "subject": "Variant A for {{first_name}}", "body_text": "Body {of|for} A", "weight": weights[0]},
			{"key": "B", "subject": "Variant B", "weight": weights[1]},
		}}
	if autoWinner != nil {
		st["auto_winner"] = autoWinner
	}
	m := f.call(201, "POST", "/v1/sequences", map[string]any{"key": "ab", "name": "A/B", "pool_id": f.pool.ID,
		"steps": []any{st}})
	step := m["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)
	if vs := step["variants"].([]any); len(vs) != 2 {
		f.t.Fatalf("variants not stored: %v", step)
	}
	return uuid.MustParse(step["id"].(string))
}

// enrollAB enrolls n contacts prefix-i@example.com into "ab" over the API.
func (f *feedWorld) enrollAB(prefix string, n int) []uuid.UUID {
	f.t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range n {
		m := f.call(201, "POST", "/v1/enrollments", map[string]any{"sequence_key": "ab",
			"contact": map[string]any{"email": fmt.Sprintf("%s-%d@example.com", prefix, i), "first_name": "Kim"}})
		ids[i] = uuid.MustParse(m["id"].(string))
	}
	return ids
}

// execVariant is the variant recorded on an enrollment's first execution.
func (f *feedWorld) execVariant(id uuid.UUID) (variantKey, state string, attempt int) {
	f.t.Helper()
	m := f.call(200, "GET", "/v1/enrollments/"+id.String(), nil)
	x := m["executions"].([]any)[0].(map[string]any)
	v, _ := x["variant"].(string)
	return v, x["state"].(string), int(x["attempt"].(float64))
}

// subjectsTo maps each recipient to the subjects the sink accepted for it.
func (f *feedWorld) subjectsTo() map[string][]string {
	out := map[string][]string{}
	for _, m := range f.sink.Messages() {
		out[m.To[0]] = append(out[m.To[0]], m.Header().Get("Subject"))
	}
	return out
}

// Every enrollment gets the variant of the weighted hash of (enrollment,
// step), recorded on its execution at the first attempt; a temporary
// failure's retry, sent by a second engine (another store and dispatcher
// on the same database), renders the same variant.
func TestVariantAssignmentStableAcrossRetriesAndEngines(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	step := f.abSequence([2]int{1, 3}, nil)
	f.sink.SetFaults(func(_ string, attempt int) smtpsink.Fault {
		if attempt == 1 {
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 7, 1}, Text: "greylisted"}
		}
		return smtpsink.Fault{}
	})
	ids := f.enrollAB("kim", 40)
	// The forecast assigns the variants with the engine's rule.
	fc := f.call(200, "POST", "/v1/forecast", map[string]any{"horizon_days": 2})
	forecastSends := map[string]int{}
	for _, sq := range fc["sequences"].([]any) {
		if sq := sq.(map[string]any); sq["sequence_key"] == "ab" {
			for _, v := range sq["variants"].([]any) {
				v := v.(map[string]any)
				forecastSends[v["variant"].(string)] += int(v["sends"].(float64))
			}
		}
	}
	f.run() // engine 1: every first attempt is greylisted
	want := map[uuid.UUID]string{}
	count := map[string]int{}
	for _, id := range ids {
		v, state, attempt := f.execVariant(id)
		exp := []string{"A", "B"}[variant.Assign(id, step, []int{1, 3})]
		if v != exp || state != "scheduled" || attempt != 1 {
			t.Fatalf("after the first attempt: variant %q state %s attempt %d; want %q, scheduled, 1", v, state, attempt, exp)
		}
		want[id] = v
		count[v]++
	}
	if count["A"] == 0 || count["B"] == 0 {
		t.Fatalf("40 contacts at 1:3 all got one variant: %v", count)
	}
	if forecastSends["A"] != count["A"] || forecastSends["B"] != count["B"] {
		t.Fatalf("the forecast's variants %v, the engine's %v", forecastSends, count)
	}

	// Engine 2: its own store and dispatcher on the same database.
	store2, err := db.Open(context.Background(), f.URL, db.Options{Vault: f.Box, Clock: f.clock, Telemetry: f.Bus})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store2.Close)
	disp2, err := dispatch.New(dispatch.Config{Store: store2, Transport: sinkTransport(), Telemetry: f.Bus, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(31 * time.Second)
	settle(t, disp2)
	subjects := f.subjectsTo()
	for i, id := range ids {
		v, state, attempt := f.execVariant(id)
		if v != want[id] || state != "sent" || attempt != 2 {
			t.Fatalf("after the retry: variant %q state %s attempt %d; want %q, sent, 2", v, state, attempt, want[id])
		}
		rcpt := fmt.Sprintf("kim-%d@example.com", i)
		wantSubject := map[string]string{"A": "Variant A for Kim", "B": "Variant B"}[v]
		if got := subjects[rcpt]; len(got) != 1 || got[0] != wantSubject {
			t.Fatalf("%s received %v, want exactly [%q]", rcpt, got, wantSubject)
		}
	}
	// The body follows the variant too: A's own, B the step's.
	for _, m := range f.sink.Messages() {
		body := string(m.Data)
		switch m.Header().Get("Subject") {
		case "Variant A for Kim":
			if !strings.Contains(body, "Body of A") && !strings.Contains(body, "Body for A") {
				t.Fatalf("variant A's message lacks its body: %s", body)
			}
		case "Variant B":
			if !strings.Contains(body, "Base body") {
				t.Fatalf("variant B's message lacks the step's body: %s", body)
			}
		}
	}
	// Stats count the sends per variant.
	st := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("ab")+"/stats", nil)
	vs := st["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["variants"].([]any)
	for _, x := range vs {
		v := x.(map[string]any)
		if int(v["sent"].(float64)) != count[v["key"].(string)] {
			t.Fatalf("stats %v, want sent %v", vs, count)
		}
	}
}

// sequenceID is the id of the sequence with key.
func (f *feedWorld) sequenceID(key string) string {
	f.t.Helper()
	for _, s := range f.call(200, "GET", "/v1/sequences?limit=100", nil)["data"].([]any) {
		if m := s.(map[string]any); m["key"] == key {
			return m["id"].(string)
		}
	}
	f.t.Fatalf("no sequence %q", key)
	return ""
}

// settle ticks d until nothing is claimed.
func settle(t *testing.T, d *dispatch.Dispatcher) {
	t.Helper()
	for range 100 {
		n, err := d.Tick(context.Background())
		d.Drain()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the dispatcher did not settle")
}

// The auto-winner promotes A at exactly the reply after which the Wilson
// lower bound of A's reply rate exceeds B's upper bound (every variant past
// min_sent), not one reply earlier; then new assignments get A, while an
// execution given B before the promotion keeps B on its retry.
func TestAutoWinnerPromotedExactlyWhenTheRuleSays(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	step := f.abSequence([2]int{1, 1}, map[string]any{"metric": "reply_rate", "min_sent": 20, "confidence": 0.95})
	ids := f.enrollAB("p", 70)
	f.run()
	byVariant := map[string][]int{}
	for i, id := range ids {
		v, state, _ := f.execVariant(id)
		if state != "sent" {
			t.Fatalf("enrollment %d: %s", i, state)
		}
		byVariant[v] = append(byVariant[v], i)
	}
	nA, nB := len(byVariant["A"]), len(byVariant["B"])
	if nA < 20 || nB < 20 {
		t.Fatalf("70 contacts at 1:1 split %d/%d: below min_sent", nA, nB)
	}
	// How many of A's contacts must reply (B: none) for the rule to hold.
	_, hiB := variant.Wilson(0, nB, 0.95)
	need := -1
	for k := 0; k <= nA; k++ {
		if lo, _ := variant.Wilson(k, nA, 0.95); lo > hiB {
			need = k
			break
		}
	}
	if need < 1 {
		t.Fatalf("no reply count makes A win (%d/%d)", nA, nB)
	}

	// Contacts enrolled now and greylisted: their executions are given a
	// variant before the promotion.
	f.sink.SetFaults(func(rcpt string, attempt int) smtpsink.Fault {
		if strings.HasPrefix(rcpt, "late-") && attempt == 1 {
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 7, 1}, Text: "greylisted"}
		}
		return smtpsink.Fault{}
	})
	late := f.enrollAB("late", 12)
	f.run()
	lateVariant := map[uuid.UUID]string{}
	for _, id := range late {
		v, state, _ := f.execVariant(id)
		if state != "scheduled" {
			t.Fatalf("late contact: %s", state)
		}
		lateVariant[id] = v
	}

	reply := func(i int) {
		rcpt := fmt.Sprintf("p-%d@example.com", i)
		f.inbound(201, map[string]any{"message_id": fmt.Sprintf("<r-%d@example.com>", i), "in_reply_to": f.sentMessageID(rcpt),
			"from": rcpt, "subject": "Re: Variant A", "body_text": "Sounds good, let's talk next week."})
	}
	winner := func() any {
		st := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("ab")+"/stats", nil)
		return st["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["winner"]
	}
	for _, i := range byVariant["A"][:need-1] {
		reply(i)
	}
	if w := winner(); w != nil {
		t.Fatalf("promoted %v after %d replies; the rule needs %d", w, need-1, need)
	}
	if n, err := f.store.VariantSweep(context.Background(), f.tenant); err != nil || n != 0 {
		t.Fatalf("the sweep promoted %d (%v) one reply short", n, err)
	}
	reply(byVariant["A"][need-1])
	if w := winner(); w != "A" {
		t.Fatalf("winner %v after %d replies, want A", w, need)
	}
	got := f.feed([]string{"dripdrop.sequence.variant_promoted"})["dripdrop.sequence.variant_promoted"]
	if len(got) != 1 {
		t.Fatalf("variant_promoted %d times, want once", len(got))
	}
	md := got[0]["metadata"].(map[string]any)
	if md["variant"] != "A" || md["step_id"] != step.String() || md["metric"] != "reply_rate" || int(md["successes"].(float64)) != need || int(md["sent"].(float64)) != nA {
		t.Fatalf("variant_promoted metadata %v", md)
	}
	// Stats: A's lower bound is above B's upper bound.
	st := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("ab")+"/stats", nil)
	vs := st["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["variants"].([]any)
	a, b := vs[0].(map[string]any), vs[1].(map[string]any)
	if a["winner"] != true || int(a["replies"].(float64)) != need || int(a["positive_replies"].(float64)) != need || int(b["replies"].(float64)) != 0 ||
		!(a["reply_rate"].(map[string]any)["low"].(float64) > b["reply_rate"].(map[string]any)["high"].(float64)) {
		t.Fatalf("variant stats after the promotion: %v", vs)
	}

	// New assignments get A; the late executions keep what they were given.
	fresh := f.enrollAB("fresh", 10)
	f.clock.Add(31 * time.Second)
	f.run()
	for _, id := range fresh {
		if v, state, _ := f.execVariant(id); v != "A" || state != "sent" {
			t.Fatalf("a new assignment after the promotion got %q (%s), want A", v, state)
		}
	}
	keptB := 0
	for _, id := range late {
		v, state, _ := f.execVariant(id)
		if v != lateVariant[id] || state != "sent" {
			t.Fatalf("a late execution given %q before the promotion sent %q (%s)", lateVariant[id], v, state)
		}
		if v == "B" {
			keptB++
		}
	}
	if keptB == 0 {
		t.Logf("no late execution was given B (12 contacts at 1:1); stickiness only checked for A")
	}
}

// A human reply is categorised at ingest with its evidence, shown on the
// inbound record, the enrollment and the stats, and corrected by PATCH
// /v1/inbound/{id}; a correction of anything but a reply is refused and
// changes nothing.
func TestReplyCategoryThroughTheAPI(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0), step("bump", "", "Bump", 86400))
	en := f.enroll("bob@example.com")
	f.enroll("ann@example.com")
	f.run()
	res := f.inbound(201, map[string]any{"message_id": "<cat-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
		"from": "bob@example.com", "subject": "Re: Hi",
		"body_text": "Nicht jetzt, melden Sie sich bitte nächstes Quartal.\n\nAm 7. Dez. schrieb Ada <ada@acme.example.com>:\n> Hätten Sie Interesse?"})
	if res["category"] != "not_now" {
		t.Fatalf("ingest result %v", res)
	}
	id := res["id"].(string)
	in := f.call(200, "GET", "/v1/inbound/"+id, nil)
	ev := in["category_evidence"].(map[string]any)
	if in["category"] != "not_now" || in["category_source"] != "engine" || ev["phrase"] != "nicht jetzt" || ev["language"] != "de" || in["intent"] != "reply" {
		t.Fatalf("inbound record %v", in)
	}
	if e := f.call(200, "GET", "/v1/enrollments/"+en, nil); e["reply_category"] != "not_now" {
		t.Fatalf("enrollment %v", e["reply_category"])
	}
	// Corrections.
	f.call(422, "PATCH", "/v1/inbound/"+id, map[string]any{"category": "hot"})
	f.call(422, "PATCH", "/v1/inbound/"+id, map[string]any{"category": "interested", "source": "robot"})
	f.call(422, "PATCH", "/v1/inbound/"+id, map[string]any{})
	f.call(404, "PATCH", "/v1/inbound/"+uuid.NewString(), map[string]any{"category": "interested"})
	got := f.call(200, "PATCH", "/v1/inbound/"+id, map[string]any{"category": "interested", "source": "crm"})
	if got["category"] != "interested" || got["category_source"] != "crm" || got["category_evidence"].(map[string]any)["previous"] != "not_now" {
		t.Fatalf("after the correction: %v", got)
	}
	if e := f.call(200, "GET", "/v1/enrollments/"+en, nil); e["reply_category"] != "interested" {
		t.Fatalf("enrollment after the correction: %v", e["reply_category"])
	}
	evs := f.feed([]string{"dripdrop.ingest.reply_categorized"})["dripdrop.ingest.reply_categorized"]
	for len(evs) < 2 {
		time.Sleep(20 * time.Millisecond)
		evs = f.feed(nil)["dripdrop.ingest.reply_categorized"]
	}
	first, second := evs[0]["metadata"].(map[string]any), evs[1]["metadata"].(map[string]any)
	if first["category"] != "not_now" || first["source"] != "engine" || first["previous_category"] != nil ||
		second["category"] != "interested" || second["source"] != "crm" || second["previous_category"] != "not_now" || second["enrollment_id"] != en {
		t.Fatalf("reply_categorized events %v / %v", first, second)
	}
	// An out-of-office has no category to correct.
	ooo := f.inbound(201, map[string]any{"message_id": "<ooo-9@example.com>", "in_reply_to": f.sentMessageID("ann@example.com"),
		"from": "ann@example.com", "subject": "Out of office", "body_text": "I am out of the office.", "intent": "ooo"})
	f.call(409, "PATCH", "/v1/inbound/"+ooo["id"].(string), map[string]any{"category": "interested"})
	if in := f.call(200, "GET", "/v1/inbound/"+ooo["id"].(string), nil); in["category"] != nil {
		t.Fatalf("the refused correction changed the ooo: %v", in)
	}
	// Stats count replies per category.
	st := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("welcome")+"/stats", nil)
	bc := st["versions"].([]any)[0].(map[string]any)["by_category"].(map[string]any)
	if bc["interested"] != 1.0 || bc["not_now"] != 0.0 || len(bc) != 7 {
		t.Fatalf("by_category %v", bc)
	}
}

// A step sent again in a new attempt window (the sender's failure, then a
// retry) keeps the contact's variant, even after another variant won.
func TestVariantKeptByANewAttemptWindow(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	m := f.call(201, "POST", "/v1/sequences", map[string]any{"key": "ab", "name": "A/B", "pool_id": f.pool.ID, "steps": []any{
		map[string]any{"key": "intro", "body_text": "Hello", "variants": []any{map[string]any{"subject": "Variant A"}, map[string]any{"subject": "Variant B"}}},
		map[string]any{"key": "bump", "body_text": "Bump", "delay_seconds": 86400}}})
	step := uuid.MustParse(m["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["id"].(string))
	id := f.enrollAB("ret", 1)[0]
	f.run()
	given, state, _ := f.execVariant(id)
	if state != "sent" {
		t.Fatalf("first send: %s", state)
	}
	other := map[string]string{"A": "B", "B": "A"}[given]
	// The other variant is promoted meanwhile.
	dbtest.Exec(t, f.URL, `UPDATE steps SET winner_variant = $1, promoted_at = now() WHERE id = $2`, other, step)
	first := f.sentMessageID("ret-0@example.com")
	f.inbound(201, map[string]any{"message_id": "<dsn-ret@mx.example.com>", "in_reply_to": first,
		"from": "mailer-daemon@mx.example.com", "subject": "Undelivered Mail Returned to Sender", "intent": "bounce",
		"body_text": "<ret-0@example.com>: host mx.example.com said: 550 5.7.26 Unauthenticated email from acme.example.com is not accepted due to domain's DMARC policy"})
	f.call(200, "POST", "/v1/enrollments/"+id.String()+"/retry", nil)
	f.clock.Add(2 * time.Minute)
	f.run()
	e := f.call(200, "GET", "/v1/enrollments/"+id.String(), nil)
	var windows []string
	for _, x := range e["executions"].([]any) {
		if x := x.(map[string]any); x["step_key"] == "intro" {
			windows = append(windows, fmt.Sprintf("%v:%v:%v", x["attempt_window"], x["state"], x["variant"]))
		}
	}
	if len(windows) != 2 || windows[1] != "1:sent:"+given {
		t.Fatalf("executions %v, want the new window sent with %s", windows, given)
	}
	subjects := f.subjectsTo()["ret-0@example.com"]
	if len(subjects) != 2 || subjects[0] != subjects[1] {
		t.Fatalf("subjects %v: the retry changed the variant", subjects)
	}
	// A new contact gets the winner.
	fresh := f.enrollAB("new", 1)[0]
	f.run()
	if v, _, _ := f.execVariant(fresh); v != other {
		t.Fatalf("a new assignment got %q, want the winner %q", v, other)
	}
}

// Sends change the counts too: a winner whose replies came while the
// variants were under min_sent is promoted by the leader's variant_sweep
// once the sends reach it, not before.
func TestVariantSweepPromotesWhenSendsReachMinSent(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	f.abSequence([2]int{1, 1}, map[string]any{"min_sent": 40})
	ids := f.enrollAB("s", 60)
	f.run()
	for i, id := range ids {
		if v, _, _ := f.execVariant(id); v == "A" {
			rcpt := fmt.Sprintf("s-%d@example.com", i)
			f.inbound(201, map[string]any{"message_id": fmt.Sprintf("<s-%d@example.com>", i), "in_reply_to": f.sentMessageID(rcpt),
				"from": rcpt, "subject": "Re", "body_text": "Sounds good."})
		}
	}
	winner := func() any {
		st := f.call(200, "GET", "/v1/sequences/"+f.sequenceID("ab")+"/stats", nil)
		return st["versions"].([]any)[0].(map[string]any)["steps"].([]any)[0].(map[string]any)["winner"]
	}
	if n, err := f.store.VariantSweep(context.Background(), f.tenant); err != nil || n != 0 || winner() != nil {
		t.Fatalf("under min_sent: sweep promoted %d (%v), winner %v", n, err, winner())
	}
	f.enrollAB("more", 60)
	f.run()
	if w := winner(); w != nil {
		t.Fatalf("promoted %v without a reply or a sweep", w)
	}
	if n, err := f.store.VariantSweep(context.Background(), f.tenant); err != nil || n != 1 {
		t.Fatalf("the sweep promoted %d (%v), want 1", n, err)
	}
	if w := winner(); w != "A" {
		t.Fatalf("winner %v, want A", w)
	}
	if n, err := f.store.VariantSweep(context.Background(), f.tenant); err != nil || n != 0 {
		t.Fatalf("a second sweep promoted %d (%v): a winner is written once", n, err)
	}
}
