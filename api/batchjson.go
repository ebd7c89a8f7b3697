package api

import (
	"strconv"
	"unicode/utf8"

	"github.com/dripdrop/dripdrop"
)

// decodeBatchJSON decodes the common shape of a JSON batch import in one
// pass over the body, without reflection: an object with "sequence_key"
// (a string or null) and "contacts" (an array or null of objects whose
// fields are email, first_name, last_name, company, timezone — strings or
// null — and vars, an object or null of strings, numbers, booleans and
// nulls). Its strings share one copy of the body, and the contacts' field
// pointers point into shared blocks, so a contact costs a few allocations
// instead of a few dozen.
//
// It declines (ok false) anything else — another key or letter case, a
// repeated key, an escape sequence in a string, invalid UTF-8, a number
// that does not fit, a syntax error, trailing data — and the caller then
// decodes with encoding/json (decodeBytes), which gives the answer or the
// error it always gave. Whatever it accepts decodes exactly as
// encoding/json decodes it (FuzzDecodeBatchJSON).
func decodeBatchJSON(body []byte) (in batchRequest, ok bool) {
	d := batchDecoder{s: string(body)}
	defer func() {
		if r := recover(); r != nil {
			if _, declined := r.(declined); !declined {
				panic(r)
			}
			in, ok = batchRequest{}, false
		}
	}()
	d.space()
	d.object(func(key string) {
		switch key {
		case "sequence_key":
			in.SequenceKey = d.stringOrNull()
		case "contacts":
			if d.null() {
				return
			}
			in.Contacts = d.contacts()
		default:
			d.decline()
		}
	})
	d.space()
	if d.i != len(d.s) {
		d.decline()
	}
	return in, true
}

// maxObjectKeys is the most keys an object may have for the one-pass
// decoder (a contact has six fields, vars at most dripdrop.MaxVars).
const maxObjectKeys = 2 * dripdrop.MaxVars

// declined is the panic value that unwinds a declined decode.
type declined struct{}

type batchDecoder struct {
	s     string
	i     int
	block []string // the current block of field values
}

func (d *batchDecoder) decline() { panic(declined{}) }

func (d *batchDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space (0 at the end).
func (d *batchDecoder) peek() byte {
	d.space()
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *batchDecoder) expect(c byte) {
	if d.peek() != c {
		d.decline()
	}
	d.i++
}

func (d *batchDecoder) literal(word string) bool {
	if len(d.s)-d.i >= len(word) && d.s[d.i:d.i+len(word)] == word {
		d.i += len(word)
		return true
	}
	return false
}

func (d *batchDecoder) null() bool {
	return d.peek() == 'n' && d.literal("null")
}

// object calls field for each key of an object, with the position after
// its colon; keys must not repeat.
func (d *batchDecoder) object(field func(key string)) {
	d.expect('{')
	if d.peek() == '}' {
		d.i++
		return
	}
	var seenBuf [8]string
	seen := seenBuf[:0]
	for {
		key := d.str()
		for _, k := range seen {
			if k == key {
				d.decline()
			}
		}
		if len(seen) == maxObjectKeys {
			d.decline() // the repeat check is quadratic: a huge object goes to encoding/json
		}
		seen = append(seen, key)
		d.expect(':')
		field(key)
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.decline()
		}
	}
}

// str reads a string without escapes, of valid UTF-8 and no control
// characters.
func (d *batchDecoder) str() string {
	d.expect('"')
	start, ascii := d.i, true
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			v := d.s[start:d.i]
			d.i++
			if !ascii && !utf8.ValidString(v) {
				d.decline()
			}
			return v
		case c == '\\' || c < 0x20:
			d.decline()
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	d.decline()
	return ""
}

// stringOrNull is a string field's value: a pointer into the current block
// of values, or nil for null.
func (d *batchDecoder) stringOrNull() *string {
	if d.null() {
		return nil
	}
	v := d.str()
	if len(d.block) == cap(d.block) {
		d.block = make([]string, 0, 1024)
	}
	d.block = append(d.block, v)
	return &d.block[len(d.block)-1]
}

func (d *batchDecoder) contacts() []dripdrop.ContactInput {
	d.expect('[')
	out := []dripdrop.ContactInput{}
	if d.peek() == ']' {
		d.i++
		return out
	}
	for {
		var c dripdrop.ContactInput
		d.object(func(key string) {
			switch key {
			case "email":
				c.Email = d.stringOrNull()
			case "first_name":
				c.FirstName = d.stringOrNull()
			case "last_name":
				c.LastName = d.stringOrNull()
			case "company":
				c.Company = d.stringOrNull()
			case "timezone":
				c.Timezone = d.stringOrNull()
			case "vars":
				if d.null() {
					return
				}
				c.Vars = d.vars()
			default:
				d.decline()
			}
		})
		out = append(out, c)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out
		default:
			d.decline()
		}
	}
}

func (d *batchDecoder) vars() map[string]any {
	m := map[string]any{}
	d.object(func(key string) {
		switch c := d.peek(); {
		case c == '"':
			m[key] = d.str()
		case c == 'n' && d.literal("null"):
			m[key] = nil
		case c == 't' && d.literal("true"):
			m[key] = true
		case c == 'f' && d.literal("false"):
			m[key] = false
		case c == '-' || (c >= '0' && c <= '9'):
			m[key] = d.number()
		default:
			d.decline()
		}
	})
	return m
}

// number reads a JSON number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
// as encoding/json decodes one into an interface: a float64.
func (d *batchDecoder) number() float64 {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.s[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.s) && d.s[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		d.decline()
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if digits() == 0 {
			d.decline()
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			d.decline()
		}
	}
	f, err := strconv.ParseFloat(d.s[start:d.i], 64)
	if err != nil {
		d.decline()
	}
	return f
}
