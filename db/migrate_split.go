package db

import (
	"fmt"
	"strings"
)

// A migration file is a list of plain SQL statements separated by `;` and
// of directives, comment lines of the form
//
//	-- dripdrop:distribute <table>
//	-- dripdrop:reference <table>
//
// A directive takes effect where it stands: on a database whose tables are
// distributed by Citus (see CitusDistribute) it distributes the table by
// tenant_key, colocated with the other tenant tables, or makes it a
// reference table; elsewhere it does nothing. docs/migrations.md has the
// rules a migration follows.

// migrationStep is one statement of a migration file, or one directive.
type migrationStep struct {
	SQL       string // a statement without its terminating `;`
	Directive string // "distribute" or "reference"
	Table     string // the directive's table
	Line      int    // 1-based line where the statement or directive starts
}

const directivePrefix = "-- dripdrop:"

// splitMigration cuts a migration file into its statements and directives,
// in file order. It knows what PostgreSQL's lexer knows about where a `;`
// does not end a statement: inside '…' and E'…' strings, "…" identifiers,
// $tag$…$tag$ bodies, -- line comments and nested /* */ comments.
func splitMigration(src string) ([]migrationStep, error) {
	var steps []migrationStep
	start, line, startLine := 0, 1, 1
	blank := true // only whitespace and comments since start
	flush := func(end int) {
		if sql := strings.TrimSpace(src[start:end]); !blank && sql != "" {
			steps = append(steps, migrationStep{SQL: sql, Line: startLine})
		}
		blank = true
	}
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			comment := src[i : i+end]
			if strings.HasPrefix(comment, directivePrefix) {
				if !blank {
					return nil, fmt.Errorf("line %d: a directive must stand between statements, not inside one", line)
				}
				d, err := parseDirective(comment, line)
				if err != nil {
					return nil, err
				}
				steps = append(steps, d)
			}
			i += end
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			depth, j := 1, i+2
			for j < len(src) && depth > 0 {
				switch {
				case strings.HasPrefix(src[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(src[j:], "*/"):
					depth--
					j += 2
				default:
					if src[j] == '\n' {
						line++
					}
					j++
				}
			}
			if depth > 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", line)
			}
			i = j
		case c == '\'' || c == '"':
			if blank {
				blank, startLine = false, line
			}
			// E'…' allows backslash escapes; a doubled quote is a quote.
			escapes := c == '\'' && i > 0 && (src[i-1] == 'E' || src[i-1] == 'e') && (i < 2 || !isIdentByte(src[i-2]))
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("line %d: unterminated %c", line, c)
				}
				if src[j] == '\n' {
					line++
				}
				if escapes && src[j] == '\\' {
					j += 2
					continue
				}
				if src[j] == c {
					if j+1 < len(src) && src[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '$' && (i == 0 || !isIdentByte(src[i-1])):
			tag, ok := dollarTag(src[i:])
			if !ok {
				if blank {
					blank, startLine = false, line
				}
				i++
				continue
			}
			if blank {
				blank, startLine = false, line
			}
			end := strings.Index(src[i+len(tag):], tag)
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated %s body", line, tag)
			}
			body := src[i : i+len(tag)+end+len(tag)]
			line += strings.Count(body, "\n")
			i += len(body)
		case c == ';':
			flush(i)
			i++
			start = i
			startLine = line
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		default:
			if blank {
				blank, startLine = false, line
				start = i
			}
			i++
		}
		if blank {
			start = i
		}
	}
	flush(len(src))
	return steps, nil
}

// dollarTag reads $tag$ (or $$) at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !isIdentByte(c) || (j == 1 && c >= '0' && c <= '9') {
			return "", false // $1 is a parameter, not a dollar quote
		}
	}
	return "", false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func parseDirective(comment string, line int) (migrationStep, error) {
	f := strings.Fields(strings.TrimPrefix(comment, directivePrefix))
	if len(f) != 2 || (f[0] != "distribute" && f[0] != "reference") {
		return migrationStep{}, fmt.Errorf("line %d: directive %q: want `-- dripdrop:distribute <table>` or `-- dripdrop:reference <table>`", line, comment)
	}
	for i := 0; i < len(f[1]); i++ {
		if !isIdentByte(f[1][i]) || f[1][i] >= 0x80 {
			return migrationStep{}, fmt.Errorf("line %d: directive %q: the table must be a plain identifier", line, comment)
		}
	}
	return migrationStep{Directive: f[0], Table: f[1], Line: line}, nil
}
