package db

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// lastUnlinted is the last migration written before the rules of
// docs/migrations.md were enforced: those files are released and never
// change (releasedChecksums), and the distribution command handles what
// they did that Citus refuses.
const lastUnlinted = 42

// releasedChecksums freezes the released migrations byte for byte: an
// installed database records each file's checksum and refuses a changed one.
var releasedChecksums = map[string]string{
	"0001_foundation.sql":            "1b55a6c70c0460c0dd188cfab913758cb3c360dbab3aa3ad92bbdcc90d8b0235",
	"0009_dispatch_ready_queue.sql":  "5212d229dbdba22b7e0c87bdb734e80778f83c7b47bea5688e18ebc48a915cc1",
	"0010_ingest.sql":                "0eb91d1b84731305ad3205fe42364f7c24e52254e4c2bc7e1dc609b79119aeef",
	"0011_health.sql":                "585d29a35fd808c1a6fcee0aeb9a7e643f04019d299da4a35b341feb20b705d7",
	"0012_telemetry_outbox.sql":      "1906119ab63a4868a2750e9119ce6741ecb227609ca6fb0af7b699a43c1cfad5",
	"0013_enrollment_lookup.sql":     "89d642d8e66e8c8691de5bab185752a73e660bee9a4a9ac5b4ec5e9efb05a1a2",
	"0014_due_row_trigger.sql":       "b0ce0effb7caff3c2f2827d98cb1166087aa1edf5e6efcc2f2ffe70fa0416e6a",
	"0015_due_tiebreak.sql":          "ce24b37a2de3fed051831ae4beaca7e3ee07f113ba7cb7981889f54950e95c60",
	"0016_bulk_write_costs.sql":      "4c882f4c3dfc9f3b3a0862d2257b8eb367b1d91e392c0e7ccc574ca0f2d7d5e9",
	"0017_in_flight.sql":             "2951df312d822245bbec1a65df612ab3d46ef59ea85bab9f787221bebe131c1f",
	"0018_reference_guards.sql":      "4cbe68391fd6ca6f603ab2796a4a823a1524028acffabbb173b58fcc318218eb",
	"0019_in_flight_rule.sql":        "0606d0b9884ad18e367741246d88fc8fe5d70d6cc24bb5fed067906ce5a23696",
	"0020_send_path_indexes.sql":     "9ac0dc81fb987b8da52e21f730cfc40cd34cc97032278eb853ed7fb72a7d30eb",
	"0021_message_events_time.sql":   "8df5acf6faafa2a904f38733d3cea223914552788639bbd3b21c0e0a612ee548",
	"0022_list_unsubscribe.sql":      "bcc888a0476d67101c4f1316c7d0866ce0044027fc625562b4920310d7b69d45",
	"0023_enrollment_not_before.sql": "17e10dfd443194274953677d1b94681ba140597d8ed3468c77a4c98cd9469726",
	"0024_inbound_providers.sql":     "62dc00db363dd75fdd9236145d6bf727cb86389fb660176d423899e8f63e12dd",
	"0025_oauth.sql":                 "5638cce2a953a3b73edee4c8c2446903415f45586edde74a9c2ab3c9688cfacd",
	"0026_oauth_refresh_lease.sql":   "dbc2732d0265f2ccefe8bcd42bc948ef1de9dc94f1becd660889f5ff8b5047de",
	"0030_mailbox_sync.sql":          "a2dc520c64f499a89ba7d777e439e6a425adb1f99373f056d2b0e5f8ddeadfd3",
	"0035_preflight.sql":             "7e83c1a59be23f94bc778922bd912a61a67e5107bdbedf6c4ce40e17b16fb35b",
	"0036_window_holidays.sql":       "0cee91de1b682dd8ef3c0b918a28b0aa1de8c515f574f67df7b46d559b95b464",
	"0037_provider_matching.sql":     "028b41615205b00cf8909e6a309adc7d29f7b05a4e059f8ea0f6e732af1a25c3",
	"0038_provider_caps.sql":         "da27a2e5b805dba5f3dfe0246b7a213478571d3b0a7d34af3266499186f53d7f",
	"0040_variants_categories.sql":   "50e21a615cab0b77c19eeb21b41c799df934a2d65b6e9e3a25c798fb83d6f4f3",
	"0041_branches.sql":              "bea835508eee4c3b53f75798ed0a8761a0591f6983246065a8b69e1b03eb16a1",
	"0042_sent_dkim.sql":             "973ea66aa68398be915e99c9a849e2994bc603a379d0698e3d8b3ae9866f639f",
}

