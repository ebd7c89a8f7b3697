package dripdrop

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxEmailLength is the longest address accepted (RFC 5321 path limit).
const MaxEmailLength = 254

// ParseEmail validates a bare e-mail address ("user@example.com": no display
// name, no angle brackets, no comments) and returns it trimmed. The domain is
// lowercased; the local part keeps its case. Length is checked before
// parsing, so hostile input costs linear time.
func ParseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", Errorf(ECodeRequired, "", "an e-mail address is required")
	}
	if len(s) > MaxEmailLength {
		return "", Errorf(ECodeInvalidEmail, "", "e-mail address longer than %d bytes", MaxEmailLength)
	}
	if !utf8.ValidString(s) {
		return "", Errorf(ECodeInvalidEmail, "", "e-mail address is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '<' || r == '>' || r == '(' || r == ')' || r == ',' || r == ';' || r == '"' || r == '\\' {
			return "", Errorf(ECodeInvalidEmail, "", "e-mail address contains a forbidden character %q", r)
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return "", Errorf(ECodeInvalidEmail, "", "e-mail address must have the form local@domain")
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return "", Errorf(ECodeInvalidEmail, "", "local part longer than 64 bytes")
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	// A local part that is a plain dot-atom (and the domain checkDomain
	// passed) is what net/mail takes unchanged; the rest it decides.
	if !dotAtom(local) {
		addr, err := mail.ParseAddress(s)
		if err != nil || addr.Name != "" || addr.Address != s {
			return "", Errorf(ECodeInvalidEmail, "", "not a valid e-mail address")
		}
	}
	if lower := strings.ToLower(domain); lower != domain {
		return local + "@" + lower, nil
	}
	return s, nil
}

// dotAtom reports whether local is an RFC 5322 dot-atom of ASCII atext:
// letters, digits and !#$%&'*+-/=?^_`{|}~, in dot-separated non-empty runs.
func dotAtom(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.':
			if local[i-1] == '.' {
				return false
			}
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseDomain validates a bare domain name and returns it lowercased.
func ParseDomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", Errorf(ECodeRequired, "", "a domain is required")
	}
	if err := checkDomain(s); err != nil {
		return "", err
	}
	return s, nil
}

func checkDomain(d string) error {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return Errorf(ECodeInvalidEmail, "", "domain must be a fully qualified name")
	}
	for rest, more := d, true; more; {
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return Errorf(ECodeInvalidEmail, "", "domain has an invalid label %q", label)
		}
		for _, r := range label {
			if !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return Errorf(ECodeInvalidEmail, "", "domain has an invalid character %q", r)
			}
		}
	}
	return nil
}

// EmailDomain returns the lowercased domain of a valid address.
func EmailDomain(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return strings.ToLower(email[i+1:])
	}
	return ""
}
