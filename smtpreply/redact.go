package smtpreply

import (
	"strings"
	"unicode/utf8"
)

// Redact replaces every e-mail address in a server's reply text with
// "<address>", so the text can go into a log line (logs carry ids and
// codes, never addresses: docs/operations.md). An address is a run of
// local-part characters, an "@", and a run of domain characters; a lone
// "@" is kept. The result is also capped at 300 bytes.
func Redact(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		at := strings.IndexByte(text[i:], '@')
		if at < 0 {
			b.WriteString(text[i:])
			break
		}
		at += i
		start := at
		for start > i && localChar(text[start-1]) {
			start--
		}
		end := at + 1
		for end < len(text) && domainChar(text[end]) {
			end++
		}
		if start == at && end == at+1 {
			b.WriteString(text[i : at+1]) // a lone "@"
			i = at + 1
			continue
		}
		b.WriteString(text[i:start])
		b.WriteString("<address>")
		i = end
	}
	s := b.String()
	if n := 300; len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

func localChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~.\"", c) >= 0
}

func domainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 || c == '-' || c == '.' || c == '[' || c == ']' || c == ':'
}