func TestReleasedMigrationsAreUnchanged(t *testing.T) {
	t.Parallel()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, m := range ms {
		file := fmt.Sprintf("%04d_%s.sql", m.Version, m.Name)
		want, ok := releasedChecksums[file]
		if m.Version <= lastUnlinted && !ok {
			t.Errorf("%s: a migration numbered at or below %04d appeared after those were released", file, lastUnlinted)
		}
		if !ok {
			continue
		}
		seen++
		sum := sha256.Sum256([]byte(m.SQL))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s changed (sha256 %s, released %s): released migrations are never edited; add a new one", file, got, want)
		}
	}
	if seen != len(releasedChecksums) {
		t.Errorf("found %d of the %d released migrations", seen, len(releasedChecksums))
	}
}

func TestMigrationsFollowTheRules(t *testing.T) {
	t.Parallel()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		steps, err := splitMigration(m.SQL)
		if err != nil {
			t.Errorf("%04d_%s: %v", m.Version, m.Name, err)
			continue
		}
		if m.Version <= lastUnlinted {
			continue
		}
		for _, p := range lintMigration(steps) {
			t.Errorf("%04d_%s: %s (docs/migrations.md)", m.Version, m.Name, p)
		}
	}
}

func TestLintRefusesWhatCitusRefuses(t *testing.T) {
	t.Parallel()
	const goodTable = `CREATE TABLE notes (
    tenant_key text NOT NULL,
    id uuid NOT NULL,
    body text NOT NULL CHECK (body <> ''),
    PRIMARY KEY (tenant_key, id)
);
-- dripdrop:distribute notes
ALTER TABLE notes ADD CONSTRAINT notes_tenant_fkey FOREIGN KEY (tenant_key) REFERENCES tenants (tenant_key) ON DELETE CASCADE;
CREATE INDEX notes_body_idx ON notes (tenant_key, body);`
	cases := []struct {
		name, sql string
		want      string // a substring of the one problem; "" for none
	}{
		{"good table", goodTable, ""},
		{"add column then constraint", "ALTER TABLE adapters ADD COLUMN note text;\nALTER TABLE adapters ADD CONSTRAINT adapters_note_check CHECK (note <> '');", ""},
		{"add column check", "ALTER TABLE adapters ADD COLUMN note text CHECK (note <> '');", "ADD COLUMN with CHECK"},
		{"add column unique", "ALTER TABLE adapters ADD COLUMN n int, ADD COLUMN code text UNIQUE;", "ADD COLUMN with UNIQUE"},
		{"add column references", "ALTER TABLE adapters ADD note_id uuid REFERENCES notes (id);", "ADD COLUMN with REFERENCES"},
		{"a check word in a default string is fine", "ALTER TABLE adapters ADD COLUMN note text NOT NULL DEFAULT 'check unique references';", ""},
		{"trigger", "CREATE TRIGGER t AFTER INSERT ON adapters FOR EACH ROW EXECUTE FUNCTION f();", "trigger"},
		{"trigger function", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;", "trigger"},
		{"a released trigger function's body for shards too", "CREATE OR REPLACE FUNCTION dripdrop_due_on_resume() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_TABLE_NAME <> 'enrollments' THEN EXECUTE format('SELECT 1 FROM %s', dripdrop_shard_rel('adapter_due', NEW.tenant_key, TG_TABLE_NAME, 'enrollments')); END IF; RETURN NULL; END $$;", ""},
		{"a released trigger function's body for one node only", "CREATE OR REPLACE FUNCTION dripdrop_due_on_resume() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE adapter_due SET ver = ver + 1; RETURN NULL; END $$;", "must run on a Citus shard too"},
		{"a new trigger function replaced", "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_TABLE_NAME <> 'x' THEN PERFORM dripdrop_shard_rel('a', 'b', TG_TABLE_NAME, 'x'); END IF; RETURN NULL; END $$;", "not a trigger function of the released migrations"},
		{"sequence", "CREATE SEQUENCE s;", "global sequence"},
		{"identity", strings.Replace(goodTable, "id uuid NOT NULL", "id bigint GENERATED ALWAYS AS IDENTITY", 1), "global sequence"},
		{"serial", strings.Replace(goodTable, "id uuid NOT NULL", "id bigserial", 1), "global sequence"},
		{"tenant_key not first", strings.Replace(goodTable, "tenant_key text NOT NULL,\n    id uuid NOT NULL,", "id uuid NOT NULL,\n    tenant_key text NOT NULL,", 1), "first column"},
		{"primary key without tenant_key", strings.Replace(goodTable, "PRIMARY KEY (tenant_key, id)", "PRIMARY KEY (id)", 1), "primary key"},
		{"no primary key", strings.Replace(goodTable, ",\n    PRIMARY KEY (tenant_key, id)", "", 1), "primary key"},
		{"inline foreign key", strings.Replace(goodTable, "tenant_key text NOT NULL,", "tenant_key text NOT NULL REFERENCES tenants (tenant_key),", 1), "foreign key inside CREATE TABLE"},
		{"not distributed", strings.Replace(goodTable, "-- dripdrop:distribute notes\n", "", 1), "no `-- dripdrop:distribute notes`"},
		{"distributed before created", "-- dripdrop:distribute notes\n" + strings.Replace(goodTable, "-- dripdrop:distribute notes\n", "", 1), "stands before the table is created"},
		{"foreign key before distribution", strings.Replace(strings.Replace(goodTable, "-- dripdrop:distribute notes\n", "", 1), "CREATE INDEX", "-- dripdrop:distribute notes\nCREATE INDEX", 1), "before the table is distributed"},
		{"foreign key without tenant_key", "ALTER TABLE adapters ADD CONSTRAINT a_fkey FOREIGN KEY (pool_id) REFERENCES pools (id);", "foreign key"},
		{"index without tenant_key", "CREATE INDEX a_idx ON adapters (created_at);", "index"},
		{"unique constraint without tenant_key", "ALTER TABLE adapters ADD CONSTRAINT a_key UNIQUE (name);", "UNIQUE"},
		{"index on a local table", "CREATE INDEX leases_idx ON leader_leases (expires_at);", ""},
		{"concurrently", "CREATE INDEX CONCURRENTLY a_idx ON adapters (tenant_key, created_at);", "CONCURRENTLY"},
		{"subquery in insert values", "INSERT INTO notes (tenant_key, id) VALUES ((SELECT tenant_key FROM tenants LIMIT 1), gen_random_uuid());", "subquery inside INSERT"},
		{"insert select is fine", "INSERT INTO notes (tenant_key, id) SELECT tenant_key, gen_random_uuid() FROM tenants;", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			steps, err := splitMigration(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			got := lintMigration(steps)
			if c.want == "" {
				if len(got) > 0 {
					t.Fatalf("problems %q, want none", got)
				}
				return
			}
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Fatalf("problems %q, want one containing %q", got, c.want)
			}
		})
	}
}

