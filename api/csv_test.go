package api_test

import "testing"

// TestBatchCSVFromASpreadsheet: a semicolon-separated export with
// spreadsheet headers imports, and every row result names its e-mail.
func TestBatchCSVFromASpreadsheet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	csv := "\ufeffE-mail;First Name;Last Name;Company Name;Plan\r\n" +
		"ada@example.com;Ada;Lovelace;Analytical;pro\r\n" +
		"not-an-address;Bad;;;\r\n" +
		"grace@example.com;Grace;Hopper;Navy;\r\n"
	r := e.do("POST", "/v1/enrollments/batch?sequence_key=welcome", f.key, csv, "Content-Type", "text/csv; charset=utf-8")
	if r.status != 200 {
		t.Fatalf("csv: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["created"] != float64(2) || m["errors"] != float64(1) {
		t.Fatalf("summary: %v", m)
	}
	res := m["results"].([]any)
	for i, want := range []string{"ada@example.com", "not-an-address", "grace@example.com"} {
		if got := res[i].(map[string]any)["email"]; got != want {
			t.Errorf("row %d result email %v, want %q", i, got, want)
		}
	}
	ada := e.must(200, "GET", "/v1/enrollments/"+res[0].(map[string]any)["enrollment_id"].(string), f.key, nil)["contact"].(map[string]any)
	if ada["first_name"] != "Ada" || ada["last_name"] != "Lovelace" || ada["company"] != "Analytical" || ada["vars"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("contact from aliased headers: %v", ada)
	}
	bad := e.do("POST", "/v1/enrollments/batch?sequence_key=welcome", f.key, "Name;Plan\nx;y\n", "Content-Type", "text/csv")
	assertProblem(t, bad, 422, "required", "email")
}
