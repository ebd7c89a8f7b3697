package api

import (
	"testing"
	"unicode/utf8"
)

func TestCSVColumnAliases(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Email": "email", "E-mail": "email", " E-Mail Address ": "email", "\ufeffemail": "email", "mail": "email",
		"First Name": "first_name", "first name": "first_name", "FirstName": "first_name", "first.name": "first_name", "Given name": "first_name",
		"Last Name": "last_name", "Surname": "last_name", "Company Name": "company", "Organisation": "company",
		"Time Zone": "timezone", "TZ": "timezone", "Plan": "plan", "Deal size (€)": "deal_size", "": "",
	} {
		if got := csvColumn(in); got != want {
			t.Errorf("csvColumn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVDelimiter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]rune{
		"email,first_name\na@x.io,A\n":           ',',
		"email;first_name;company\na@x.io;A;B\n": ';',
		"email\tfirst_name\n":                    '\t',
		`"Last, First";email` + "\n":             ';',
		"email\n":                                ',',
		"email;name,with,commas\n":               ',', // most frequent outside quotes wins
	} {
		if got := csvDelimiter([]byte(in)); got != want {
			t.Errorf("csvDelimiter(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseContactsCSV: any input is parsed or refused with a typed error;
// every contact has an e-mail pointer from the email column.
func FuzzParseContactsCSV(f *testing.F) {
	for _, s := range []string{
		"email,first_name\na@x.io,A\n", "E-mail;First Name;Plan\na@x.io;Ada;pro\n", "\"Email\"\n\"a@x.io\"\n",
		"email\n\"unterminated\n", "name\nx\n", "", ";;;\n;;;\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, err := parseContactsCSV(body)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Email != nil && !utf8.ValidString(*c.Email) {
				t.Fatalf("invalid UTF-8 passed: %q", *c.Email)
			}
		}
	})
}