var (
	reSpace         = regexp.MustCompile(`\s+`)
	reCreateTbl     = regexp.MustCompile(`^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*) \((.*)\)$`)
	reCreateIdx     = regexp.MustCompile(`^CREATE (?:UNIQUE )?INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?[a-z_0-9]* ?ON (?:ONLY )?([a-z_][a-z0-9_]*) (?:USING [a-z]+ )?\(\s*([a-z_0-9]+)`)
	reAlterTbl      = regexp.MustCompile(`^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?([a-z_][a-z0-9_]*) (.*)$`)
	reFK            = regexp.MustCompile(`FOREIGN KEY \(\s*([a-z_0-9]+)[^)]*\) REFERENCES [a-z_0-9]+ \(\s*([a-z_0-9]+)`)
	reKeyCols       = regexp.MustCompile(`(?:PRIMARY KEY|UNIQUE) \(\s*([a-z_0-9]+)`)
	reTrigger       = regexp.MustCompile(`^CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER\b|\bRETURNS TRIGGER\b`)
	reReplaceTrigFn = regexp.MustCompile(`(?i)^CREATE OR REPLACE FUNCTION ([a-z_][a-z0-9_]*) ?\( ?\) RETURNS TRIGGER\b`)
	reTrigFn        = regexp.MustCompile(`(?i)CREATE (?:OR REPLACE )?FUNCTION ([a-z_][a-z0-9_]*)\(\) RETURNS trigger\b`)
	reSequence      = regexp.MustCompile(`^CREATE SEQUENCE\b|\bAS IDENTITY\b|\b(?:SMALL|BIG)?SERIAL[248]?\b|\bNEXTVAL\(`)
	reInsertVals    = regexp.MustCompile(`^INSERT INTO .*\bVALUES\b.*\(\s*SELECT\b`)
)

