package ingest

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText renders HTML as plain text: block elements become line
// breaks, scripts and styles are dropped, and quoted history in
// <blockquote> (and Gmail/Yahoo quote containers) is left out.
func HTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(truncate(s, MaxTextRead)))
	var b strings.Builder
	skip := 0  // depth inside script/style/head/title
	quote := 0 // depth inside quoted history
	var stack []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return collapseBlank(b.String())
		case html.TextToken:
			if skip == 0 && quote == 0 {
				raw := string(z.Text())
				words := strings.Join(strings.Fields(raw), " ")
				if words == "" {
					if raw != "" {
						b.WriteByte(' ')
					}
					break
				}
				if raw[0] == ' ' || raw[0] == '\n' || raw[0] == '\t' {
					b.WriteByte(' ')
				}
				b.WriteString(words)
				if last := raw[len(raw)-1]; last == ' ' || last == '\n' || last == '\t' {
					b.WriteByte(' ')
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			isQuote := tag == "blockquote"
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if string(k) == "class" && (strings.Contains(string(v), "gmail_quote") || strings.Contains(string(v), "yahoo_quoted")) {
					isQuote = true
				}
				if string(k) == "id" && (string(v) == "divRplyFwdMsg" || string(v) == "appendonsend") {
					isQuote = true
				}
			}
			switch tag {
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table":
				if skip == 0 && quote == 0 {
					b.WriteByte('\n')
				}
			case "td", "th":
				if skip == 0 && quote == 0 {
					b.WriteByte(' ')
				}
			}
			if tt == html.SelfClosingTagToken || voidTag(tag) {
				continue
			}
			switch {
			case tag == "script" || tag == "style" || tag == "head" || tag == "title":
				skip++
				stack = append(stack, "\x00skip")
			case isQuote:
				quote++
				stack = append(stack, "\x00quote")
			default:
				stack = append(stack, tag)
			}
			if len(stack) > 512 {
				stack = stack[len(stack)-512:]
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			// pop to the matching open tag
			for i := len(stack) - 1; i >= 0; i-- {
				top := stack[i]
				if top == tag || (top == "\x00skip" && (tag == "script" || tag == "style" || tag == "head" || tag == "title")) || (top == "\x00quote" && (tag == "blockquote" || tag == "div")) {
					for _, t := range stack[i:] {
						switch t {
						case "\x00skip":
							skip--
						case "\x00quote":
							quote--
						}
					}
					stack = stack[:i]
					break
				}
			}
			switch tag {
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table":
				if skip == 0 && quote == 0 {
					b.WriteByte('\n')
				}
			}
		}
	}
}

func voidTag(t string) bool {
	switch t {
	case "br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr":
		return true
	}
	return false
}

var blankRuns = regexp.MustCompile(`\n[ \t]*(\n[ \t]*)+`)

func collapseBlank(s string) string {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	return strings.TrimSpace(blankRuns.ReplaceAllString(s, "\n\n"))
}

// Quote attributions and separators in the seven languages the classifier
// reads: English, German, French, Spanish, Portuguese, Dutch and Swedish.
var (
	// "On Tue, 3 Dec 2026 at 10:00, Ada <ada@x> wrote:" and its translations;
	// the attribution may wrap onto a second line.
	attribution = regexp.MustCompile(`(?is)^\s*(on|am|le|el|em|op|den|il|w dniu)\b.{0,300}?\b(wrote|schrieb|a écrit|escribió|escreveu|schreef|skrev|ha scritto|napisał)(\P{L}.{0,200})?:\s*$`)
	// "Ada <ada@x> skrev:" / "… schrieb:" without a leading date word.
	attributionShort = regexp.MustCompile(`(?i)^.{0,200}\b(wrote|schrieb|a écrit|escribió|escreveu|schreef|skrev)\s*:\s*$`)
	separator        = regexp.MustCompile(`(?i)^\s*-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|mensagem original|oorspronkelijk bericht|ursprungligt meddelande|originalnachricht|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)\s*-{2,}\s*$`)
	underscores      = regexp.MustCompile(`^\s*_{10,}\s*$`)
	// Outlook header block: "From: …" followed by "Sent: …" (or translations).
	outlookFrom = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|van|från|da)\s*\*?\s*:\s*\S`)
	outlookSent = regexp.MustCompile(`(?i)^\s*\*?(sent|date|gesendet|datum|envoyé|date|enviado|fecha|enviada|data|verzonden|skickat|inviato)\s*\*?\s*:\s*\S`)
)

// StripQuoted returns the new text of a reply: everything before the
// quoted history. Lines starting with ">" are dropped, and the text is cut
// at an "On … wrote:" attribution (also wrapped over two lines), an
// "-----Original Message-----" separator or an Outlook "From:/Sent:" block,
// in English, German, French, Spanish, Portuguese, Dutch and Swedish.
func StripQuoted(s string) string {
	s = strings.ReplaceAll(truncate(s, MaxTextRead), "\r\n", "\n")
	lines := strings.Split(s, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, ">") {
			continue
		}
		if separator.MatchString(t) || underscores.MatchString(t) {
			break
		}
		if attribution.MatchString(t) || attributionShort.MatchString(t) {
			break
		}
		if i+1 < len(lines) && len(t) < 300 && attribution.MatchString(t+" "+strings.TrimSpace(lines[i+1])) {
			break
		}
		if outlookFrom.MatchString(t) && i+1 < len(lines) {
			hit := false
			for j := i + 1; j < len(lines) && j <= i+3; j++ {
				if outlookSent.MatchString(lines[j]) {
					hit = true
				}
			}
			if hit {
				break
			}
		}
		out = append(out, line)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// NewText is the text classification reads: the plain body (or the HTML
// rendered as text when there is none) without quoted history.
func (m *Message) NewText() string {
	body := m.BodyText
	if strings.TrimSpace(body) == "" && m.BodyHTML != "" {
		body = HTMLToText(m.BodyHTML)
	}
	return StripQuoted(body)
}