// releasedTriggerFunctions are the trigger functions the released
// migrations (up to lastUnlinted) create.
func releasedTriggerFunctions() []string {
	ms, _ := Migrations()
	var names []string
	for _, m := range ms {
		if m.Version > lastUnlinted {
			continue
		}
		for _, f := range reTrigFn.FindAllStringSubmatch(m.SQL, -1) {
			if name := strings.ToLower(f[1]); !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// lintMigration lists how a migration breaks the rules of
// docs/migrations.md. It reads statements with strings and comments
// blanked, upper-cased keywords and single spaces.
func lintMigration(steps []migrationStep) []string {
	var problems []string
	created := map[string]bool{}     // tables this file creates
	distributed := map[string]bool{} // …and distributes
	for _, st := range steps {
		if st.Directive != "" {
			if !created[st.Table] {
				problems = append(problems, fmt.Sprintf("line %d: `-- dripdrop:%s %s` stands before the table is created in this file", st.Line, st.Directive, st.Table))
			}
			distributed[st.Table] = true
			continue
		}
		s := normalizeSQL(st.SQL)
		at := func(f string, a ...any) {
			problems = append(problems, fmt.Sprintf("line %d: ", st.Line)+fmt.Sprintf(f, a...))
		}
		if m := reReplaceTrigFn.FindStringSubmatch(s); m != nil {
			// The one exception to "no triggers": a new body for a trigger
			// function of the released migrations, written to run on a Citus
			// shard too (the other tables named with dripdrop_shard_rel when
			// the trigger's table is a shard).
			name := strings.ToLower(m[1])
			switch {
			case !slices.Contains(releasedTriggerFunctions(), name):
				at("no triggers: %s is not a trigger function of the released migrations; do the work in the statements that change the rows", name)
			case !strings.Contains(st.SQL, "TG_TABLE_NAME") || !strings.Contains(st.SQL, "dripdrop_shard_rel("):
				at("%s: a trigger function's new body must run on a Citus shard too (the other tables named with dripdrop_shard_rel when TG_TABLE_NAME is a shard)", name)
			}
			continue
		}
		if reTrigger.MatchString(s) {
			at("no triggers: Citus runs them on shards, where they cannot reach other tables; do the work in the statements that change the rows")
			continue
		}
		if reSequence.MatchString(s) {
			at("no global sequence (CREATE SEQUENCE, identity, serial, nextval): it lives on the coordinator; use uuids or per-tenant counters")
		}
		if strings.Contains(s, " CONCURRENTLY ") {
			at("no CONCURRENTLY: a migration file is one transaction")
		}
		if reInsertVals.MatchString(s) {
			at("no subquery inside INSERT … VALUES: Citus refuses it; use INSERT … SELECT")
		}
		if m := reCreateTbl.FindStringSubmatch(s); m != nil {
			table, body := strings.ToLower(m[1]), m[2]
			created[table] = true
			if slices.Contains(citusLocal, table) {
				continue
			}
			cols := splitTopLevel(body)
			if len(cols) == 0 || !strings.HasPrefix(strings.TrimSpace(cols[0]), "tenant_key ") {
				at("table %s: tenant_key must be its first column", table)
			}
			pk := false
			for _, c := range cols {
				c = strings.TrimSpace(c)
				if strings.HasPrefix(c, "PRIMARY KEY ") {
					pk = strings.HasPrefix(c, "PRIMARY KEY (tenant_key")
				}
				if strings.Contains(c, " REFERENCES ") || strings.HasPrefix(c, "FOREIGN KEY") {
					at("table %s: no foreign key inside CREATE TABLE; add it with ALTER TABLE … ADD CONSTRAINT after `-- dripdrop:distribute %s`", table, table)
				}
				if k := reKeyCols.FindStringSubmatch(c); k != nil && strings.HasPrefix(c, "UNIQUE") && k[1] != "tenant_key" {
					at("table %s: a UNIQUE key must lead with tenant_key", table)
				}
			}
			if !pk {
				at("table %s: its primary key must lead with tenant_key", table)
			}
			continue
		}
		if m := reCreateIdx.FindStringSubmatch(s); m != nil {
			if table := m[1]; !slices.Contains(citusLocal, table) && m[2] != "tenant_key" {
				at("index on %s: it must lead with tenant_key", table)
			}
			continue
		}
		if m := reAlterTbl.FindStringSubmatch(s); m != nil {
			table := m[1]
			for _, clause := range splitTopLevel(m[2]) {
				clause = strings.TrimSpace(clause)
				if strings.HasPrefix(clause, "ADD ") && !strings.HasPrefix(clause, "ADD CONSTRAINT ") &&
					!strings.HasPrefix(clause, "ADD PRIMARY KEY") && !strings.HasPrefix(clause, "ADD UNIQUE") && !strings.HasPrefix(clause, "ADD FOREIGN KEY") {
					for _, kw := range []string{"CHECK", "UNIQUE", "REFERENCES", "PRIMARY KEY"} {
						if regexp.MustCompile(`\b` + kw + `\b`).MatchString(clause) {
							at("%s: ADD COLUMN with %s: Citus refuses it on a distributed table; add the column, then ALTER TABLE … ADD CONSTRAINT", table, kw)
						}
					}
					continue
				}
				if slices.Contains(citusLocal, table) {
					continue
				}
				if fk := reFK.FindStringSubmatch(clause); fk != nil {
					if fk[1] != "tenant_key" || fk[2] != "tenant_key" {
						at("%s: a foreign key must be composite, leading with tenant_key on both sides", table)
					}
					if created[table] && !distributed[table] {
						at("%s: foreign key added before the table is distributed (`-- dripdrop:distribute %s` first)", table, table)
					}
				}
				if k := reKeyCols.FindStringSubmatch(clause); k != nil && k[1] != "tenant_key" {
					at("%s: a PRIMARY KEY or UNIQUE constraint must lead with tenant_key", table)
				}
			}
		}
	}
	for table := range created {
		if !distributed[table] && !slices.Contains(citusLocal, table) {
			problems = append(problems, fmt.Sprintf("table %s: no `-- dripdrop:distribute %s` after it is created: on Citus it would stay on the coordinator", table, table))
		}
	}
	return problems
}

// normalizeSQL blanks comments and string contents, upper-cases keywords
// outside identifiers we compare in lower case, and collapses whitespace:
// identifiers stay lower case (the rules' table and column names), SQL
// keywords become upper case.
func normalizeSQL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
			b.WriteByte(' ')
		case c == '\'':
			j := i + 1
			for j < len(s) {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteString("''")
			i = j
		case c == '$':
			if tag, ok := dollarTag(s[i:]); ok {
				end := strings.Index(s[i+len(tag):], tag)
				if end >= 0 {
					b.WriteString("$$")
					i += len(tag) + end + len(tag) - 1
					continue
				}
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	words := strings.Fields(reSpace.ReplaceAllString(b.String(), " "))
	for i, w := range words {
		words[i] = upperKeywords(w)
	}
	out := strings.Join(words, " ")
	out = strings.ReplaceAll(out, "( ", "(")
	out = strings.ReplaceAll(out, " )", ")")
	return strings.TrimSpace(out)
}

var sqlKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`CREATE UNLOGGED TABLE IF NOT EXISTS INDEX UNIQUE CONCURRENTLY ON ONLY USING ALTER ADD COLUMN
		CONSTRAINT PRIMARY KEY FOREIGN REFERENCES CHECK TRIGGER OR REPLACE FUNCTION RETURNS SEQUENCE AS IDENTITY
		GENERATED ALWAYS BY DEFAULT SERIAL SERIAL2 SERIAL4 SERIAL8 SMALLSERIAL BIGSERIAL NEXTVAL INSERT INTO VALUES SELECT DROP`) {
		sqlKeywords[k] = true
	}
}

// upperKeywords upper-cases a word that is a keyword the rules look for,
// keeping punctuation around it, and lower-cases every other word.
func upperKeywords(w string) string {
	core := strings.TrimFunc(w, func(r rune) bool { return r == '(' || r == ')' || r == ',' })
	u := strings.ToUpper(core)
	if sqlKeywords[u] || strings.HasPrefix(u, "NEXTVAL(") {
		return strings.Replace(w, core, u, 1)
	}
	return strings.ToLower(w)
}

// splitTopLevel splits s at commas outside parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		out = append(out, s[start:])
	}
	return out
}
